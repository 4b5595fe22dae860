package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Loader gives the engine loaded packages; the starlark package implements it.
type Loader interface {
	Root() string
	Package(pkg string) (*Package, error)
	// Expand lists the targets a pattern names, loading their packages.
	Expand(p Pattern) ([]Label, error)
}

// Graph is the analysed build: targets and the actions they produced.
type Graph struct {
	Root    string
	Targets map[Label]*Target
	Actions []*Action
	outputs map[string]*Action // exec path -> producing action
	loader  Loader
	state   map[Label]int // 0 unvisited, 1 in progress, 2 done
	stack   []Label
	// reads records what loading and analysis read (the loader's, when
	// it keeps one); restored is set on a graph a snapshot gave back.
	reads    *Reads
	restored bool
	snap     *restoredGraph
}

// Error is a user-facing error tied to a place in a BUILD file.
type Error struct {
	Pos string
	Msg string
}

func (e *Error) Error() string {
	if e.Pos == "" {
		return e.Msg
	}
	return e.Pos + ": " + e.Msg
}

// Analyze runs the analysis of roots and everything they depend on.
func Analyze(l Loader, roots []Label) (*Graph, error) {
	g := &Graph{
		Root:    l.Root(),
		Targets: map[Label]*Target{},
		outputs: map[string]*Action{},
		loader:  l,
		state:   map[Label]int{},
	}
	if r, ok := l.(interface{ Reads() *Reads }); ok {
		g.reads = r.Reads()
	}
	for _, r := range roots {
		if _, err := g.analyze(r, nil, ""); err != nil {
			return g, err
		}
	}
	return g, nil
}

// Producer returns the action that writes f, nil for a source.
func (g *Graph) Producer(f *File) *Action { return f.producer }

func (g *Graph) analyze(l Label, from *Target, attr string) (*Target, error) {
	switch g.state[l] {
	case 2:
		return g.Targets[l], nil
	case 1:
		i := len(g.stack) - 1
		for i >= 0 && g.stack[i] != l {
			i--
		}
		cycle := append(append([]string{}, labelsToStrings(g.stack[i:])...), l.String())
		return nil, &Error{Pos: g.Targets[l].Pos, Msg: "dependency cycle: " + strings.Join(cycle, " -> ")}
	}
	t, err := g.Resolve(l, from, attr)
	if err != nil {
		return nil, err
	}
	if t.Rule == nil {
		g.state[l] = 2
		return t, nil
	}
	g.state[l] = 1
	g.stack = append(g.stack, l)
	for _, s := range t.Rule.Attrs() {
		for _, d := range AttrLabels(t.Attrs[s.Name]) {
			if _, err := g.analyze(d, t, s.Name); err != nil {
				return nil, err
			}
		}
	}
	g.stack = g.stack[:len(g.stack)-1]
	ctx := &Context{g: g, Target: t}
	if err := t.Rule.Analyze(ctx); err != nil {
		if _, ok := err.(*Error); ok {
			return nil, err
		}
		return nil, &Error{Pos: t.Pos, Msg: fmt.Sprintf("%s (%s): %v", l, t.Kind(), err)}
	}
	if t.Files == nil {
		for _, a := range t.Actions {
			t.Files = append(t.Files, a.Outputs...)
		}
	}
	g.state[l] = 2
	return t, nil
}

func labelsToStrings(ls []Label) []string {
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = l.String()
	}
	return s
}

// Resolve finds the target a label names: a declared rule, or a file in the
// package's directory. from/attr name the referring target for errors.
func (g *Graph) Resolve(l Label, from *Target, attr string) (*Target, error) {
	if t, ok := g.Targets[l]; ok {
		return t, nil
	}
	where := func() (string, string) {
		if from == nil {
			return "", ""
		}
		return from.Pos, fmt.Sprintf("%s: attribute %s: ", from.Label, attr)
	}
	p, err := g.loader.Package(l.Pkg)
	if err != nil {
		pos, pre := where()
		return nil, &Error{Pos: pos, Msg: pre + err.Error()}
	}
	if t, ok := p.Targets[l.Name]; ok {
		g.Targets[l] = t
		return t, nil
	}
	fi, err := os.Stat(filepath.Join(g.Root, filepath.FromSlash(l.Pkg), filepath.FromSlash(l.Name)))
	if err == nil && !fi.IsDir() {
		path := l.Name
		if l.Pkg != "" {
			path = l.Pkg + "/" + l.Name
		}
		t := &Target{Label: l, Pos: p.BuildFile}
		t.Files = []*File{{Path: path, Owner: l, Source: true, Executable: fi.Mode()&0o111 != 0}}
		t.analyzed = true
		g.Targets[l] = t
		return t, nil
	}
	pos, pre := where()
	msg := fmt.Sprintf("%sno target or source file %s", pre, l)
	if sugg := Closest(l.Name, p.Order, 3); len(sugg) > 0 {
		for i := range sugg {
			sugg[i] = Label{l.Pkg, sugg[i]}.String()
		}
		msg += "; did you mean " + strings.Join(sugg, ", ") + "?"
	} else if len(p.Order) > 0 {
		msg += fmt.Sprintf(" (package //%s declares %d targets)", l.Pkg, len(p.Order))
	}
	return nil, &Error{Pos: pos, Msg: msg}
}

// Closest returns up to n candidates nearest to s by edit distance.
func Closest(s string, candidates []string, n int) []string {
	type c struct {
		name string
		d    int
	}
	var cs []c
	limit := len(s)/3 + 1
	for _, cand := range candidates {
		if d := editDistance(s, cand); d <= limit {
			cs = append(cs, c{cand, d})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].d < cs[j].d })
	var out []string
	for i := 0; i < len(cs) && i < n; i++ {
		out = append(out, cs[i].name)
	}
	return out
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Context is what a rule's analysis sees of its target and dependencies.
type Context struct {
	g      *Graph
	Target *Target
}

func (c *Context) Label() Label      { return c.Target.Label }
func (c *Context) Attr(n string) any { return c.Target.Attrs[n] }
func (c *Context) Root() string      { return c.g.Root }

// ReadSource returns the absolute path of a source file the rule reads
// while it is analysed (a task set's instances), recording the read: a
// later build re-analyses when the file changed.
func (c *Context) ReadSource(f *File) (string, error) {
	p := filepath.Join(c.g.Root, filepath.FromSlash(f.Path))
	return p, c.g.reads.File(p)
}

// Dep returns an analysed dependency.
func (c *Context) Dep(l Label) *Target { return c.g.Targets[l] }

// Files returns the default files of the dependencies an attribute names.
func (c *Context) Files(attr string) []*File {
	var out []*File
	for _, l := range AttrLabels(c.Target.Attrs[attr]) {
		out = append(out, c.g.Targets[l].Files...)
	}
	return out
}

// DeclareFile declares an output of this target at lego-out/<pkg>/<name>.
func (c *Context) DeclareFile(name string, dir bool) (*File, error) {
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("declare %q: %w", name, err)
	}
	p := OutDir + "/" + name
	if c.Target.Label.Pkg != "" {
		p = OutDir + "/" + c.Target.Label.Pkg + "/" + name
	}
	return &File{Path: p, Owner: c.Target.Label, Dir: dir}, nil
}

// AddAction registers an action of this target; each output must be a file
// this target declared and no other action produces.
func (c *Context) AddAction(a *Action) error {
	a.Owner = c.Target.Label
	if len(a.Outputs) == 0 {
		return fmt.Errorf("action %s has no outputs", a.Mnemonic)
	}
	for _, o := range a.Outputs {
		if o.Source || o.Owner != c.Target.Label {
			return fmt.Errorf("action %s: output %s is not declared by %s", a.Mnemonic, o.Path, c.Target.Label)
		}
		if prev, ok := c.g.outputs[o.Path]; ok {
			return fmt.Errorf("output %s is produced twice (by %s and %s)", o.ShortPath(), prev.Describe(), a.Describe())
		}
	}
	if a.Resources.CPU == 0 {
		a.Resources.CPU = 1
	}
	if a.Image != nil {
		// The manifest file is an input so that the image is built first
		// and its digest is at hand when the key is computed.
		if !slices.Contains(a.Inputs, a.Image) {
			a.Inputs = append(a.Inputs, a.Image)
		}
		// The image's PATH applies unless the rule set one of its own.
		if a.Env["PATH"] == DefaultPath {
			env := make(map[string]string, len(a.Env))
			for k, v := range a.Env {
				if k != "PATH" {
					env[k] = v
				}
			}
			a.Env = env
		}
	}
	if a.LayerOutput != nil && !slices.Contains(a.Outputs, a.LayerOutput) {
		return fmt.Errorf("action %s: its layer output %s is not one of its outputs", a.Mnemonic, a.LayerOutput.ShortPath())
	}
	for _, o := range a.Outputs {
		o.producer = a
		c.g.outputs[o.Path] = a
	}
	a.id = len(c.g.Actions)
	c.g.Actions = append(c.g.Actions, a)
	c.Target.Actions = append(c.Target.Actions, a)
	return nil
}

// Write registers an action that writes content to out.
func (c *Context) Write(out *File, content []byte, executable bool) error {
	out.Executable = executable
	return c.AddAction(&Action{Mnemonic: "Write", Outputs: []*File{out}, IsWrite: true, Content: content})
}
