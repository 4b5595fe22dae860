package starlark

import (
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	sl "go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/legobuild/lego/engine"
)

// ruleClass is a callable rule: calling it in a BUILD file declares a target.
type ruleClass struct {
	rule engine.Rule
	kind string // the name it is exported under
}

var _ sl.Callable = (*ruleClass)(nil)

func (r *ruleClass) String() string        { return "<rule " + r.kind + ">" }
func (r *ruleClass) Type() string          { return "rule" }
func (r *ruleClass) Freeze()               {}
func (r *ruleClass) Truth() sl.Bool        { return true }
func (r *ruleClass) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: rule") }
func (r *ruleClass) Name() string          { return r.kind }

// commonAttrs are accepted on every rule and ignored.
var commonAttrs = map[string]bool{"visibility": true, "tags": true, "testonly": true}

func (r *ruleClass) CallInternal(thread *sl.Thread, args sl.Tuple, kwargs []sl.Tuple) (sl.Value, error) {
	if r.kind == "" {
		return nil, fmt.Errorf("a rule must be exported from a .star file under a name before it is used")
	}
	pb, err := currentPkg(thread, r.kind)
	if err != nil {
		return nil, err
	}
	if len(args) > 0 {
		return nil, fmt.Errorf("%s: only keyword arguments are allowed", r.kind)
	}
	pos := callPos(thread, pb.pkg.BuildFile)
	given := map[string]sl.Value{}
	for _, kv := range kwargs {
		given[string(kv[0].(sl.String))] = kv[1]
	}
	nameV, ok := given["name"].(sl.String)
	if !ok {
		return nil, &engine.Error{Pos: pos, Msg: fmt.Sprintf("%s: attribute name: a string name is required", r.kind)}
	}
	name := string(nameV)
	label, err := engine.ParseLabel(":"+name, pb.pkg.Name)
	if err != nil {
		return nil, &engine.Error{Pos: pos, Msg: fmt.Sprintf("%s: %v", r.kind, err)}
	}
	if prev, dup := pb.pkg.Targets[name]; dup {
		return nil, &engine.Error{Pos: pos, Msg: fmt.Sprintf("target %s is declared twice (first at %s)", label, prev.Pos)}
	}
	specs := r.rule.Attrs()
	known := map[string]bool{"name": true}
	attrs := make(map[string]any, len(specs))
	for _, s := range specs {
		known[s.Name] = true
		v, ok := given[s.Name]
		if !ok {
			v, ok = pb.defaults[s.Name]
		}
		if !ok {
			if s.Mandatory {
				return nil, &engine.Error{Pos: pos, Msg: fmt.Sprintf("%s %s: missing mandatory attribute %s", r.kind, label, s.Name)}
			}
			attrs[s.Name] = s.ZeroValue()
			continue
		}
		x, err := convertAttr(r.kind+" "+label.String(), s, v, pb.pkg.Name)
		if err != nil {
			return nil, &engine.Error{Pos: pos, Msg: err.Error()}
		}
		attrs[s.Name] = x
	}
	for k := range given {
		if !known[k] && !commonAttrs[k] {
			msg := fmt.Sprintf("%s %s: unknown attribute %s (attributes: %s)", r.kind, label, k, attrNames(specs))
			return nil, &engine.Error{Pos: pos, Msg: msg}
		}
	}
	t := &engine.Target{Label: label, Rule: r.rule, Attrs: attrs, Pos: pos}
	pb.pkg.Targets[name] = t
	pb.pkg.Order = append(pb.pkg.Order, name)
	return sl.None, nil
}

// rule(implementation, attrs={}, doc=""): a rule defined in Starlark.
func builtinRule(thread *sl.Thread, b *sl.Builtin, args sl.Tuple, kwargs []sl.Tuple) (sl.Value, error) {
	var impl sl.Callable
	var attrs *sl.Dict
	var doc string
	if err := sl.UnpackArgs(b.Name(), args, kwargs, "implementation", &impl, "attrs?", &attrs, "doc?", &doc); err != nil {
		return nil, err
	}
	pkg, _ := thread.Local(localDir).(string)
	sr := &starlarkRule{impl: impl, doc: doc}
	rc := &ruleClass{rule: sr}
	sr.class = rc
	if attrs != nil {
		for _, kv := range attrs.Items() {
			name, ok := kv[0].(sl.String)
			if !ok {
				return nil, fmt.Errorf("rule: attribute names must be strings, got %s", kv[0].Type())
			}
			a, ok := kv[1].(*attrSpec)
			if !ok {
				return nil, fmt.Errorf("rule: attribute %s: want an attr.* value, got %s", name, kv[1].Type())
			}
			s := a.spec
			s.Name = string(name)
			if name == "name" || commonAttrs[s.Name] {
				return nil, fmt.Errorf("rule: attribute %s is reserved", name)
			}
			if a.def != sl.None {
				v, err := convertAttr("rule", s, a.def, pkg)
				if err != nil {
					return nil, fmt.Errorf("default of %w", err)
				}
				s.Default = v
			}
			sr.attrs = append(sr.attrs, s)
		}
	}
	sort.Slice(sr.attrs, func(i, j int) bool { return sr.attrs[i].Name < sr.attrs[j].Name })
	return rc, nil
}

// provider(doc="", fields=[...]): a new provider; instances carry data from
// a rule to the rules that depend on it.
func builtinProvider(_ *sl.Thread, b *sl.Builtin, args sl.Tuple, kwargs []sl.Tuple) (sl.Value, error) {
	var doc string
	var fields *sl.List
	if err := sl.UnpackArgs(b.Name(), args, kwargs, "doc?", &doc, "fields?", &fields); err != nil {
		return nil, err
	}
	p := &provider{}
	if fields != nil {
		fs, err := stringsOf(fields, "provider fields")
		if err != nil {
			return nil, err
		}
		p.fields = fs
	}
	return p, nil
}

// starlarkRule is an engine.Rule whose analysis runs a Starlark function.
type starlarkRule struct {
	class *ruleClass
	impl  sl.Callable
	attrs []engine.AttrSpec
	doc   string
}

func (r *starlarkRule) Kind() string             { return r.class.kind }
func (r *starlarkRule) Attrs() []engine.AttrSpec { return r.attrs }

// Doc is rule(doc = ...), for engine.Documented.
func (r *starlarkRule) Doc() string { return r.doc }

func (r *starlarkRule) Analyze(ctx *engine.Context) error {
	t := ctx.Target
	c := &ruleCtx{ctx: ctx}
	attr := sl.StringDict{"name": sl.String(t.Label.Name)}
	files := sl.StringDict{}
	file := sl.StringDict{}
	for _, s := range r.attrs {
		switch v := t.Attrs[s.Name].(type) {
		case engine.Label:
			if v == (engine.Label{}) {
				attr[s.Name], file[s.Name], files[s.Name] = sl.None, sl.None, sl.NewList(nil)
				continue
			}
			d := ctx.Dep(v)
			attr[s.Name] = targetValue{d}
			files[s.Name] = filesList(d.Files)
			file[s.Name] = sl.None
			if len(d.Files) == 1 {
				file[s.Name] = fileValue{d.Files[0]}
			}
		case []engine.Label:
			ts := make([]sl.Value, len(v))
			var fs []*engine.File
			for i, l := range v {
				d := ctx.Dep(l)
				ts[i] = targetValue{d}
				fs = append(fs, d.Files...)
			}
			attr[s.Name] = sl.NewList(ts)
			files[s.Name] = filesList(fs)
		case map[string]engine.Label:
			d := sl.NewDict(len(v))
			var fs []*engine.File
			for _, l := range engine.AttrLabels(v) {
				fs = append(fs, ctx.Dep(l).Files...)
			}
			for _, k := range slices.Sorted(maps.Keys(v)) {
				d.SetKey(sl.String(k), targetValue{ctx.Dep(v[k])})
			}
			attr[s.Name] = d
			files[s.Name] = filesList(fs)
		default:
			attr[s.Name] = toStarlark(v)
		}
	}
	actions := &starlarkstruct.Module{Name: "actions", Members: sl.StringDict{
		"declare_file":      sl.NewBuiltin("declare_file", c.declare(false)),
		"declare_directory": sl.NewBuiltin("declare_directory", c.declare(true)),
		"run":               sl.NewBuiltin("run", c.run),
		"run_shell":         sl.NewBuiltin("run_shell", c.run),
		"write":             sl.NewBuiltin("write", c.write),
	}}
	ctxV := starlarkstruct.FromStringDict(sl.String("ctx"), sl.StringDict{
		"label":   labelValue{t.Label},
		"attr":    starlarkstruct.FromStringDict(sl.String("attr"), attr),
		"files":   starlarkstruct.FromStringDict(sl.String("files"), files),
		"file":    starlarkstruct.FromStringDict(sl.String("file"), file),
		"actions": actions,
	})
	thread := &sl.Thread{Name: "analysis " + t.Label.String()}
	limitSteps(thread)
	ret, err := sl.Call(thread, r.impl, sl.Tuple{ctxV}, nil)
	if err != nil {
		e := evalError(err)
		if ee, ok := e.(*engine.Error); ok {
			ee.Msg = fmt.Sprintf("%s (%s): %s", t.Label, r.Kind(), ee.Msg)
			if ee.Pos == "" {
				ee.Pos = t.Pos
			}
			return ee
		}
		return e
	}
	return c.providers(ret)
}

type ruleCtx struct {
	ctx      *engine.Context
	declared map[string]*engine.File
}

func (c *ruleCtx) declare(dir bool) func(*sl.Thread, *sl.Builtin, sl.Tuple, []sl.Tuple) (sl.Value, error) {
	return func(_ *sl.Thread, b *sl.Builtin, args sl.Tuple, kwargs []sl.Tuple) (sl.Value, error) {
		var name string
		if err := sl.UnpackArgs(b.Name(), args, kwargs, "filename", &name); err != nil {
			return nil, err
		}
		if c.declared == nil {
			c.declared = map[string]*engine.File{}
		}
		if _, dup := c.declared[name]; dup {
			return nil, fmt.Errorf("%s: %q is declared twice", b.Name(), name)
		}
		f, err := c.ctx.DeclareFile(name, dir)
		if err != nil {
			return nil, err
		}
		c.declared[name] = f
		return fileValue{f}, nil
	}
}

func filesOf(v sl.Value, what string) ([]*engine.File, error) {
	if v == nil || v == sl.None {
		return nil, nil
	}
	seq, ok := v.(sl.Indexable)
	if !ok {
		return nil, fmt.Errorf("%s: want a list of File, got %s", what, v.Type())
	}
	out := make([]*engine.File, seq.Len())
	for i := range out {
		f, ok := seq.Index(i).(fileValue)
		if !ok {
			return nil, fmt.Errorf("%s: element %d is %s, want File", what, i, seq.Index(i).Type())
		}
		out[i] = f.f
	}
	return out, nil
}

// run implements ctx.actions.run and ctx.actions.run_shell.
func (c *ruleCtx) run(_ *sl.Thread, b *sl.Builtin, args sl.Tuple, kwargs []sl.Tuple) (sl.Value, error) {
	var outputs, inputs, tools, arguments sl.Value
	var executable, command sl.Value = sl.None, sl.None
	var env, resources *sl.Dict
	mnemonic, progress := "Action", ""
	var timeout int
	var image sl.Value = sl.None
	var network bool
	pairs := []any{"outputs", &outputs, "inputs?", &inputs, "arguments?", &arguments, "env?", &env,
		"resources?", &resources, "mnemonic?", &mnemonic, "tools?", &tools, "timeout?", &timeout, "progress_message?", &progress,
		"image?", &image, "network?", &network}
	if b.Name() == "run" {
		pairs = append(pairs, "executable", &executable)
	} else {
		pairs = append(pairs, "command", &command)
	}
	if err := sl.UnpackArgs(b.Name(), args, kwargs, pairs...); err != nil {
		return nil, err
	}
	a := &engine.Action{Mnemonic: mnemonic, Env: engine.ActionEnv(nil), Network: network, Progress: progress}
	if image != sl.None {
		t, ok := image.(targetValue)
		info := engine.ImageOf(t.t)
		if !ok || info == nil {
			return nil, fmt.Errorf("%s: image must be an image target (e.g. ctx.attr.base), got %s", b.Name(), image.String())
		}
		a.Image = info.Manifest
	}
	var err error
	if a.Outputs, err = filesOf(outputs, "outputs"); err != nil {
		return nil, err
	}
	if a.Inputs, err = filesOf(inputs, "inputs"); err != nil {
		return nil, err
	}
	toolFiles, err := filesOf(tools, "tools")
	if err != nil {
		return nil, err
	}
	a.Inputs = append(a.Inputs, toolFiles...)
	if b.Name() == "run_shell" {
		cmd, ok := command.(sl.String)
		if !ok {
			return nil, fmt.Errorf("run_shell: command must be a string, got %s", command.Type())
		}
		a.Args = []string{"/bin/bash", "-c", string(cmd), "run_shell"}
		a.Tools = []string{"/bin/bash"}
	} else {
		switch x := executable.(type) {
		case fileValue:
			a.Inputs = append(a.Inputs, x.f)
			p := x.f.Path
			if !strings.Contains(p, "/") {
				p = "./" + p
			}
			a.Args = []string{p}
		case sl.String:
			p := string(x)
			if a.Image != nil {
				// Found in the image, at run time.
				a.Args = []string{p}
				break
			}
			if !filepath.IsAbs(p) {
				found, err := exec.LookPath(p)
				if err != nil {
					return nil, fmt.Errorf("run: executable %q is not on PATH", p)
				}
				p = found
			}
			a.Args = []string{p}
			a.Tools = []string{p}
		default:
			return nil, fmt.Errorf("run: executable must be a File or a string, got %s", executable.Type())
		}
	}
	if arguments != nil && arguments != sl.None {
		seq, ok := arguments.(sl.Indexable)
		if !ok {
			return nil, fmt.Errorf("%s: arguments must be a list", b.Name())
		}
		for i := 0; i < seq.Len(); i++ {
			switch x := seq.Index(i).(type) {
			case sl.String:
				a.Args = append(a.Args, string(x))
			case fileValue:
				a.Args = append(a.Args, x.f.Path)
			case sl.Int:
				a.Args = append(a.Args, x.String())
			default:
				return nil, fmt.Errorf("%s: argument %d is %s, want string or File", b.Name(), i, x.Type())
			}
		}
	}
	if env != nil {
		m, err := convertAttr(b.Name(), engine.AttrSpec{Name: "env", Type: engine.AttrStringDict}, env, "")
		if err != nil {
			return nil, err
		}
		a.Env = engine.ActionEnv(m.(map[string]string))
	}
	if resources != nil {
		m, err := convertAttr(b.Name(), engine.AttrSpec{Name: "resources", Type: engine.AttrStringDict}, resources, "")
		if err != nil {
			return nil, err
		}
		if a.Resources, err = engine.ParseResources(m.(map[string]string)); err != nil {
			return nil, err
		}
	}
	if timeout > 0 {
		a.Timeout = time.Duration(timeout) * time.Second
	}
	return sl.None, c.ctx.AddAction(a)
}

func (c *ruleCtx) write(_ *sl.Thread, b *sl.Builtin, args sl.Tuple, kwargs []sl.Tuple) (sl.Value, error) {
	var out fileValue
	var content string
	var executable bool
	if err := sl.UnpackArgs(b.Name(), args, kwargs, "output", &out, "content", &content, "is_executable?", &executable); err != nil {
		return nil, err
	}
	return sl.None, c.ctx.Write(out.f, []byte(content), executable)
}

// providers reads what the implementation returned.
func (c *ruleCtx) providers(ret sl.Value) error {
	var items []sl.Value
	switch x := ret.(type) {
	case sl.NoneType:
	case *instance:
		items = []sl.Value{x}
	case sl.Indexable:
		for i := 0; i < x.Len(); i++ {
			items = append(items, x.Index(i))
		}
	default:
		return fmt.Errorf("implementation returned %s, want a list of providers", ret.Type())
	}
	t := c.ctx.Target
	for _, it := range items {
		inst, ok := it.(*instance)
		if !ok {
			return fmt.Errorf("implementation returned %s in its list, want providers", it.Type())
		}
		if inst.p == defaultInfo {
			fs, err := filesOf(inst.fields["files"], "DefaultInfo.files")
			if err != nil {
				return err
			}
			t.Files = append([]*engine.File{}, fs...)
			continue
		}
		if t.Providers == nil {
			t.Providers = map[any]any{}
		}
		inst.Freeze()
		t.Providers[inst.p] = inst
	}
	return nil
}
