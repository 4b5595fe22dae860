package engine

import (
	"strings"
	"testing"
)

var labelSeeds = []struct{ s, pkg string }{
	{"//pkg:name", ""}, {"//a/b", ""}, {"//:root", ""}, {":x", "p/q"}, {"file.txt", "p"},
	{"sub/file.txt", "p"}, {"//a/../b:x", ""}, {"//a:", ""}, {"", ""}, {"@repo//a:b", ""}, {"//", ""},
	{"//...", ""}, {"//a/...", ""}, {"//a:all", ""}, {"...", "p"}, {":all", "p"}, {"x/...", "p"},
	{"/...", ""}, {"//a/...:x", ""}, {"//a:b:c", ""}, {"//a:b/", ""}, {"//a\x00:b", ""}, {"a//b", "p"},
}

// A label that parses is valid and prints as a label that parses back to
// it; so does a pattern.
func FuzzParseLabel(f *testing.F) {
	for _, s := range labelSeeds {
		f.Add(s.s, s.pkg)
	}
	f.Fuzz(func(t *testing.T, s, pkg string) {
		if checkPkg(pkg) != nil {
			return // the package of a BUILD file is a valid one
		}
		l, err := ParseLabel(s, pkg)
		if err != nil {
			if !strings.Contains(err.Error(), "label") {
				t.Fatalf("ParseLabel(%q): error %q does not say it is about a label", s, err)
			}
			return
		}
		if checkPkg(l.Pkg) != nil || checkName(l.Name) != nil {
			t.Fatalf("ParseLabel(%q, %q) = %#v, not a valid label", s, pkg, l)
		}
		back, err := ParseLabel(l.String(), "")
		if err != nil || back != l {
			t.Fatalf("ParseLabel(%q, %q) = %#v prints as %q, which parses to %#v, %v", s, pkg, l, l.String(), back, err)
		}
	})
}

func FuzzParsePattern(f *testing.F) {
	for _, s := range labelSeeds {
		f.Add(s.s, s.pkg)
	}
	f.Fuzz(func(t *testing.T, s, pkg string) {
		if checkPkg(pkg) != nil {
			return // the working package is a valid one
		}
		p, err := ParsePattern(s, pkg)
		if err != nil {
			return
		}
		if checkPkg(p.Pkg) != nil || (p.All || p.Recursive) != (p.Name == "") || p.All && p.Recursive ||
			p.Name != "" && checkName(p.Name) != nil {
			t.Fatalf("ParsePattern(%q, %q) = %#v, not a valid pattern", s, pkg, p)
		}
		back, err := ParsePattern(p.String(), "")
		if err != nil || back != p {
			t.Fatalf("ParsePattern(%q, %q) = %#v prints as %q, which parses to %#v, %v", s, pkg, p, p.String(), back, err)
		}
		if !p.MatchesPkg(p.Pkg) {
			t.Fatalf("%s does not match its own package %q", p, p.Pkg)
		}
	})
}
