package starlark

import (
	"fmt"
	"path"
	"strings"

	sl "go.starlark.net/starlark"

	"github.com/legobuild/lego/engine"
)

// labelValue is a Label in Starlark: ctx.label, file.owner.
type labelValue struct{ l engine.Label }

var _ sl.HasAttrs = labelValue{}

func (v labelValue) String() string        { return v.l.String() }
func (v labelValue) Type() string          { return "Label" }
func (v labelValue) Freeze()               {}
func (v labelValue) Truth() sl.Bool        { return true }
func (v labelValue) Hash() (uint32, error) { return sl.String(v.l.String()).Hash() }
func (v labelValue) AttrNames() []string   { return []string{"name", "package"} }
func (v labelValue) Attr(n string) (sl.Value, error) {
	switch n {
	case "name":
		return sl.String(v.l.Name), nil
	case "package":
		return sl.String(v.l.Pkg), nil
	}
	return nil, nil
}

// fileValue is an engine.File in Starlark.
type fileValue struct{ f *engine.File }

var _ sl.HasAttrs = fileValue{}

func (v fileValue) String() string        { return fmt.Sprintf("<file %s>", v.f.Path) }
func (v fileValue) Type() string          { return "File" }
func (v fileValue) Freeze()               {}
func (v fileValue) Truth() sl.Bool        { return true }
func (v fileValue) Hash() (uint32, error) { return sl.String(v.f.Path).Hash() }
func (v fileValue) AttrNames() []string {
	return []string{"basename", "dirname", "extension", "is_directory", "is_source", "owner", "path", "short_path"}
}
func (v fileValue) Attr(n string) (sl.Value, error) {
	f := v.f
	switch n {
	case "path":
		return sl.String(f.Path), nil
	case "short_path":
		return sl.String(f.ShortPath()), nil
	case "basename":
		return sl.String(path.Base(f.Path)), nil
	case "dirname":
		return sl.String(path.Dir(f.Path)), nil
	case "extension":
		return sl.String(strings.TrimPrefix(path.Ext(f.Path), ".")), nil
	case "is_directory":
		return sl.Bool(f.Dir), nil
	case "is_source":
		return sl.Bool(f.Source), nil
	case "owner":
		return labelValue{f.Owner}, nil
	}
	return nil, nil
}

func filesList(fs []*engine.File) *sl.List {
	vs := make([]sl.Value, len(fs))
	for i, f := range fs {
		vs[i] = fileValue{f}
	}
	return sl.NewList(vs)
}

// targetValue is an analysed dependency: t.label, t.files, t[Provider].
type targetValue struct{ t *engine.Target }

var (
	_ sl.HasAttrs = targetValue{}
	_ sl.Mapping  = targetValue{}
)

func (v targetValue) String() string        { return fmt.Sprintf("<target %s>", v.t.Label) }
func (v targetValue) Type() string          { return "Target" }
func (v targetValue) Freeze()               {}
func (v targetValue) Truth() sl.Bool        { return true }
func (v targetValue) Hash() (uint32, error) { return sl.String(v.t.Label.String()).Hash() }
func (v targetValue) AttrNames() []string   { return []string{"files", "label"} }
func (v targetValue) Attr(n string) (sl.Value, error) {
	switch n {
	case "label":
		return labelValue{v.t.Label}, nil
	case "files":
		return filesList(v.t.Files), nil
	}
	return nil, nil
}

func (v targetValue) Get(k sl.Value) (sl.Value, bool, error) {
	p, ok := k.(*provider)
	if !ok {
		return nil, false, fmt.Errorf("%s: index must be a provider, got %s", v.t.Label, k.Type())
	}
	if p == defaultInfo {
		return newInstance(defaultInfo, sl.StringDict{"files": filesList(v.t.Files)}), true, nil
	}
	inst, ok := v.t.Providers[p]
	if !ok {
		return nil, false, fmt.Errorf("%s does not provide %s", v.t.Label, p.name)
	}
	return inst.(sl.Value), true, nil
}

// provider is DefaultInfo or a provider() a .star file declared.
type provider struct {
	name   string
	fields []string // nil: any field
}

var defaultInfo = &provider{name: "DefaultInfo", fields: []string{"files"}}

var _ sl.Callable = (*provider)(nil)

func (p *provider) String() string        { return "<provider " + p.name + ">" }
func (p *provider) Type() string          { return "provider" }
func (p *provider) Freeze()               {}
func (p *provider) Truth() sl.Bool        { return true }
func (p *provider) Hash() (uint32, error) { return sl.String(p.name).Hash() }
func (p *provider) Name() string          { return p.name }
func (p *provider) CallInternal(_ *sl.Thread, args sl.Tuple, kwargs []sl.Tuple) (sl.Value, error) {
	if len(args) > 0 {
		return nil, fmt.Errorf("%s: only keyword arguments are allowed", p.name)
	}
	d := sl.StringDict{}
	for _, kv := range kwargs {
		k := string(kv[0].(sl.String))
		if p.fields != nil && !contains(p.fields, k) {
			return nil, fmt.Errorf("%s: unknown field %q (fields: %s)", p.name, k, strings.Join(p.fields, ", "))
		}
		d[k] = kv[1]
	}
	return newInstance(p, d), nil
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// instance is a value a provider made.
type instance struct {
	p      *provider
	fields sl.StringDict
}

func newInstance(p *provider, d sl.StringDict) *instance { return &instance{p, d} }

var _ sl.HasAttrs = (*instance)(nil)

func (v *instance) String() string {
	var b strings.Builder
	b.WriteString(v.p.name + "(")
	for i, k := range v.fields.Keys() {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s = %s", k, v.fields[k])
	}
	return b.String() + ")"
}
func (v *instance) Type() string          { return v.p.name }
func (v *instance) Freeze()               { v.fields.Freeze() }
func (v *instance) Truth() sl.Bool        { return true }
func (v *instance) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: %s", v.p.name) }
func (v *instance) AttrNames() []string   { return v.fields.Keys() }
func (v *instance) Attr(n string) (sl.Value, error) {
	if x, ok := v.fields[n]; ok {
		return x, nil
	}
	if v.p.fields != nil && contains(v.p.fields, n) {
		return sl.None, nil
	}
	return nil, nil
}
