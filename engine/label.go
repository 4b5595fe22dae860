package engine

import (
	"fmt"
	"strings"
)

// Label names a target: //pkg:name. Pkg is the slash-separated package path
// relative to the workspace root ("" for the root package).
type Label struct {
	Pkg  string
	Name string
}

func (l Label) String() string { return "//" + l.Pkg + ":" + l.Name }

// Less orders labels by package, then name.
func (l Label) Less(o Label) bool {
	if l.Pkg != o.Pkg {
		return l.Pkg < o.Pkg
	}
	return l.Name < o.Name
}

// ParseLabel parses an absolute or package-relative label. Relative forms
// (":name" or "name") resolve against pkg.
func ParseLabel(s, pkg string) (Label, error) {
	if s == "" {
		return Label{}, fmt.Errorf("empty label")
	}
	if strings.HasPrefix(s, "@") {
		return Label{}, fmt.Errorf("label %q: external repositories are not supported", s)
	}
	if strings.HasPrefix(s, "//") {
		rest := s[2:]
		p, name, hasColon := strings.Cut(rest, ":")
		if !hasColon {
			// //pkg means //pkg:<last segment of pkg>.
			name = p[strings.LastIndexByte(p, '/')+1:]
			if name == "" {
				return Label{}, fmt.Errorf("label %q: no target name", s)
			}
		}
		if err := checkPkg(p); err != nil {
			return Label{}, fmt.Errorf("label %q: %w", s, err)
		}
		if err := checkName(name); err != nil {
			return Label{}, fmt.Errorf("label %q: %w", s, err)
		}
		return Label{Pkg: p, Name: name}, nil
	}
	name := strings.TrimPrefix(s, ":")
	if err := checkName(name); err != nil {
		return Label{}, fmt.Errorf("label %q: %w", s, err)
	}
	return Label{Pkg: pkg, Name: name}, nil
}

func checkPkg(p string) error {
	if p == "" {
		return nil
	}
	if strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
		return fmt.Errorf("bad package path %q", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("package path %q may not contain %q", p, seg)
		}
	}
	if strings.ContainsAny(p, ":\x00") {
		return fmt.Errorf("bad package path %q", p)
	}
	return nil
}

func checkName(n string) error {
	if n == "" {
		return fmt.Errorf("empty target name")
	}
	if strings.HasPrefix(n, "/") || strings.HasSuffix(n, "/") || strings.Contains(n, "//") || strings.ContainsAny(n, ":\x00") {
		return fmt.Errorf("bad target name %q", n)
	}
	for _, seg := range strings.Split(n, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("target name %q may not contain %q", n, seg)
		}
	}
	return nil
}

// Pattern selects targets on the command line: //pkg:name, //pkg:all,
// //pkg/... and //... .
type Pattern struct {
	Pkg       string
	Name      string // "" with All or Recursive
	All       bool   // every target of Pkg
	Recursive bool   // every target of Pkg and the packages below it
}

func (p Pattern) String() string {
	switch {
	case p.Recursive && p.Pkg == "":
		return "//..."
	case p.Recursive:
		return "//" + p.Pkg + "/..."
	case p.All:
		return "//" + p.Pkg + ":all"
	}
	return Label{p.Pkg, p.Name}.String()
}

// ParsePattern parses a target pattern; relative patterns resolve against
// pkg (the package of the working directory).
func ParsePattern(s, pkg string) (Pattern, error) {
	abs := s
	if !strings.HasPrefix(s, "//") {
		switch {
		case s == "...":
			abs = "//" + pkg + "/..."
		case strings.HasSuffix(s, "/...") || strings.Contains(s, ":") && !strings.HasPrefix(s, ":"):
			abs = "//" + join(pkg, s)
		case strings.HasPrefix(s, ":"):
			abs = "//" + pkg + s
		default:
			abs = "//" + join(pkg, s)
		}
		abs = strings.Replace(abs, "///", "//", 1)
	}
	rest := abs[2:]
	if rest == "..." {
		return Pattern{Recursive: true}, nil
	}
	if p, ok := strings.CutSuffix(rest, "/..."); ok {
		if err := checkPkg(p); err != nil {
			return Pattern{}, fmt.Errorf("pattern %q: %w", s, err)
		}
		return Pattern{Pkg: p, Recursive: true}, nil
	}
	if p, ok := strings.CutSuffix(rest, ":all"); ok {
		if err := checkPkg(p); err != nil {
			return Pattern{}, fmt.Errorf("pattern %q: %w", s, err)
		}
		return Pattern{Pkg: p, All: true}, nil
	}
	l, err := ParseLabel(abs, pkg)
	if err != nil {
		return Pattern{}, err
	}
	if l.Name == "all" {
		// As in Bazel, all is the wildcard in a pattern however it is
		// spelled (//p/all is //p/all:all); else it would print as one.
		return Pattern{Pkg: l.Pkg, All: true}, nil
	}
	return Pattern{Pkg: l.Pkg, Name: l.Name}, nil
}

func join(pkg, rel string) string {
	if pkg == "" {
		return rel
	}
	return pkg + "/" + rel
}

// MatchesPkg reports whether the pattern covers package p.
func (p Pattern) MatchesPkg(pkg string) bool {
	if !p.Recursive {
		return pkg == p.Pkg
	}
	return p.Pkg == "" || pkg == p.Pkg || strings.HasPrefix(pkg, p.Pkg+"/")
}
