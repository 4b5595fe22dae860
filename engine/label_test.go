package engine

import "testing"

func TestParseLabel(t *testing.T) {
	cases := []struct {
		in, pkg string
		want    Label
		bad     bool
	}{
		{in: "//pkg:name", want: Label{"pkg", "name"}},
		{in: "//a/b", want: Label{"a/b", "b"}},
		{in: "//:root", want: Label{"", "root"}},
		{in: ":x", pkg: "p/q", want: Label{"p/q", "x"}},
		{in: "file.txt", pkg: "p", want: Label{"p", "file.txt"}},
		{in: "sub/file.txt", pkg: "p", want: Label{"p", "sub/file.txt"}},
		{in: "//a/../b:x", bad: true},
		{in: "//a:", bad: true},
		{in: "", bad: true},
		{in: "@repo//a:b", bad: true},
		{in: "//", bad: true},
	}
	for _, c := range cases {
		got, err := ParseLabel(c.in, c.pkg)
		if c.bad {
			if err == nil {
				t.Errorf("ParseLabel(%q) = %v, want error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseLabel(%q, %q) = %v, %v; want %v", c.in, c.pkg, got, err, c.want)
		}
	}
}

func TestParsePattern(t *testing.T) {
	cases := []struct {
		in, pkg string
		want    Pattern
	}{
		{in: "//...", want: Pattern{Recursive: true}},
		{in: "//a/...", want: Pattern{Pkg: "a", Recursive: true}},
		{in: "//a:all", want: Pattern{Pkg: "a", All: true}},
		{in: "//a:x", want: Pattern{Pkg: "a", Name: "x"}},
		{in: "//a", want: Pattern{Pkg: "a", Name: "a"}},
		{in: "...", pkg: "p", want: Pattern{Pkg: "p", Recursive: true}},
		{in: ":x", pkg: "p", want: Pattern{Pkg: "p", Name: "x"}},
		{in: "...", want: Pattern{Recursive: true}},
		{in: "all", pkg: "p", want: Pattern{Pkg: "p/all", All: true}},
		{in: "//p/all", want: Pattern{Pkg: "p/all", All: true}},
	}
	for _, c := range cases {
		got, err := ParsePattern(c.in, c.pkg)
		if err != nil || got != c.want {
			t.Errorf("ParsePattern(%q, %q) = %+v, %v; want %+v", c.in, c.pkg, got, err, c.want)
		}
	}
	p, _ := ParsePattern("//a/...", "")
	for pkg, want := range map[string]bool{"a": true, "a/b": true, "ab": false, "": false} {
		if p.MatchesPkg(pkg) != want {
			t.Errorf("//a/... MatchesPkg(%q) = %v", pkg, !want)
		}
	}
}
