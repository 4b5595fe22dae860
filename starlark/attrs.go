package starlark

import (
	"fmt"
	"sort"
	"strings"

	sl "go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/legobuild/lego/engine"
)

// attrSpec is the value attr.string(...) and friends return.
type attrSpec struct {
	spec engine.AttrSpec
	def  sl.Value // Starlark default, converted when the rule is declared
}

func (a *attrSpec) String() string        { return "<attr." + a.spec.Type.String() + ">" }
func (a *attrSpec) Type() string          { return "attr" }
func (a *attrSpec) Freeze()               {}
func (a *attrSpec) Truth() sl.Bool        { return true }
func (a *attrSpec) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: attr") }

func attrBuiltin(name string, t engine.AttrType) *sl.Builtin {
	return sl.NewBuiltin("attr."+name, func(_ *sl.Thread, b *sl.Builtin, args sl.Tuple, kwargs []sl.Tuple) (sl.Value, error) {
		var def sl.Value = sl.None
		var mandatory, allowFiles, single, executable bool
		var doc string
		var values *sl.List
		if err := sl.UnpackArgs(b.Name(), args, kwargs, "default?", &def, "mandatory?", &mandatory, "doc?", &doc,
			"allow_files?", &allowFiles, "allow_single_file?", &single, "executable?", &executable, "values?", &values); err != nil {
			return nil, err
		}
		return &attrSpec{spec: engine.AttrSpec{Type: t, Mandatory: mandatory, Doc: doc}, def: def}, nil
	})
}

var attrModule = &starlarkstruct.Module{Name: "attr", Members: sl.StringDict{
	"string":                  attrBuiltin("string", engine.AttrString),
	"int":                     attrBuiltin("int", engine.AttrInt),
	"bool":                    attrBuiltin("bool", engine.AttrBool),
	"label":                   attrBuiltin("label", engine.AttrLabel),
	"label_list":              attrBuiltin("label_list", engine.AttrLabelList),
	"string_list":             attrBuiltin("string_list", engine.AttrStringList),
	"string_dict":             attrBuiltin("string_dict", engine.AttrStringDict),
	"dict":                    attrBuiltin("dict", engine.AttrStringDict),
	"string_keyed_label_dict": attrBuiltin("string_keyed_label_dict", engine.AttrLabelDict),
	"int_list":                attrBuiltin("int_list", engine.AttrIntList),
}}

// typeError is the one sentence a wrong attribute type gets.
func typeError(kind, attr string, t engine.AttrType, v sl.Value) error {
	return fmt.Errorf("%s: attribute %s: expected %s, got %s (%s)", kind, attr, t, v.Type(), clipValue(v))
}

func clipValue(v sl.Value) string {
	s := v.String()
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// convertAttr turns a Starlark value into the Go value engine.Target holds.
func convertAttr(kind string, s engine.AttrSpec, v sl.Value, pkg string) (any, error) {
	bad := func() (any, error) { return nil, typeError(kind, s.Name, s.Type, v) }
	switch s.Type {
	case engine.AttrString:
		if x, ok := v.(sl.String); ok {
			return string(x), nil
		}
		return bad()
	case engine.AttrInt:
		x, ok := v.(sl.Int)
		if !ok {
			return bad()
		}
		i, ok := x.Int64()
		if !ok {
			return nil, fmt.Errorf("%s: attribute %s: %s does not fit in 64 bits", kind, s.Name, x)
		}
		return i, nil
	case engine.AttrBool:
		if x, ok := v.(sl.Bool); ok {
			return bool(x), nil
		}
		return bad()
	case engine.AttrLabel:
		if v == sl.None {
			return engine.Label{}, nil
		}
		x, ok := v.(sl.String)
		if !ok {
			return bad()
		}
		l, err := engine.ParseLabel(string(x), pkg)
		if err != nil {
			return nil, fmt.Errorf("%s: attribute %s: %w", kind, s.Name, err)
		}
		return l, nil
	case engine.AttrLabelList, engine.AttrStringList:
		seq, ok := v.(sl.Indexable)
		if !ok || v.Type() == "string" {
			return bad()
		}
		strs := make([]string, seq.Len())
		for i := range strs {
			e, ok := seq.Index(i).(sl.String)
			if !ok {
				return nil, fmt.Errorf("%s: attribute %s: expected %s, element %d is %s (%s)", kind, s.Name, s.Type, i, seq.Index(i).Type(), clipValue(seq.Index(i)))
			}
			strs[i] = string(e)
		}
		if s.Type == engine.AttrStringList {
			return strs, nil
		}
		labels := make([]engine.Label, len(strs))
		for i, str := range strs {
			l, err := engine.ParseLabel(str, pkg)
			if err != nil {
				return nil, fmt.Errorf("%s: attribute %s: %w", kind, s.Name, err)
			}
			labels[i] = l
		}
		return labels, nil
	case engine.AttrStringDict:
		d, ok := v.(*sl.Dict)
		if !ok {
			return bad()
		}
		m := make(map[string]string, d.Len())
		for _, kv := range d.Items() {
			k, ok := kv[0].(sl.String)
			if !ok {
				return nil, fmt.Errorf("%s: attribute %s: dict keys must be strings, got %s", kind, s.Name, kv[0].Type())
			}
			switch x := kv[1].(type) {
			case sl.String:
				m[string(k)] = string(x)
			case sl.Int, sl.Float, sl.Bool:
				m[string(k)] = x.String()
			default:
				return nil, fmt.Errorf("%s: attribute %s: value of %q is %s, want string or number", kind, s.Name, string(k), x.Type())
			}
		}
		return m, nil
	case engine.AttrIntList:
		seq, ok := v.(sl.Indexable)
		if !ok || v.Type() == "string" {
			return bad()
		}
		out := make([]int64, seq.Len())
		for i := range out {
			x, ok := seq.Index(i).(sl.Int)
			var n int64
			if ok {
				n, ok = x.Int64()
			}
			if !ok {
				return nil, fmt.Errorf("%s: attribute %s: expected int_list, element %d is %s (%s)", kind, s.Name, i, seq.Index(i).Type(), clipValue(seq.Index(i)))
			}
			out[i] = n
		}
		return out, nil
	case engine.AttrLabelDict, engine.AttrLabelDictOrdered:
		d, ok := v.(*sl.Dict)
		if !ok {
			return bad()
		}
		m := make(map[string]engine.Label, d.Len())
		var ordered []engine.KeyedLabel // d.Items() is in insertion order
		for _, kv := range d.Items() {
			k, ok1 := kv[0].(sl.String)
			x, ok2 := kv[1].(sl.String)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("%s: attribute %s: expected string keys and label strings, got %s: %s", kind, s.Name, kv[0].Type(), kv[1].Type())
			}
			l, err := engine.ParseLabel(string(x), pkg)
			if err != nil {
				return nil, fmt.Errorf("%s: attribute %s: key %q: %w", kind, s.Name, string(k), err)
			}
			m[string(k)] = l
			ordered = append(ordered, engine.KeyedLabel{Key: string(k), Label: l})
		}
		if s.Type == engine.AttrLabelDictOrdered {
			return ordered, nil
		}
		return m, nil
	}
	return bad()
}

// toStarlark turns an attribute value back into Starlark for ctx.attr.
func toStarlark(v any) sl.Value {
	switch v := v.(type) {
	case string:
		return sl.String(v)
	case int64:
		return sl.MakeInt64(v)
	case bool:
		return sl.Bool(v)
	case []string:
		vs := make([]sl.Value, len(v))
		for i, s := range v {
			vs[i] = sl.String(s)
		}
		return sl.NewList(vs)
	case []int64:
		vs := make([]sl.Value, len(v))
		for i, n := range v {
			vs[i] = sl.MakeInt64(n)
		}
		return sl.NewList(vs)
	case map[string]string:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := sl.NewDict(len(v))
		for _, k := range keys {
			d.SetKey(sl.String(k), sl.String(v[k]))
		}
		return d
	}
	return sl.None
}

func attrNames(specs []engine.AttrSpec) string {
	n := make([]string, len(specs))
	for i, s := range specs {
		n[i] = s.Name
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}
