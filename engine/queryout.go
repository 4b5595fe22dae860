package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Write prints the result in a lego query --output format: label (one
// per line), json (label, kind, location, deps, attrs) or graph
// (Graphviz dot, edges within the result).
func (r *QueryResult) Write(w io.Writer, format string) error {
	switch format {
	case "label":
		for _, lab := range r.Labels {
			fmt.Fprintln(w, lab)
		}
	case "json":
		type jt struct {
			Label string            `json:"label"`
			Kind  string            `json:"kind"`
			Pos   string            `json:"location,omitempty"`
			Deps  []string          `json:"deps,omitempty"`
			Attrs map[string]string `json:"attrs,omitempty"`
		}
		out := make([]jt, 0, len(r.Labels))
		for _, lab := range r.Labels {
			t := r.Targets[lab]
			j := jt{Label: lab.String(), Kind: t.Kind(), Pos: t.Pos}
			for _, d := range t.Deps() {
				j.Deps = append(j.Deps, d.String())
			}
			if t.Rule != nil {
				j.Attrs = map[string]string{}
				for _, s := range t.Rule.Attrs() {
					j.Attrs[s.Name] = FormatAttr(t.Attrs[s.Name])
				}
			}
			out = append(out, j)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	case "graph":
		in := map[Label]bool{}
		for _, lab := range r.Labels {
			in[lab] = true
		}
		fmt.Fprintln(w, "digraph lego {")
		fmt.Fprintln(w, "  node [shape=box];")
		for _, lab := range r.Labels {
			fmt.Fprintf(w, "  %q;\n", lab.String())
			for _, d := range r.Targets[lab].Deps() {
				if in[d] {
					fmt.Fprintf(w, "  %q -> %q;\n", lab.String(), d.String())
				}
			}
		}
		fmt.Fprintln(w, "}")
	default:
		return fmt.Errorf("--output=%s: want label, json or graph", format)
	}
	return nil
}

// Explain prints, for each action of the last build's records recs that
// ran and matches one of pats, what changed since the run before.
func Explain(w io.Writer, recs []*ActionRecord, pats []Pattern) {
	if recs == nil {
		fmt.Fprintln(w, "no build of this workspace is recorded (lego-out/.lego is missing)")
		return
	}
	for _, p := range pats {
		n := 0
		for _, r := range recs {
			lab, err := ParseLabel(r.Label, "")
			if err != nil || !p.MatchesPkg(lab.Pkg) || (!p.All && !p.Recursive && lab.Name != p.Name) {
				continue
			}
			n++
			fmt.Fprintf(w, "%s %s %s ran because:\n", r.Label, r.Mnemonic, strings.TrimPrefix(r.Output, OutDir+"/"))
			for _, reason := range r.Reasons {
				fmt.Fprintln(w, "  - "+reason)
			}
		}
		if n == 0 {
			fmt.Fprintf(w, "%s: no action of it ran in the last build (it was up to date, or not built)\n", p)
		}
	}
}
