package tasks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/rules/swe/format"
)

// Tests that cannot start are the harness's failure, told to lego by its
// convention (exit 75 and the stderr line), with no results written;
// tests that run and fail are an outcome like any other.
func TestHarnessTestsThatCannotStart(t *testing.T) {
	harness := filepath.Join(t.TempDir(), "harness.py")
	if err := os.WriteFile(harness, Harness, 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "tests"), 0o755)
	os.WriteFile(filepath.Join(root, "tests", "__init__.py"), nil, 0o644)
	os.WriteFile(filepath.Join(root, "tests", "test_x.py"), []byte("import unittest\n\n\nclass X(unittest.TestCase):\n    def test_no(self):\n        self.assertEqual(1, 2)\n"), 0o644)
	unittest := "python3 -m unittest discover -v -s tests -t ."
	for _, tc := range []struct {
		name, framework, cmd string
		why                  string // "" = a result
	}{
		{"no such command", "pytest", "no-such-test-runner-lego -q", "exit code 127"},
		{"not executable", "pytest", "./tests/__init__.py", "exit code 126"},
		{"no pytest", "pytest", "echo '/usr/bin/python3: No module named pytest' >&2; exit 1", "No module named pytest"},
		{"a failing test", "unittest", unittest, ""},
		{"tests ran, then 127", "unittest", unittest + "; no-such-cleanup-lego", ""},
		{"no tests, exit 1", "pytest", "echo nothing here; exit 1", ""},
	} {
		out := filepath.Join(t.TempDir(), "results.json")
		cmd := exec.Command("python3", harness, "--root", root, "--framework", tc.framework, "--cmd", tc.cmd, "--run", "clean=", "--out", out)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		ie := executors.InfraOf(int32(code), stderr.String())
		_, statErr := os.Stat(out)
		if tc.why == "" {
			var res Results
			if ie != nil || code != 0 || format.ReadJSON(out, &res) != nil {
				t.Errorf("%s: exit %d, %v, stderr %q; want results", tc.name, code, ie, stderr.String())
			} else if tc.framework == "unittest" && res.Runs["clean"].Tests["tests.test_x.X.test_no"] != Failed {
				t.Errorf("%s: results %+v", tc.name, res.Runs["clean"])
			}
			continue
		}
		if ie == nil || ie.Class != executors.ClassHarness || !strings.Contains(ie.Err.Error(), tc.why) || !os.IsNotExist(statErr) {
			t.Errorf("%s: exit %d, infra %v, results file %v, stderr %q; want a harness failure saying %q and no results", tc.name, code, ie, statErr, stderr.String(), tc.why)
		}
	}
}

// writeHarness puts harness.py in a temporary directory.
func writeHarness(t *testing.T) string {
	t.Helper()
	harness := filepath.Join(t.TempDir(), "harness.py")
	if err := os.WriteFile(harness, Harness, 0o644); err != nil {
		t.Fatal(err)
	}
	return harness
}

// runHarness runs harness.py with args and reads its results.
func runHarness(t *testing.T, harness string, args ...string) *Results {
	t.Helper()
	out := filepath.Join(t.TempDir(), "results.json")
	cmd := exec.Command("python3", append([]string{harness, "--out", out}, args...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("harness %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	var res Results
	if err := format.ReadJSON(out, &res); err != nil {
		t.Fatal(err)
	}
	return &res
}

// Each runner's output, as its documentation describes it and as the
// runners print it (testdata/logs/<framework>-*.log), parses to the
// statuses in the .want.json beside it.
func TestHarnessParsesRunnerLogs(t *testing.T) {
	harness := writeHarness(t)
	logs, err := filepath.Glob("testdata/logs/*.log")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, log := range logs {
		framework, _, _ := strings.Cut(filepath.Base(log), "-")
		seen[framework] = true
		out, err := exec.Command("python3", harness, "--parse-log", log, "--framework", framework).Output()
		if err != nil {
			t.Errorf("%s: %v", log, err)
			continue
		}
		var got, want map[string]string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s: %v\n%s", log, err, out)
		}
		if err := format.ReadJSON(strings.TrimSuffix(log, ".log")+".want.json", &want); err != nil {
			t.Fatal(err)
		}
		for _, id := range slices.Sorted(maps.Keys(want)) {
			if got[id] != want[id] {
				t.Errorf("%s: %s is %q, want %q", log, id, got[id], want[id])
			}
		}
		for _, id := range slices.Sorted(maps.Keys(got)) {
			if _, ok := want[id]; !ok {
				t.Errorf("%s: unexpected test %q (%s)", log, id, got[id])
			}
		}
	}
	for _, f := range []string{"pytest", "unittest", "django", "sympy"} {
		if !seen[f] {
			t.Errorf("no fixture for %s", f)
		}
	}
}

// The test files a patch touches become the test command's arguments in
// each runner's form; a deleted file and a file that is not Python do
// not; a patch with no Python file runs everything.
func TestHarnessScope(t *testing.T) {
	harness := writeHarness(t)
	dir := t.TempDir()
	patch := filepath.Join(dir, "test.diff")
	if err := os.WriteFile(patch, []byte(`diff --git a/tests/test_api.py b/tests/test_api.py
index 1f2e3d4..5a6b7c8 100644
--- a/tests/test_api.py
+++ b/tests/test_api.py
@@ -1,3 +1,4 @@
 import api
-assert api
+++ this line is content, not a header
+assert api.VERSION
 
diff --git a/tests/auth_tests/test_views.py b/tests/auth_tests/test_views.py
new file mode 100644
index 0000000..e69de29
--- /dev/null
+++ b/tests/auth_tests/test_views.py
@@ -0,0 +1,2 @@
+def test_login():
+    pass
diff --git a/tests/test_old.py b/tests/test_old.py
deleted file mode 100644
index 3b18e51..0000000
--- a/tests/test_old.py
+++ /dev/null
@@ -1 +0,0 @@
-def test_gone(): pass
diff --git a/tests/fixtures/users.json b/tests/fixtures/users.json
index 0967ef4..8a1b2c3 100644
--- a/tests/fixtures/users.json
+++ b/tests/fixtures/users.json
@@ -1 +1 @@
-{}
+{"admin": true}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	files := []string{"tests/test_api.py", "tests/auth_tests/test_views.py"}
	for framework, args := range map[string][]string{
		"pytest":   files,
		"sympy":    files,
		"unittest": {"tests.test_api", "tests.auth_tests.test_views"},
		"django":   {"test_api", "auth_tests.test_views"},
	} {
		// printf shows the arguments the test command was given, one a line.
		res := runHarness(t, harness, "--root", t.TempDir(), "--framework", framework, "--cmd", "printf 'arg<%s>\\n'",
			"--scope-from", patch, "--run", "clean=")
		want := &Scope{Mode: "touched", Files: files, Args: args}
		if !reflect.DeepEqual(res.Scope, want) {
			t.Errorf("%s: scope %+v, want %+v", framework, res.Scope, want)
		}
		var printed []string
		for _, a := range args {
			printed = append(printed, "arg<"+a+">")
		}
		if got := strings.Fields(res.Runs["clean"].LogTail); !reflect.DeepEqual(got, printed) {
			t.Errorf("%s: the test command got %q, want %q", framework, got, printed)
		}
	}

	// Quoted for the shell: a path with a space and a quote is one argument.
	odd := filepath.Join(dir, "odd.diff")
	os.WriteFile(odd, []byte("diff --git a/tests/it's here/test_q.py b/tests/it's here/test_q.py\n--- a/tests/it's here/test_q.py\n+++ b/tests/it's here/test_q.py\n@@ -1 +1 @@\n-a\n+b\n"), 0o644)
	res := runHarness(t, harness, "--root", t.TempDir(), "--framework", "pytest", "--cmd", "printf 'arg<%s>\\n'", "--scope-from", odd, "--run", "clean=")
	if got := res.Runs["clean"].LogTail; got != "arg<tests/it's here/test_q.py>\n" {
		t.Errorf("a path with a space and a quote: the command printed %q", got)
	}

	// No Python file: the whole suite, and why.
	docs := filepath.Join(dir, "docs.diff")
	os.WriteFile(docs, []byte("diff --git a/docs/index.rst b/docs/index.rst\n--- a/docs/index.rst\n+++ b/docs/index.rst\n@@ -1 +1 @@\n-a\n+b\n"), 0o644)
	res = runHarness(t, harness, "--root", t.TempDir(), "--framework", "django", "--cmd", "printf 'arg<%s>\\n'", "--scope-from", docs, "--run", "clean=")
	if res.Scope == nil || res.Scope.Mode != "all" || !strings.Contains(res.Scope.Why, "no .py file") || res.Runs["clean"].LogTail != "arg<>\n" {
		t.Errorf("a patch with no Python file: scope %+v, the command printed %q", res.Scope, res.Runs["clean"].LogTail)
	}
	// Without --scope-from there is no scope record.
	if res := runHarness(t, harness, "--root", t.TempDir(), "--framework", "pytest", "--cmd", "true", "--run", "clean="); res.Scope != nil {
		t.Errorf("no --scope-from: scope %+v", res.Scope)
	}
}

// A real pytest run: of three test files, only the one the test patch
// touches runs, its new test included.
func TestHarnessRunsOnlyTouchedTestFiles(t *testing.T) {
	harness := writeHarness(t)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "tests"), 0o755)
	for _, f := range []string{"a", "b", "c"} {
		body := fmt.Sprintf("def test_%s_one():\n    assert True\n\n\ndef test_%s_two():\n    assert 1 + 1 == 2\n", f, f)
		if err := os.WriteFile(filepath.Join(root, "tests", "test_"+f+".py"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	patch := filepath.Join(t.TempDir(), "test.diff")
	os.WriteFile(patch, []byte(`diff --git a/tests/test_b.py b/tests/test_b.py
--- a/tests/test_b.py
+++ b/tests/test_b.py
@@ -4,3 +4,7 @@ def test_b_one():
 
 def test_b_two():
     assert 1 + 1 == 2
+
+
+def test_b_new():
+    assert "b".upper() == "B"
`), 0o644)
	res := runHarness(t, harness, "--root", root, "--framework", "pytest", "--cmd", "/usr/bin/python3 -m pytest",
		"--scope-from", patch, "--run", "before="+patch)
	want := map[string]string{"tests/test_b.py::test_b_one": Passed, "tests/test_b.py::test_b_two": Passed, "tests/test_b.py::test_b_new": Passed}
	if run := res.Runs["before"]; !maps.Equal(run.Tests, want) {
		t.Errorf("tests run: %v, want only test_b.py's\n%s", run.Tests, run.LogTail)
	}
	if s := res.Scope; s == nil || s.Mode != "touched" || !slices.Equal(s.Files, []string{"tests/test_b.py"}) {
		t.Errorf("scope %+v", s)
	}
	// The same tree, everything: all seven tests.
	res = runHarness(t, harness, "--root", root, "--framework", "pytest", "--cmd", "/usr/bin/python3 -m pytest", "--run", "all=")
	if n := len(res.Runs["all"].Tests); n != 7 {
		t.Errorf("the whole suite ran %d tests, want 7: %v", n, res.Runs["all"].Tests)
	}
}
