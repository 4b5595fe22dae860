package mask

import (
	"regexp"
	"regexp/syntax"
	"strings"
)

// trigger is a cheap necessary condition for a pattern: the text must hold
// one of these literals (lowercased where the pattern ignores case) for
// the regular expression to have a chance. Most tool results contain none,
// and strings.Contains is an order of magnitude faster than the regexp
// engine on alternations and case folding.
type trigger struct {
	lits []string
	fold []bool // lits[i] is lowercase and compared with lowercased text
}

// minTrigger is the shortest literal worth searching for.
const minTrigger = 3

// triggerOf returns the trigger of re, or nil when no literal is required.
func triggerOf(re *regexp.Regexp) *trigger {
	t, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return nil
	}
	lits, fold, ok := required(t.Simplify())
	if !ok || len(lits) == 0 {
		return nil
	}
	return &trigger{lits: lits, fold: fold}
}

// required returns literals one of which every match contains.
func required(re *syntax.Regexp) ([]string, []bool, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		s := string(re.Rune)
		if len(s) < minTrigger {
			return nil, nil, false
		}
		if re.Flags&syntax.FoldCase != 0 {
			return []string{strings.ToLower(s)}, []bool{true}, true
		}
		return []string{s}, []bool{false}, true
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return required(re.Sub[0])
		}
	case syntax.OpConcat:
		// The most selective child: the one whose shortest literal is longest.
		var best []string
		var bestFold []bool
		bestLen := 0
		for _, sub := range re.Sub {
			lits, fold, ok := required(sub)
			if !ok {
				continue
			}
			short := len(lits[0])
			for _, l := range lits {
				short = min(short, len(l))
			}
			if short > bestLen {
				best, bestFold, bestLen = lits, fold, short
			}
		}
		return best, bestFold, best != nil
	case syntax.OpAlternate:
		var all []string
		var folds []bool
		for _, sub := range re.Sub {
			lits, fold, ok := required(sub)
			if !ok {
				return nil, nil, false
			}
			all = append(all, lits...)
			folds = append(folds, fold...)
		}
		return all, folds, true
	}
	return nil, nil, false
}

// may tells whether text can match; lower is text lowercased, computed on
// first need.
func (t *trigger) may(text string, lower *string) bool {
	if t == nil {
		return true
	}
	for i, l := range t.lits {
		if t.fold[i] {
			if *lower == "" {
				*lower = strings.ToLower(text)
			}
			if strings.Contains(*lower, l) {
				return true
			}
		} else if strings.Contains(text, l) {
			return true
		}
	}
	return false
}
