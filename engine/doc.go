package engine

// Documented is a rule that describes itself to users: `lego help RULE`
// and docs/rules.md show Doc as the rule's paragraph. The engine never
// calls it; it lives here so that rules and the renderer share one name.
type Documented interface {
	Doc() string
}

// RuleDoc is r's description, or "" when r has none.
func RuleDoc(r Rule) string {
	if d, ok := r.(Documented); ok {
		return d.Doc()
	}
	return ""
}
