package starlark

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/legobuild/lego/engine"
)

var buildSeeds = []string{
	``,
	`genrule(name = "a", outs = ["a.txt"], cmd = "echo hi > $@")`,
	`genrule(name = "a", srcs = glob(["*.txt"], exclude = ["b*"]), outs = ["x"], cmd = "cat $(SRCS) > $@")`,
	`[genrule(name = "g%d" % i, outs = ["g%d" % i], cmd = "touch $@") for i in range(3)]`,
	`package(default_visibility = ["//visibility:public"])
genrule(name = "a", outs = ["a"], cmd = config("mode", "x"))
filegroup(name = "fg", srcs = [":a"])`,
	`def impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    ctx.actions.run_shell(outputs = [out], command = "echo > " + out.path)
    return [DefaultInfo(files = [out])]
r = rule(implementation = impl, attrs = {"deps": attr.label_list()})
r(name = "x")
r(name = "y", deps = [":x"])`,
	`x = 0
while x < 10:
    x += 1
genrule(name = "w", outs = ["w"], cmd = str(x))`,
	`genrule(name = "a", outs = ["a"])`,
	`genrule(name = "a", srcs = ["//nope:x"], outs = ["a"], cmd = "x")`,
	`load("//defs:x.star", "y")`,
	`P = provider(fields = ["v"])
s = struct(a = 1, b = [P(v = 2)], n = package_name())`,
}

// Any BUILD body loads into a package or fails with an error naming the
// BUILD file: no panic, no hang (Starlark's steps are bounded).
func FuzzLoadBUILD(f *testing.F) {
	defer func(old uint64) { maxSteps = old }(maxSteps)
	maxSteps = 1_000_000 // an endless loop ends in well under a second
	for _, s := range buildSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, WorkspaceFileName), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, BuildFileName), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := NewLoader(root, map[string]string{"mode": "opt"})
		if err != nil {
			t.Fatal(err)
		}
		pkg, err := l.Package("")
		if err != nil {
			if pkg != nil {
				t.Fatalf("Package returned both a package and %v", err)
			}
			if !strings.Contains(err.Error(), BuildFileName) {
				t.Fatalf("error %q does not name the BUILD file", err)
			}
			return
		}
		if pkg == nil || pkg.BuildFile != BuildFileName || len(pkg.Order) != len(pkg.Targets) {
			t.Fatalf("package %+v", pkg)
		}
		labels, err := l.Expand(engine.Pattern{All: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, lab := range labels {
			if tg := pkg.Targets[lab.Name]; tg == nil || tg.Label != lab {
				t.Fatalf("target %s is listed but not declared as such", lab)
			}
		}
		// Analysis runs rule implementations: an error or a graph.
		if g, err := engine.Analyze(l, labels); err == nil && g == nil {
			t.Fatal("Analyze returned neither a graph nor an error")
		}
	})
}

// A BUILD file or rule implementation that never ends fails where it
// loops.
func TestEndlessStarlarkFails(t *testing.T) {
	defer func(old uint64) { maxSteps = old }(maxSteps)
	maxSteps = 100_000
	for files, want := range map[string]string{
		"-- BUILD --\ndef f():\n    x = 0\n    while True:\n        x += 1\nf()\n": `^BUILD:\d+:\d+: Starlark computation cancelled: more than 100000 steps \(an endless loop\?\)$`,
		"-- defs.star --\ndef impl(ctx):\n    while True:\n        pass\nr = rule(implementation = impl)\n" +
			"-- BUILD --\nload(\":defs.star\", \"r\")\nr(name = \"x\")\n": `^defs.star:\d+:\d+: //:x \(r\): Starlark computation cancelled: more than 100000 steps`,
	} {
		root := writeWorkspace(t, files)
		_, _, err := loadAndAnalyze(root, nil)
		if err == nil || !regexp.MustCompile(want).MatchString(err.Error()) {
			t.Errorf("%q: error %v, want %s", files, err, want)
		}
	}
}

var rcSeeds = []string{
	"",
	"# defaults\ncommon --cache_dir=/c\nbuild --keep_going\n",
	"build -j 4 --define a=b\nrepro --report_json=r.json\ntest --t\nbuild:opt --x\n",
	"  build\t--a  \r\n\n#\nquery --output=json",
	"build --define=" + strings.Repeat("x", 100) + "\n",
}

// Any .legorc text parses into lines for the commands asked, in order, or
// fails naming the file and a line.
func FuzzParseRC(f *testing.F) {
	for _, s := range rcSeeds {
		f.Add(s)
	}
	lineErr := regexp.MustCompile(`^rc:[1-9][0-9]*: `)
	f.Fuzz(func(t *testing.T, text string) {
		lines, err := parseRC("rc", strings.NewReader(text), []string{"build", "repro"})
		if err != nil {
			if !lineErr.MatchString(err.Error()) {
				t.Fatalf("error %q does not name the file and line", err)
			}
			return
		}
		rank := map[string]int{"common": 0, "build": 1, "repro": 2}
		n := strings.Count(text, "\n") + 1
		for i, l := range lines {
			r, ok := rank[l.Command]
			if !ok || l.File != "rc" || l.Line < 1 || l.Line > n {
				t.Fatalf("line %+v", l)
			}
			if i > 0 {
				p := lines[i-1]
				if rank[p.Command] > r || p.Command == l.Command && p.Line >= l.Line {
					t.Fatalf("lines out of order: %+v before %+v", p, l)
				}
			}
			for _, a := range l.Args {
				if a == "" || strings.ContainsAny(a, " \t\n\r") {
					t.Fatalf("argument %q of line %d", a, l.Line)
				}
			}
		}
	})
}
