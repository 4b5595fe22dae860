package mask

import (
	"bytes"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"

	"github.com/legobuild/lego/rules/swe/format"
)

// trigger is a cheap necessary condition for a pattern: the text must hold
// one of these literals (in any ASCII case) for the regular expression to
// have a chance. Most tool results contain none; multi looks for all the
// patterns' literals in one pass.
type trigger struct {
	lits []string
}

// minTrigger is the shortest literal worth searching for; maxLits bounds
// the literals a run of literals and small classes expands to ("exit code
// [1-9]" is nine), maxClass the characters of a class worth expanding.
const (
	minTrigger = 3
	maxLits    = 64
	maxClass   = 16
)

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
		// The most selective set: the one whose shortest literal is
		// longest, among the children's and those of runs of adjacent
		// literals and small classes, expanded ("exit code " then [1-9]
		// gives "exit code 1" ... "exit code 9", which "exit code 0.",
		// the usual ending of a command, does not hold).
		var best []string
		bestLen := 0
		consider := func(lits []string) {
			short := len(lits[0])
			for _, l := range lits {
				short = min(short, len(l))
			}
			if short >= minTrigger && short > bestLen {
				best, bestLen = lits, short
			}
		}
		var run []string
		for _, sub := range re.Sub {
			if a, ok := alts(sub); ok {
				if run != nil && len(run)*len(a) <= maxLits {
					run = cross(run, a)
					continue
				}
				if run != nil {
					consider(run)
				}
				run = a
				continue
			}
			if run != nil {
				consider(run)
				run = nil
			}
			if lits, ok := required(sub); ok {
				consider(lits)
			}
		}
		if run != nil {
			consider(run)
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

// alts returns the strings re can match when it is a literal or a small
// character class.
func alts(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 && !isASCII(string(re.Rune)) {
			return nil, false
		}
		return []string{string(re.Rune)}, true
	case syntax.OpCharClass:
		var out []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if int(re.Rune[i+1]-re.Rune[i]) >= maxClass-len(out) {
				return nil, false
			}
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				out = append(out, string(r))
			}
		}
		return out, len(out) > 0
	case syntax.OpCapture:
		return alts(re.Sub[0])
	}
	return nil, false
}

// cross returns every a followed by every b.
func cross(a, b []string) []string {
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, x+y)
		}
	}
	return out
}

// multi finds, in one pass over a text, which patterns' trigger literals
// occur in it, ignoring ASCII case: an Aho-Corasick automaton over all the
// literals. A tool result is then scanned once, not once per literal, and
// only the patterns it names run their regular expressions. Case is
// ignored for every literal, which only widens the candidates: the
// regular expression decides.
type multi struct {
	// next is the transition table, both cases of a letter going the same
	// way. A state with outputs is stored negated (^s), so the scan loop
	// tests one sign instead of loading out[s] for every byte.
	next   [][256]int32
	out    [][]int32 // state -> patterns with a literal ending here
	always []int32   // patterns without a trigger
	n      int
	maxLen int // the longest literal
	// raw: no literal holds a character JSON may escape other than by
	// \u ('"', '\\', '/', control characters), so a literal found in a
	// decoded string is also found in its JSON text when that has no \u
	// escape, and scanning the text before decoding it is exact.
	raw bool
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
	m := &multi{next: make([][256]int32, 1), out: make([][]int32, 1), n: len(pats), raw: true}
	goTo := []map[byte]int32{{}}
	for pi, p := range pats {
		if p.t == nil {
			m.always = append(m.always, int32(pi))
			continue
		}
		for _, lit := range p.t.lits {
			if strings.ContainsFunc(lit, func(r rune) bool { return r == '"' || r == '\\' || r == '/' || r < 0x20 }) {
				m.raw = false
			}
			m.maxLen = max(m.maxLen, len(lit))
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
			if !slices.Contains(m.out[s], int32(pi)) {
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
	for s := range m.next {
		for c := range 256 {
			nx := m.next[s][lowerASCII[c]]
			if len(m.out[nx]) > 0 {
				nx = ^nx
			}
			m.next[s][c] = nx
		}
	}
	return m
}

// candidates sets hit[i] for the patterns that may match text.
func (m *multi) candidates(text string, hit []bool) { scan(m, text, hit) }

// rawCandidates does the same for JSON string text (escapes not decoded),
// or returns false when only the decoded string can tell.
func (m *multi) rawCandidates(text format.Text, hit []bool) bool {
	if !m.raw || bytes.Contains(text, []byte(`\u`)) {
		return false
	}
	scan(m, text, hit)
	return true
}

func scan[T ~string | ~[]byte](m *multi, text T, hit []bool) {
	for _, p := range m.always {
		hit[p] = true
	}
	// Each step waits for the last (the state is the address of the next
	// load), so four runs over four quarters of the text are interleaved
	// to keep the core busy. A quarter's run goes on maxLen-1 bytes into
	// the next one: a literal that starts in it is found whole.
	const k = 4
	n := len(text)
	q := n / k
	if q < 64 {
		run(m, text, 0, 0, n, hit)
		return
	}
	next := m.next
	t0, t1, t2, t3 := text[:q], text[q:2*q], text[2*q:3*q], text[3*q:4*q]
	var s0, s1, s2, s3 int32
	for i := range len(t0) {
		s0 = next[s0][t0[i]]
		s1 = next[s1][t1[i]]
		s2 = next[s2][t2[i]]
		s3 = next[s3][t3[i]]
		if s0|s1|s2|s3 < 0 {
			s0, s1, s2, s3 = m.mark(s0, hit), m.mark(s1, hit), m.mark(s2, hit), m.mark(s3, hit)
		}
	}
	for j, s := range [k]int32{s0, s1, s2, s3} {
		end := min((j+1)*q+m.maxLen-1, n)
		if j == k-1 {
			end = n
		}
		run(m, text, s, (j+1)*q, end, hit)
	}
}

// run goes on from state s over text[from:to].
func run[T ~string | ~[]byte](m *multi, text T, s int32, from, to int, hit []bool) {
	next := m.next
	for i := from; i < to; i++ {
		s = next[s][text[i]]
		if s < 0 {
			s = m.mark(s, hit)
		}
	}
}

// mark records the outputs of a flagged state and returns the state.
func (m *multi) mark(s int32, hit []bool) int32 {
	if s >= 0 {
		return s
	}
	for _, p := range m.out[^s] {
		hit[p] = true
	}
	return ^s
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
