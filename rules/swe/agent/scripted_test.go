package agent

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// copyRepo copies the example's minicalc repository into a temp dir.
func copyRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "testbed")
	if out, err := exec.Command("cp", "-r", "../../../examples/swe-lego/repos/minicalc", dir).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return dir
}

func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			out[rel] = string(b)
		}
		return err
	})
	return out
}

// The scripted policy goes through the loop and the tools and ends with
// the gold patch applied, exactly as git apply would; its missteps are
// real errors in the trajectory; the same seed gives the same rollout.
func TestScriptedPolicyAppliesTheGoldPatch(t *testing.T) {
	gold, err := os.ReadFile("../../../examples/swe-lego/repos/upstream/minicalc/fix.diff")
	if err != nil {
		t.Fatal(err)
	}
	files, err := ParsePatch(string(gold))
	if err != nil || len(files) != 2 || len(files[0].Hunks) != 1 || len(files[1].Hunks) != 1 {
		t.Fatalf("parsed %+v, %v", files, err)
	}
	want := copyRepo(t)
	cmd := exec.Command("git", "apply", "-")
	cmd.Dir, cmd.Stdin = want, strings.NewReader(string(gold))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git apply: %v %s", err, out)
	}
	rollout := func(seed int64, rate float64) (string, string) {
		dir := copyRepo(t)
		sess, _ := NewDirSession(dir)
		p, err := NewScripted(ScriptedTask{Workdir: dir, GoldPatch: string(gold), TestCmd: "true", Tests: []string{"tests/test_eval.py::test_unary_minus"}}, ScriptedOptions{MisstepRate: rate}, seed)
		if err != nil {
			t.Fatal(err)
		}
		tr, exit, err := Run(context.Background(), p, NewToolbox(sess), Task{InstanceID: "m-7", ProblemStatement: "unary minus"}, 100)
		if err != nil || exit != ExitFinish || tr.Check() != "" {
			t.Fatalf("exit %s, %v, check %q", exit, err, tr.Check())
		}
		got, wantTree := readTree(t, dir), readTree(t, want)
		for f, w := range wantTree {
			if got[f] != w {
				t.Errorf("seed %d: %s after the rollout:\n%s\nwant:\n%s", seed, f, got[f], w)
			}
		}
		errs := 0
		for _, m := range tr.Messages {
			if m.Role == "tool" && (strings.HasPrefix(m.Content, "ERROR") || strings.Contains(m.Content, "[exit code 1]")) {
				errs++
			}
		}
		b, _ := json.Marshal(tr)
		// Paths differ between runs; the rest must not.
		return strings.ReplaceAll(string(b), dir, "/testbed"), strings.Repeat("e", errs)
	}
	a, errs := rollout(7, 1)
	if errs == "" {
		t.Error("misstep_rate 1 made no misstep the trajectory shows as an error")
	}
	b, _ := rollout(7, 1)
	if a != b {
		t.Error("the same seed gave two different rollouts")
	}
	if _, errs := rollout(7, 0); errs != "" {
		t.Errorf("misstep_rate 0 gave %d errors", len(errs))
	}
}

func TestParsePatchEdgeCases(t *testing.T) {
	p := "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n--- not a header\n+++ nor this\n@@ -5,2 +5,2 @@ def f():\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n" +
		"--- /dev/null\n+++ b/new.py\n@@ -0,0 +1,2 @@\n+x = 1\n+y = 2\n"
	files, err := ParsePatch(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Path != "x.py" || len(files[0].Hunks) != 2 || !files[1].New || files[1].Path != "new.py" {
		t.Fatalf("%+v", files)
	}
	if h := files[0].Hunks[0]; h.Old != "-- not a header\n" || h.New != "++ nor this\n" {
		t.Errorf("a removed line that looks like a header: %+v", h)
	}
	if h := files[0].Hunks[1]; h.Old != "a\nb" || h.New != "a\nc" {
		t.Errorf("no newline at the end: %q -> %q", h.Old, h.New)
	}
	if files[1].Hunks[0].New != "x = 1\ny = 2\n" {
		t.Errorf("new file: %q", files[1].Hunks[0].New)
	}
	if _, err := ParsePatch("--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n"); err == nil {
		t.Error("a hunk shorter than its header says was accepted")
	}
}
