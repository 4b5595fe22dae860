// Package ruledoc renders the reference of the built-in rules from their
// own declarations (Kind, Attrs with their Doc, engine.Documented), as
// text for `lego help` and as Markdown for docs/rules.md, so that the two
// cannot drift apart. It also holds rule_reference, the rule that writes
// that Markdown in a build.
package ruledoc

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/internal/words"
)

// Builtin is a Starlark built-in that is not a rule: glob, package, attr.*,
// ctx.actions.* and the like.
type Builtin struct {
	Name string // how it is called, e.g. "glob(include, exclude=[], allow_empty=True)"
	Doc  string // one line
}

// Keys are the names a Builtin is looked up by: Name up to its "(",
// split at ", " for an entry naming several.
func (b Builtin) Keys() []string {
	k, _, _ := strings.Cut(b.Name, "(")
	return strings.Split(k, ", ")
}

// Reference is everything a BUILD file can call without a load().
type Reference struct {
	Rules    []engine.Rule
	Builtins []Builtin
}

// commonNote is what every rule accepts beyond its attributes (see the
// starlark package's commonAttrs).
const commonNote = "Every rule also takes `name` (mandatory: the target's name) and accepts `visibility`, `tags` and `testonly`, which lego ignores."

// Rule returns the rule of that kind, or an error naming the known ones.
func (r Reference) Rule(kind string) (engine.Rule, error) {
	var kinds []string
	for _, x := range r.Rules {
		if x.Kind() == kind {
			return x, nil
		}
		kinds = append(kinds, x.Kind())
	}
	msg := fmt.Sprintf("no built-in rule %q", kind)
	if s := engine.Closest(kind, kinds, 3); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, ", ") + "?"
	}
	return nil, fmt.Errorf("%s (rules: %s)", msg, strings.Join(kinds, ", "))
}

// Builtin returns the built-in called key ("glob", "ctx.actions.run",
// "attr.int": an entry may name several, separated by ", ").
func (r Reference) Builtin(key string) (Builtin, bool) {
	for _, b := range r.Builtins {
		if slices.Contains(b.Keys(), key) {
			return b, true
		}
	}
	return Builtin{}, false
}

// Text writes every rule, then the other built-ins, for a terminal.
func (r Reference) Text(w io.Writer) error {
	ew := &errWriter{w: w}
	for _, line := range words.Wrap("Built-in rules: "+strings.Join(kinds(r.Rules), ", ")+".", 80) {
		fmt.Fprintln(ew, line)
	}
	fmt.Fprintln(ew)
	for _, line := range words.Wrap(commonNote, 80) {
		fmt.Fprintln(ew, line)
	}
	for _, x := range r.Rules {
		fmt.Fprintln(ew)
		RuleText(ew, x)
	}
	if len(r.Builtins) > 0 {
		fmt.Fprint(ew, "\nOther built-ins\n\n")
		for _, b := range r.Builtins {
			BuiltinText(ew, b)
		}
	}
	return ew.err
}

// Help prints the reference of name: every rule ("rules"), one
// built-in, or one rule; in Markdown or as text.
func (r Reference) Help(w io.Writer, name string, markdown bool) error {
	if name == "rules" {
		if markdown {
			return r.Markdown(w)
		}
		return r.Text(w)
	}
	if b, ok := r.Builtin(name); ok {
		return BuiltinText(w, b)
	}
	x, err := r.Rule(name)
	if err != nil {
		return err
	}
	if markdown {
		return RuleMarkdown(w, x)
	}
	return RuleText(w, x)
}

// RuleText writes one rule: its signature, its paragraph and a table of
// its attributes.
func RuleText(w io.Writer, x engine.Rule) error {
	ew := &errWriter{w: w}
	fmt.Fprintln(ew, x.Kind()+signature(x))
	if d := engine.RuleDoc(x); d != "" {
		for _, line := range words.Wrap(d, 76) {
			fmt.Fprintln(ew, "    "+line)
		}
	}
	if attrs := x.Attrs(); len(attrs) > 0 {
		fmt.Fprintln(ew)
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		for _, a := range attrs {
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", a.Name, a.Type, Default(a), a.Doc)
		}
		tw.Flush()
	}
	return ew.err
}

// BuiltinText writes a built-in's call and, indented below, its line:
// the calls are too long for a column.
func BuiltinText(w io.Writer, b Builtin) error {
	_, err := fmt.Fprintf(w, "%s\n    %s\n", b.Name, b.Doc)
	return err
}

// Markdown writes the whole reference as one Markdown page.
func (r Reference) Markdown(w io.Writer) error {
	ew := &errWriter{w: w}
	fmt.Fprint(ew, "# Built-in rules\n\n")
	fmt.Fprint(ew, "<!-- Generated from the rules' own declarations; do not edit. Regenerate: make docs -->\n\n")
	fmt.Fprintf(ew, "What a BUILD file can call without a `load()`. `lego help rules` prints the same, `lego help RULE` one rule. %s\n\n", commonNote)
	for _, x := range r.Rules {
		fmt.Fprintf(ew, "- [`%s`](#%s)\n", x.Kind(), x.Kind())
	}
	if len(r.Builtins) > 0 {
		fmt.Fprint(ew, "- [Other built-ins](#other-built-ins)\n")
	}
	for _, x := range r.Rules {
		fmt.Fprintln(ew)
		RuleMarkdown(ew, x)
	}
	if len(r.Builtins) > 0 {
		fmt.Fprint(ew, "\n## Other built-ins\n\n| built-in | description |\n| --- | --- |\n")
		for _, b := range r.Builtins {
			fmt.Fprintf(ew, "| `%s` | %s |\n", strings.ReplaceAll(b.Name, "|", `\|`), mdText(b.Doc))
		}
	}
	return ew.err
}

// RuleMarkdown writes one rule's section: heading, signature, paragraph
// and attribute table.
func RuleMarkdown(w io.Writer, x engine.Rule) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "## %s\n\n```python\n%s%s\n```\n", x.Kind(), x.Kind(), signature(x))
	if d := engine.RuleDoc(x); d != "" {
		fmt.Fprintf(ew, "\n%s\n", mdText(d))
	}
	if attrs := x.Attrs(); len(attrs) > 0 {
		fmt.Fprint(ew, "\n| attribute | type | default | description |\n| --- | --- | --- | --- |\n")
		for _, a := range attrs {
			def := Default(a)
			if !a.Mandatory {
				def = "`" + strings.ReplaceAll(def, "|", `\|`) + "`"
			}
			fmt.Fprintf(ew, "| `%s` | %s | %s | %s |\n", a.Name, a.Type, def, mdText(a.Doc))
		}
	}
	return ew.err
}

// signature is "(name, a, b, ...)": the mandatory attributes, as a user
// starts writing the call; the table gives the rest.
func signature(x engine.Rule) string {
	names := []string{"name"}
	more := false
	for _, a := range x.Attrs() {
		if a.Mandatory {
			names = append(names, a.Name)
		} else {
			more = true
		}
	}
	if more {
		names = append(names, "...")
	}
	return "(" + strings.Join(names, ", ") + ")"
}

// Default renders what an attribute is when the BUILD file omits it, as a
// Starlark literal, or "mandatory".
func Default(a engine.AttrSpec) string {
	if a.Mandatory {
		return "mandatory"
	}
	return literal(a.ZeroValue())
}

func literal(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case bool:
		if v {
			return "True"
		}
		return "False"
	case int64:
		return strconv.FormatInt(v, 10)
	case engine.Label:
		if v == (engine.Label{}) {
			return "None"
		}
		return strconv.Quote(v.String())
	case []string:
		return list(v, strconv.Quote)
	case []int64:
		return list(v, func(n int64) string { return strconv.FormatInt(n, 10) })
	case []engine.Label:
		return list(v, func(l engine.Label) string { return strconv.Quote(l.String()) })
	case []engine.KeyedLabel:
		return list(v, func(e engine.KeyedLabel) string { return strconv.Quote(e.Key) + ": " + strconv.Quote(e.Label.String()) }, "{}")
	case map[string]string:
		return dict(v, strconv.Quote)
	case map[string]engine.Label:
		return dict(v, func(l engine.Label) string { return strconv.Quote(l.String()) })
	}
	return fmt.Sprint(v)
}

func list[T any](xs []T, f func(T) string, brackets ...string) string {
	b := "[]"
	if len(brackets) > 0 {
		b = brackets[0]
	}
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = f(x)
	}
	return b[:1] + strings.Join(s, ", ") + b[1:]
}

func dict[T any](m map[string]T, f func(T) string) string {
	var s []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		s = append(s, strconv.Quote(k)+": "+f(m[k]))
	}
	return "{" + strings.Join(s, ", ") + "}"
}

func kinds(rs []engine.Rule) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Kind()
	}
	return out
}

// mdText makes a doc string safe in a Markdown table cell: "|" would end
// the cell, "<path>" would vanish as an HTML tag, "**" would turn bold.
func mdText(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", "*", `\*`, "\n", " ").Replace(s)
}

// errWriter keeps the first write error so the renderers can print freely.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return len(p), nil
	}
	_, e.err = e.w.Write(p)
	return len(p), e.err
}
