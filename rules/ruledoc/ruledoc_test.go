package ruledoc

import (
	"strings"
	"testing"

	"github.com/legobuild/lego/engine"
)

// fake is a rule with one attribute of each kind the renderer formats.
type fake struct{}

func (fake) Kind() string { return "fake_rule" }
func (fake) Doc() string  { return "A rule for the tests." }
func (fake) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "src", Type: engine.AttrLabel, Mandatory: true, Doc: "the input | with a pipe"},
		{Name: "suite", Type: engine.AttrString, Default: "bookworm", Doc: "a <suite> name"},
		{Name: "bins", Type: engine.AttrIntList, Default: []int64{50, 70, 100}},
	}
}
func (fake) Analyze(*engine.Context) error { return nil }

type undocumented struct{ fake }

func (undocumented) Kind() string { return "bare" }

func TestDefault(t *testing.T) {
	for _, c := range []struct {
		spec engine.AttrSpec
		want string
	}{
		{engine.AttrSpec{Type: engine.AttrLabel, Mandatory: true}, "mandatory"},
		{engine.AttrSpec{Type: engine.AttrString, Default: "bookworm"}, `"bookworm"`},
		{engine.AttrSpec{Type: engine.AttrString}, `""`},
		{engine.AttrSpec{Type: engine.AttrInt, Default: int64(100)}, "100"},
		{engine.AttrSpec{Type: engine.AttrBool, Default: true}, "True"},
		{engine.AttrSpec{Type: engine.AttrBool}, "False"},
		{engine.AttrSpec{Type: engine.AttrLabel}, "None"},
		{engine.AttrSpec{Type: engine.AttrLabelList}, "[]"},
		{engine.AttrSpec{Type: engine.AttrStringList, Default: []string{"resolved", "semi_resolved"}}, `["resolved", "semi_resolved"]`},
		{engine.AttrSpec{Type: engine.AttrIntList, Default: []int64{50, 70, 100}}, "[50, 70, 100]"},
		{engine.AttrSpec{Type: engine.AttrStringDict}, "{}"},
		{engine.AttrSpec{Type: engine.AttrStringDict, Default: map[string]string{"b": "2", "a": "1"}}, `{"a": "1", "b": "2"}`},
		{engine.AttrSpec{Type: engine.AttrLabelDict}, "{}"},
		{engine.AttrSpec{Type: engine.AttrLabelDictOrdered}, "{}"},
	} {
		if got := Default(c.spec); got != c.want {
			t.Errorf("Default(%v %v) = %s, want %s", c.spec.Type, c.spec.Default, got, c.want)
		}
	}
}

func TestRuleText(t *testing.T) {
	var b strings.Builder
	if err := RuleText(&b, fake{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"fake_rule(name, src, ...)\n", "A rule for the tests.", "src ", "mandatory", `"bookworm"`, "[50, 70, 100]", "a <suite> name"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func TestMarkdown(t *testing.T) {
	ref := Reference{Rules: []engine.Rule{fake{}, undocumented{}}, Builtins: []Builtin{{Name: "glob(include)", Doc: "files"}}}
	var b strings.Builder
	if err := ref.Markdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"- [`fake_rule`](#fake_rule)\n",
		"## fake_rule\n",
		"| `src` | label | mandatory | the input \\| with a pipe |\n", // a bare | would split the cell
		"| `suite` | string | `\"bookworm\"` | a &lt;suite> name |\n", // <suite> would vanish as a tag
		"## bare\n",
		"| `glob(include)` | files |\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func TestUnknownRuleNamesTheKnown(t *testing.T) {
	ref := Reference{Rules: []engine.Rule{fake{}, undocumented{}}}
	if r, err := ref.Rule("bare"); err != nil || r.Kind() != "bare" {
		t.Fatalf("Rule(bare) = %v, %v", r, err)
	}
	_, err := ref.Rule("fake_rul")
	if err == nil || !strings.Contains(err.Error(), "did you mean fake_rule?") || !strings.Contains(err.Error(), "rules: fake_rule, bare") {
		t.Fatalf("error %v, want a suggestion and the known rules", err)
	}
}

func TestBuiltinKeys(t *testing.T) {
	ref := Reference{Builtins: []Builtin{{Name: "attr.int, attr.bool", Doc: "types"}, {Name: "ctx.actions.run(outputs)", Doc: "run"}}}
	for _, k := range []string{"attr.int", "attr.bool", "ctx.actions.run"} {
		if _, ok := ref.Builtin(k); !ok {
			t.Errorf("Builtin(%q) not found", k)
		}
	}
	if _, ok := ref.Builtin("ctx.actions"); ok {
		t.Errorf("Builtin(ctx.actions) found, want only whole names")
	}
}
