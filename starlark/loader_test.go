package starlark

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/legobuild/lego/internal/testenv"

	"github.com/legobuild/lego/engine"
)

// writeWorkspace creates a workspace from "-- path --" sections.
func writeWorkspace(t *testing.T, text string) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{"WORKSPACE": ""}
	var cur string
	for _, line := range strings.SplitAfter(text, "\n") {
		if strings.HasPrefix(line, "-- ") && strings.HasSuffix(strings.TrimSpace(line), " --") {
			cur = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(line), "-- "), " --")
			files[cur] = ""
			continue
		}
		if cur != "" {
			files[cur] += line
		}
	}
	testenv.WriteFiles(t, root, files)
	return root
}

func loadAndAnalyze(root string, defines map[string]string) (*engine.Graph, []engine.Label, error) {
	l, err := NewLoader(root, defines)
	if err != nil {
		return nil, nil, err
	}
	labels, err := l.Expand(engine.Pattern{Recursive: true})
	if err != nil {
		return nil, nil, err
	}
	g, err := engine.Analyze(l, labels)
	return g, labels, err
}

// TestErrors runs testdata/errors.txt: every bad workspace must fail with
// the expected message, which names the file, line and column.
func TestErrors(t *testing.T) {
	data, err := os.ReadFile("testdata/errors.txt")
	if err != nil {
		t.Fatal(err)
	}
	chunks := strings.Split(string(data), "\n---\n")
	for i, chunk := range chunks {
		idx := strings.Index(chunk, "\n### ")
		if idx < 0 {
			t.Fatalf("chunk %d has no ### line", i)
		}
		want := strings.TrimSpace(chunk[idx+5:])
		body := chunk[:idx+1]
		if j := strings.Index(body, "-- "); j > 0 {
			body = body[j:] // drop the file's leading comment
		}
		root := writeWorkspace(t, body)
		_, _, err := loadAndAnalyze(root, nil)
		if err == nil {
			t.Errorf("chunk %d: no error, want %q", i, want)
			continue
		}
		if !regexp.MustCompile(want).MatchString(err.Error()) {
			t.Errorf("chunk %d: error\n  %s\nwant match for\n  %s", i, err, want)
		}
	}
}

func TestLoadRulesGlobPackageConfig(t *testing.T) {
	root := writeWorkspace(t, `
-- defs/tools.star --
load(":consts.star", "GREETING")
Info = provider(fields = ["msg"])
def _impl(ctx):
    out = ctx.actions.declare_file(ctx.attr.name + ".txt")
    ctx.actions.run_shell(
        outputs = [out],
        inputs = ctx.files.srcs,
        command = "cat %s > %s" % (" ".join([f.path for f in ctx.files.srcs]), out.path),
        resources = {"cpu": 2, "memory": "1GiB"},
        progress_message = "Concatenating %{input} and more for %{label} into %{output}",
    )
    return [DefaultInfo(files = [out]), Info(msg = GREETING + ctx.attr.who)]
concat = rule(implementation = _impl, attrs = {
    "srcs": attr.label_list(allow_files = True),
    "who": attr.string(default = "world"),
})
def _use(ctx):
    msg = ctx.attr.dep[Info].msg
    out = ctx.actions.declare_file("use.txt")
    ctx.actions.write(output = out, content = msg)
    return [DefaultInfo(files = [out])]
use = rule(implementation = _use, attrs = {"dep": attr.label()})
-- defs/consts.star --
GREETING = "hello "
-- defs/BUILD --
-- app/BUILD --
load("//defs:tools.star", "concat", "use")
package(env = {"MODE": config("mode", default = "fast")})
concat(name = "all", srcs = glob(["**/*.txt"], exclude = ["skip.txt"]), who = config("who"))
use(name = "u", dep = ":all")
genrule(name = "g", srcs = [":all"], outs = ["g.out"], cmd = "wc -c $(SRCS) > $@")
-- app/a.txt --
a
-- app/sub/b.txt --
b
-- app/skip.txt --
skip
-- app/inner/BUILD --
-- app/inner/c.txt --
not in app's glob: another package
`)
	g, labels, err := loadAndAnalyze(root, map[string]string{"who": "lego"})
	if err != nil {
		t.Fatal(err)
	}
	if len(labels) != 3 {
		t.Fatalf("labels = %v, want the 3 targets of //app", labels)
	}
	all := g.Targets[engine.Label{Pkg: "app", Name: "all"}]
	var srcs []string
	for _, d := range all.Deps() {
		srcs = append(srcs, d.String())
	}
	if got := strings.Join(srcs, " "); got != "//app:a.txt //app:sub/b.txt" {
		t.Errorf("glob gave %s", got)
	}
	a := all.Actions[0]
	if a.Resources.CPU != 2 || a.Resources.Memory != 1<<30 {
		t.Errorf("resources = %+v", a.Resources)
	}
	if got, want := a.ProgressMessage(), "Concatenating app/a.txt and more for //app:all into app/all.txt"; got != want {
		t.Errorf("progress message %q, want %q", got, want)
	}
	if a.Args[0] != "/bin/bash" || !strings.Contains(a.Args[2], "cat app/a.txt app/sub/b.txt > lego-out/app/all.txt") {
		t.Errorf("args = %q", a.Args)
	}
	u := g.Targets[engine.Label{Pkg: "app", Name: "u"}]
	if got := string(u.Actions[0].Content); got != "hello lego" {
		t.Errorf("provider passed %q", got)
	}
	gen := g.Targets[engine.Label{Pkg: "app", Name: "g"}]
	if got := gen.Actions[0].Env["MODE"]; got != "fast" {
		t.Errorf("package() default env MODE = %q", got)
	}
	if got := gen.Actions[0].Args[2]; got != "set -euo pipefail; wc -c lego-out/app/all.txt > lego-out/app/g.out" {
		t.Errorf("genrule cmd = %q", got)
	}
}

func TestParallelLoadSharesModules(t *testing.T) {
	var b strings.Builder
	b.WriteString("-- defs/m.star --\nCOUNT = [0]\ndef mk(n):\n    genrule(name = n, outs = [n + \".o\"], cmd = \"true > $@\")\n")
	for i := 0; i < 40; i++ {
		b.WriteString("-- p" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "/BUILD --\nload(\"//defs:m.star\", \"mk\")\nmk(\"t\")\n")
	}
	root := writeWorkspace(t, b.String())
	l, err := NewLoader(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	labels, err := l.Expand(engine.Pattern{Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(labels) != 40 {
		t.Fatalf("got %d targets, want 40", len(labels))
	}
	if len(l.modules) != 1 {
		t.Errorf("module cache holds %d entries, want 1", len(l.modules))
	}
}

func TestFindRoot(t *testing.T) {
	root := writeWorkspace(t, "-- a/b/BUILD --\n")
	got, err := FindRoot(filepath.Join(root, "a", "b"))
	if err != nil || got != root {
		t.Errorf("FindRoot = %q, %v; want %q", got, err, root)
	}
	if _, err := FindRoot(t.TempDir()); err == nil || !strings.Contains(err.Error(), "WORKSPACE") {
		t.Errorf("FindRoot outside a workspace: %v", err)
	}
}
