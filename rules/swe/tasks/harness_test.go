package tasks

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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
