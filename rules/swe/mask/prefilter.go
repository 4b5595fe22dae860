package mask

import (
	"regexp"
	"regexp/syntax"
)

// trigger is a cheap necessary condition for a pattern: the text must hold
// one of these literals (in any ASCII case) for the regular expression to
// have a chance. Most tool results contain none; multi looks for all the
// patterns' literals in one pass.
type trigger struct {
	lits []string
}

// minTrigger is the shortest literal worth searching for.
const minTrigger = 3

// triggerOf returns the trigger of re, or nil when no literal is required.
func triggerOf(re *regexp.Regexp) *trigger {
	t, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return nil
	}
	lits, ok := required(t.Simplify())
	if !ok || len(lits) == 0 {
		return nil
	}
	return &trigger{lits: lits}
}

// required returns literals one of which every match contains.
func required(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		lit := string(re.Rune)
		if len(lit) < minTrigger {
			return nil, false
		}
		// multi folds ASCII case only: a case-insensitive literal with
		// other letters gives no trigger, so its regexp always runs.
		if re.Flags&syntax.FoldCase != 0 && !isASCII(lit) {
			return nil, false
		}
		return []string{lit}, true
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return required(re.Sub[0])
		}
	case syntax.OpConcat:
		// The most selective child: the one whose shortest literal is longest.
		var best []string
		bestLen := 0
		for _, sub := range re.Sub {
			lits, ok := required(sub)
			if !ok {
				continue
			}
			short := len(lits[0])
			for _, l := range lits {
				short = min(short, len(l))
			}
			if short > bestLen {
				best, bestLen = lits, short
			}
		}
		return best, best != nil
	case syntax.OpAlternate:
		var all []string
		for _, sub := range re.Sub {
			lits, ok := required(sub)
			if !ok {
				return nil, false
			}
			all = append(all, lits...)
		}
		return all, true
	}
	return nil, false
}

// multi finds, in one pass over a text, which patterns' trigger literals
// occur in it, ignoring ASCII case: an Aho-Corasick automaton over all the
// literals. A tool result is then scanned once, not once per literal, and
// only the patterns it names run their regular expressions. Case is
// ignored for every literal, which only widens the candidates: the
// regular expression decides.
type multi struct {
	next   [][256]int32
	out    [][]int32 // state -> patterns with a literal ending here
	always []int32   // patterns without a trigger
	n      int
}

var lowerASCII = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if i >= 'A' && i <= 'Z' {
			t[i] = byte(i) + 'a' - 'A'
		}
	}
	return t
}()

func newMulti(pats []Pattern) *multi {
	m := &multi{next: make([][256]int32, 1), out: make([][]int32, 1), n: len(pats)}
	goTo := []map[byte]int32{{}}
	for pi, p := range pats {
		if p.t == nil {
			m.always = append(m.always, int32(pi))
			continue
		}
		for _, lit := range p.t.lits {
			s := int32(0)
			for i := 0; i < len(lit); i++ {
				c := lowerASCII[lit[i]]
				nx, ok := goTo[s][c]
				if !ok {
					nx = int32(len(goTo))
					goTo = append(goTo, map[byte]int32{})
					m.out = append(m.out, nil)
					goTo[s][c] = nx
				}
				s = nx
			}
			if !slicesContains(m.out[s], int32(pi)) {
				m.out[s] = append(m.out[s], int32(pi))
			}
		}
	}
	// Breadth first: failure links, then the full transition table.
	m.next = make([][256]int32, len(goTo))
	fail := make([]int32, len(goTo))
	queue := []int32{}
	for c, nx := range goTo[0] {
		m.next[0][c] = nx
		queue = append(queue, nx)
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		m.out[s] = append(m.out[s], m.out[fail[s]]...)
		for c := range 256 {
			if nx, ok := goTo[s][byte(c)]; ok {
				fail[nx] = m.next[fail[s]][c]
				m.next[s][c] = nx
				queue = append(queue, nx)
			} else {
				m.next[s][c] = m.next[fail[s]][c]
			}
		}
	}
	return m
}

func slicesContains(xs []int32, x int32) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// candidates sets hit[i] for the patterns that may match text.
func (m *multi) candidates(text string, hit []bool) {
	for _, p := range m.always {
		hit[p] = true
	}
	s := int32(0)
	for i := 0; i < len(text); i++ {
		s = m.next[s][lowerASCII[text[i]]]
		if o := m.out[s]; o != nil {
			for _, p := range o {
				hit[p] = true
			}
		}
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
