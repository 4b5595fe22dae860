package core_test

import (
	"strings"
	"testing"

	"github.com/legobuild/lego/internal/testenv"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/core"
	"github.com/legobuild/lego/starlark"
)

// analyze loads a one-package workspace and returns the command of the
// genrule named target, or the analysis error.
func analyze(t *testing.T, build, target string) (string, error) {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"WORKSPACE":  "",
		"p/BUILD":    build,
		"p/a.txt":    "a",
		"p/b.txt":    "b",
		"p/tool.sh":  "#!/bin/sh\n",
		"q/BUILD":    `filegroup(name = "data", srcs = ["x.txt", "y.txt"])`,
		"q/x.txt":    "x",
		"q/y.txt":    "y",
		"p/sub/c.py": "",
	}
	testenv.WriteFiles(t, root, files)
	l, err := starlark.NewLoader(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	lab := engine.Label{Pkg: "p", Name: target}
	g, err := engine.Analyze(l, []engine.Label{lab})
	if err != nil {
		return "", err
	}
	acts := g.Targets[lab].Actions
	if len(acts) != 1 {
		t.Fatalf("%s has %d actions, want 1", lab, len(acts))
	}
	args := acts[0].Args
	cmd, ok := strings.CutPrefix(args[len(args)-1], core.Prologue)
	if !ok {
		t.Errorf("command %q lacks the prologue", args[len(args)-1])
	}
	return cmd, nil
}

func TestMakeVariables(t *testing.T) {
	cases := []struct {
		name, build, want string
	}{
		{"srcs and outs", `genrule(name = "g", srcs = ["a.txt", "b.txt"], outs = ["o1", "o2"], cmd = "cat $(SRCS) > $(OUTS)")`,
			"cat p/a.txt p/b.txt > lego-out/p/o1 lego-out/p/o2"},
		{"first and only", `genrule(name = "g", srcs = ["a.txt"], outs = ["o"], cmd = "cp $< $@")`,
			"cp p/a.txt lego-out/p/o"},
		{"location of a source", `genrule(name = "g", srcs = ["a.txt"], tools = ["tool.sh"], outs = ["o"], cmd = "$(location tool.sh) $(location :a.txt) > $@")`,
			"p/tool.sh p/a.txt > lego-out/p/o"},
		{"locations of a filegroup", `genrule(name = "g", srcs = ["//q:data"], outs = ["o"], cmd = "wc $(locations //q:data) > $(execpath o)")`,
			"wc q/x.txt q/y.txt > lego-out/p/o"},
		{"dollar escapes and shell variables", `genrule(name = "g", outs = ["o"], cmd = "echo $$HOME ${X} $(RULEDIR) > $@")`,
			"echo $HOME ${X} lego-out/p > lego-out/p/o"},
		{"output of another genrule", `genrule(name = "a", outs = ["a.out"], cmd = "echo > $@")
genrule(name = "g", srcs = [":a"], outs = ["o"], cmd = "cat $(location :a) > $@")`,
			"cat lego-out/p/a.out > lego-out/p/o"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := analyze(t, c.build, "g")
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("cmd = %q, want %q", got, c.want)
			}
		})
	}
}

func TestMakeVariableErrors(t *testing.T) {
	cases := []struct {
		name, build, want string
	}{
		{"$@ with two outs", `genrule(name = "g", outs = ["a", "b"], cmd = "touch $@")`, "$@ needs exactly one output, the rule has 2"},
		{"$< with no srcs", `genrule(name = "g", outs = ["a"], cmd = "cat $< > $@")`, "$< needs exactly one source file, the rule has 0"},
		{"unknown variable", `genrule(name = "g", outs = ["a"], cmd = "$(CC) > $@")`, "unknown make variable $(CC)"},
		{"location not a dep", `genrule(name = "g", outs = ["a"], cmd = "cat $(location b.txt) > $@")`, "is not in srcs, tools or outs"},
		{"location of several", `genrule(name = "g", srcs = ["//q:data"], outs = ["a"], cmd = "cat $(location //q:data) > $@")`, "names 2 files; use $(locations ...)"},
		{"unterminated", `genrule(name = "g", outs = ["a"], cmd = "echo $(SRCS > $@")`, "unterminated $("},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := analyze(t, c.build, "g")
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "cmd") {
				t.Errorf("error = %v, want one about attribute cmd containing %q", err, c.want)
			}
		})
	}
}
