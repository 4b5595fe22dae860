package engine

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Query evaluates a query expression over the loaded target graph (no
// analysis): deps(x[, depth]), rdeps(universe, x[, depth]), kind(regex, x),
// attr(name, regex, x), target patterns, and the set operators + - ^
// (also spelled union, except, intersect).
func Query(l Loader, expr string) (*QueryResult, error) {
	q := &querier{l: l, targets: map[Label]*Target{}}
	p := &qparser{toks: tokenize(expr), src: expr}
	ast, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("query %q: unexpected %q", expr, p.toks[p.pos])
	}
	set, err := q.eval(ast)
	if err != nil {
		return nil, err
	}
	res := &QueryResult{Targets: map[Label]*Target{}}
	for lab := range set {
		res.Labels = append(res.Labels, lab)
		res.Targets[lab] = q.targets[lab]
	}
	sort.Slice(res.Labels, func(i, j int) bool { return res.Labels[i].Less(res.Labels[j]) })
	return res, nil
}

// QueryResult is a sorted set of targets.
type QueryResult struct {
	Labels  []Label
	Targets map[Label]*Target
}

type labelSet map[Label]bool

type querier struct {
	l       Loader
	targets map[Label]*Target
}

func (q *querier) target(l Label) (*Target, error) {
	if t, ok := q.targets[l]; ok {
		return t, nil
	}
	p, err := q.l.Package(l.Pkg)
	if err != nil {
		return nil, err
	}
	t, ok := p.Targets[l.Name]
	if !ok {
		t = &Target{Label: l, Pos: p.BuildFile} // a source file
	}
	q.targets[l] = t
	return t, nil
}

// closure walks deps (forward) from roots up to depth (-1 = unbounded).
func (q *querier) closure(roots labelSet, depth int) (labelSet, error) {
	out := labelSet{}
	frontier := make([]Label, 0, len(roots))
	for l := range roots {
		frontier = append(frontier, l)
		out[l] = true
	}
	for d := 0; len(frontier) > 0 && (depth < 0 || d < depth); d++ {
		var next []Label
		for _, l := range frontier {
			t, err := q.target(l)
			if err != nil {
				return nil, err
			}
			for _, dep := range t.Deps() {
				if !out[dep] {
					out[dep] = true
					next = append(next, dep)
				}
			}
		}
		frontier = next
	}
	for l := range out {
		if _, err := q.target(l); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type qnode struct {
	fn   string // "" for a word
	word string
	args []*qnode
	op   string // binary operator when fn == "op"
}

func (q *querier) eval(n *qnode) (labelSet, error) {
	switch n.fn {
	case "":
		pat, err := ParsePattern(n.word, "")
		if err != nil {
			return nil, err
		}
		labels, err := q.l.Expand(pat)
		if err != nil {
			return nil, err
		}
		s := labelSet{}
		for _, l := range labels {
			if _, err := q.target(l); err != nil {
				return nil, err
			}
			s[l] = true
		}
		return s, nil
	case "op":
		a, err := q.eval(n.args[0])
		if err != nil {
			return nil, err
		}
		b, err := q.eval(n.args[1])
		if err != nil {
			return nil, err
		}
		out := labelSet{}
		switch n.op {
		case "+":
			for l := range a {
				out[l] = true
			}
			for l := range b {
				out[l] = true
			}
		case "-":
			for l := range a {
				if !b[l] {
					out[l] = true
				}
			}
		case "^":
			for l := range a {
				if b[l] {
					out[l] = true
				}
			}
		}
		return out, nil
	case "deps":
		if len(n.args) < 1 || len(n.args) > 2 {
			return nil, fmt.Errorf("deps(expr[, depth]) takes 1 or 2 arguments")
		}
		depth, err := depthArg(n.args, 1)
		if err != nil {
			return nil, err
		}
		s, err := q.eval(n.args[0])
		if err != nil {
			return nil, err
		}
		return q.closure(s, depth)
	case "rdeps":
		if len(n.args) < 2 || len(n.args) > 3 {
			return nil, fmt.Errorf("rdeps(universe, expr[, depth]) takes 2 or 3 arguments")
		}
		depth, err := depthArg(n.args, 2)
		if err != nil {
			return nil, err
		}
		u, err := q.eval(n.args[0])
		if err != nil {
			return nil, err
		}
		if u, err = q.closure(u, -1); err != nil {
			return nil, err
		}
		s, err := q.eval(n.args[1])
		if err != nil {
			return nil, err
		}
		return q.reverse(u, s, depth)
	case "kind", "attr":
		want := 2
		if n.fn == "attr" {
			want = 3
		}
		if len(n.args) != want {
			return nil, fmt.Errorf("%s() takes %d arguments", n.fn, want)
		}
		for _, a := range n.args[:want-1] {
			if a.fn != "" {
				return nil, fmt.Errorf("%s(): argument must be a word", n.fn)
			}
		}
		re, err := regexp.Compile(n.args[want-2].word)
		if err != nil {
			return nil, fmt.Errorf("%s(): %w", n.fn, err)
		}
		s, err := q.eval(n.args[want-1])
		if err != nil {
			return nil, err
		}
		out := labelSet{}
		for l := range s {
			t := q.targets[l]
			if n.fn == "kind" {
				if re.MatchString(t.Kind()) {
					out[l] = true
				}
				continue
			}
			if v, ok := t.Attrs[n.args[0].word]; ok && re.MatchString(FormatAttr(v)) {
				out[l] = true
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown query function %s()", n.fn)
}

func depthArg(args []*qnode, i int) (int, error) {
	if len(args) <= i {
		return -1, nil
	}
	d, err := strconv.Atoi(args[i].word)
	if err != nil || args[i].fn != "" || d < 0 {
		return 0, fmt.Errorf("depth must be a non-negative integer, got %q", args[i].word)
	}
	return d, nil
}

func (q *querier) reverse(universe, roots labelSet, depth int) (labelSet, error) {
	rev := map[Label][]Label{}
	for l := range universe {
		for _, d := range q.targets[l].Deps() {
			rev[d] = append(rev[d], l)
		}
	}
	out := labelSet{}
	var frontier []Label
	for l := range roots {
		if universe[l] {
			out[l] = true
			frontier = append(frontier, l)
		}
	}
	for d := 0; len(frontier) > 0 && (depth < 0 || d < depth); d++ {
		var next []Label
		for _, l := range frontier {
			for _, r := range rev[l] {
				if !out[r] {
					out[r] = true
					next = append(next, r)
				}
			}
		}
		frontier = next
	}
	return out, nil
}

func tokenize(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := rune(s[i])
		switch {
		case unicode.IsSpace(c):
			i++
		case strings.ContainsRune("(),+^", c):
			toks = append(toks, string(c))
			i++
		case c == '-' && (i+1 == len(s) || s[i+1] == ' '):
			toks = append(toks, "-")
			i++
		case c == '"' || c == '\'':
			j := strings.IndexByte(s[i+1:], s[i])
			if j < 0 {
				toks = append(toks, s[i+1:])
				return toks
			}
			toks = append(toks, s[i+1:i+1+j])
			i += j + 2
		default:
			j := i
			for j < len(s) && !unicode.IsSpace(rune(s[j])) && !strings.ContainsRune("(),+^", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

type qparser struct {
	toks []string
	pos  int
	src  string
}

func (p *qparser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *qparser) expr() (*qnode, error) {
	left, err := p.term()
	if err != nil {
		return nil, err
	}
	for {
		op := p.peek()
		switch op {
		case "union":
			op = "+"
		case "except":
			op = "-"
		case "intersect":
			op = "^"
		}
		if op != "+" && op != "-" && op != "^" {
			return left, nil
		}
		p.pos++
		right, err := p.term()
		if err != nil {
			return nil, err
		}
		left = &qnode{fn: "op", op: op, args: []*qnode{left, right}}
	}
}

func (p *qparser) term() (*qnode, error) {
	t := p.peek()
	if t == "" {
		return nil, fmt.Errorf("query %q: unexpected end", p.src)
	}
	p.pos++
	if t == "(" {
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("query %q: missing )", p.src)
		}
		p.pos++
		return e, nil
	}
	if p.peek() != "(" {
		return &qnode{word: t}, nil
	}
	p.pos++
	n := &qnode{fn: t}
	for {
		a, err := p.expr()
		if err != nil {
			return nil, err
		}
		n.args = append(n.args, a)
		switch p.peek() {
		case ",":
			p.pos++
		case ")":
			p.pos++
			return n, nil
		default:
			return nil, fmt.Errorf("query %q: expected , or ) after argument of %s()", p.src, t)
		}
	}
}
