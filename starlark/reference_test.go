package starlark

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/legobuild/lego/engine"
)

var update = flag.Bool("update", false, "rewrite docs/rules.md from the rules' declarations")

// rulesMD is docs/rules.md, seen from this package's directory.
var rulesMD = filepath.Join("..", "docs", "rules.md")

// TestReferenceCoversTheLoader: every rule a BUILD file can call is in
// the reference with a paragraph and every attribute with a doc.
func TestReferenceCoversTheLoader(t *testing.T) {
	l, err := NewLoader(writeWorkspace(t, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	ref := Reference()
	var text, md bytes.Buffer
	if err := ref.Text(&text); err != nil {
		t.Fatal(err)
	}
	if err := ref.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for name, v := range l.natives {
		rc, ok := v.(*ruleClass)
		if !ok {
			continue
		}
		kinds = append(kinds, name)
		r, err := ref.Rule(name)
		if err != nil {
			t.Errorf("loader rule %s: %v", name, err)
			continue
		}
		if engine.RuleDoc(r) == "" {
			t.Errorf("rule %s (%T) has no Doc()", name, rc.rule)
		}
		if !strings.Contains(md.String(), "\n## "+name+"\n") {
			t.Errorf("docs: no section for %s", name)
		}
		if !strings.Contains(text.String(), "\n"+name+"(name") {
			t.Errorf("text: no entry for %s", name)
		}
		for _, a := range r.Attrs() {
			if a.Doc == "" {
				t.Errorf("%s: attribute %s has no Doc", name, a.Name)
			}
			if !strings.Contains(md.String(), "| `"+a.Name+"` | "+a.Type.String()+" |") {
				t.Errorf("docs: no row for %s.%s", name, a.Name)
			}
		}
	}
	if len(kinds) != len(ref.Rules) {
		t.Errorf("loader has %d rules, the reference %d", len(kinds), len(ref.Rules))
	}
	for _, want := range []string{
		"| `trainer` | string | `\"llamafactory\"` |",
		"| `bins` | int_list | `[50, 70, 100]` |",
		"| `base_model` | string | mandatory |",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("docs: missing %q", want)
		}
	}
}

// TestBuiltinsDocumented: what the loader predeclares besides rules, and
// what ctx and ctx.actions hold, each has a line in Builtins.
func TestBuiltinsDocumented(t *testing.T) {
	root := writeWorkspace(t, `
-- defs.star --
def _impl(ctx):
    out = ctx.actions.declare_file("names.txt")
    ctx.actions.write(output = out, content = " ".join(["ctx." + n for n in dir(ctx)] + ["ctx.actions." + n for n in dir(ctx.actions)]))
    return [DefaultInfo(files = [out])]
names = rule(implementation = _impl)
-- BUILD --
load(":defs.star", "names")
names(name = "n")
`)
	l, err := NewLoader(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := engine.Analyze(l, []engine.Label{{Name: "n"}})
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Fields(string(g.Actions[0].Content))
	for name, v := range l.predeclared() {
		if _, rule := v.(*ruleClass); rule {
			continue
		}
		if m, ok := v.(interface{ AttrNames() []string }); ok && name == "attr" {
			for _, n := range m.AttrNames() {
				names = append(names, "attr."+n)
			}
			continue
		}
		names = append(names, name)
	}
	names = append(names, "workspace", "load")
	ref := Reference()
	for _, n := range names {
		if _, ok := ref.Builtin(n); !ok {
			t.Errorf("built-in %s has no line in Builtins", n)
		}
	}
	for _, b := range Builtins {
		for _, k := range b.Keys() {
			if k != "File" && !slices.Contains(names, k) {
				t.Errorf("Builtins documents %s, which the loader does not define", k)
			}
		}
	}
}

// TestRulesMarkdownCurrent fails when docs/rules.md is not what the rules
// declare.
func TestRulesMarkdownCurrent(t *testing.T) {
	var b bytes.Buffer
	if err := Reference().Markdown(&b); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(rulesMD, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, err := os.ReadFile(rulesMD)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, b.Bytes()) {
		t.Fatalf("docs/rules.md is stale: regenerate it with `make docs` (go test ./starlark -run TestRulesMarkdownCurrent -update) and commit it")
	}
}

// TestRootWorkspace: the repository root is a workspace whose //... is its
// own targets only (not the examples' nested workspaces nor testdata
// fixtures), and whose //:rules_md writes docs/rules.md.
func TestRootWorkspace(t *testing.T) {
	l, err := NewLoader("..", nil)
	if err != nil {
		t.Fatal(err)
	}
	labels, err := l.Expand(engine.Pattern{Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, lab := range labels {
		if lab.Pkg != "" {
			t.Errorf("//... reaches %s, outside the root package", lab)
		}
	}
	rulesMD := engine.Label{Name: "rules_md"}
	if !slices.Contains(labels, rulesMD) {
		t.Fatalf("//... = %v, want //:rules_md among them", labels)
	}
	g, err := engine.Analyze(l, []engine.Label{rulesMD})
	if err != nil {
		t.Fatal(err)
	}
	a := g.Targets[rulesMD].Actions[0]
	if !a.IsWrite || a.Outputs[0].Path != engine.OutDir+"/rules.md" {
		t.Fatalf("//:rules_md action %s writes %s, want a write of lego-out/rules.md", a.Mnemonic, a.Outputs[0].Path)
	}
	want, err := os.ReadFile(filepath.Join("..", "docs", "rules.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Content, want) {
		t.Errorf("//:rules_md differs from docs/rules.md")
	}
}

// TestRecursiveSkipsNestedWorkspaces: //... does not descend into a
// directory with its own WORKSPACE, testdata or lego-out.
func TestRecursiveSkipsNestedWorkspaces(t *testing.T) {
	root := writeWorkspace(t, `
-- BUILD --
-- a/BUILD --
-- a/b/BUILD --
-- a/testdata/BUILD --
this is a fixture, not Starlark
-- a/b/lego-out/BUILD --
-- examples/demo/WORKSPACE --
-- examples/demo/pkg/BUILD --
nor is this a package of the outer workspace
-- examples/BUILD --
`)
	l, err := NewLoader(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Packages("")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"", "a", "a/b", "examples"}; !slices.Equal(got, want) {
		t.Errorf("Packages = %q, want %q", got, want)
	}
	// A testdata directory named on purpose is still searched.
	if got, _ := l.Packages("a/testdata"); !slices.Equal(got, []string{"a/testdata"}) {
		t.Errorf("Packages(a/testdata) = %q", got)
	}
	_, err = l.Expand(engine.Pattern{Pkg: "examples/demo", Recursive: true})
	if err == nil || !strings.Contains(err.Error(), "examples/demo is a workspace of its own") {
		t.Errorf("//examples/demo/...: error %v, want it named as a workspace of its own", err)
	}
}
