package ruledoc

import (
	"bytes"
	"fmt"

	"github.com/legobuild/lego/engine"
)

// Rule is rule_reference: the reference of the built-in rules, written at
// analysis time (a write action, no tool), so that a workspace can build
// its own docs/rules.md. Ref is filled in by whoever gathers the rules,
// and includes this rule.
type Rule struct {
	Ref *Reference
}

func (*Rule) Kind() string { return "rule_reference" }

func (*Rule) Doc() string {
	return "Writes the reference of lego's built-in rules and Starlark built-ins (what `lego help rules` prints) to a file, " +
		"at analysis time: no action runs a tool. The lego repository's //:rules_md is docs/rules.md."
}

func (*Rule) Attrs() []engine.AttrSpec {
	return []engine.AttrSpec{
		{Name: "out", Type: engine.AttrString, Doc: "the file to write, relative to the package (default: <name>.md, or <name>.txt for text)"},
		{Name: "format", Type: engine.AttrString, Default: "markdown", Doc: "markdown (the docs/rules.md page) or text (lego help rules)"},
	}
}

func (r *Rule) Analyze(ctx *engine.Context) error {
	var b bytes.Buffer
	format := ctx.Attr("format").(string)
	ext := ".md"
	switch format {
	case "markdown":
		r.Ref.Markdown(&b)
	case "text":
		r.Ref.Text(&b)
		ext = ".txt"
	default:
		return fmt.Errorf("attribute format: %q is not markdown or text", format)
	}
	name := ctx.Attr("out").(string)
	if name == "" {
		name = ctx.Label().Name + ext
	}
	out, err := ctx.DeclareFile(name, false)
	if err != nil {
		return fmt.Errorf("attribute out: %w", err)
	}
	return ctx.Write(out, b.Bytes(), false)
}
