package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// install_config as SWE-rebench and SWE-bench-derived sets publish it:
// nulls, lists as strings, a numeric python, test_cmd as a list.
func TestParsePublishedShapes(t *testing.T) {
	c, field, err := Parse([]byte(`{"python": 3.9, "packages": "requirements.txt", "reqs_path": ["requirements/test.txt", "requirements.txt"],
		"env_yml_path": null, "pip_packages": "pytest==7.4.0 numpy", "pre_install": ["apt-get update", "apt-get install -y gcc"],
		"install": "pip install -e .", "test_cmd": ["cd src", "pytest -rA"], "log_parser": "parse_log_pytest",
		"env_vars": {"LANG": "C.UTF-8", "N": 2}, "no_use_env": false}`))
	if err != nil {
		t.Fatalf("%s: %v", field, err)
	}
	if c.Python != "3.9" || !slices.Equal(c.PipPackages, []string{"pytest==7.4.0", "numpy"}) || c.TestCmd != "cd src && pytest -rA" ||
		!slices.Equal(c.Install, []string{"pip install -e ."}) || c.EnvVars["N"] != "2" || len(c.PreInstall) != 2 {
		t.Errorf("parsed %+v", c)
	}
	if got := c.Requirements(); !slices.Equal(got, []string{"requirements.txt", "requirements/test.txt"}) {
		t.Errorf("requirements %v", got)
	}
	fw, _ := Framework(c.LogParser)
	if fw != "pytest" {
		t.Errorf("framework %q", fw)
	}
	// The env's key is what the env holds: not the install or test steps.
	d := *c
	d.Install, d.TestCmd, d.PreInstall = []string{"true"}, "x", nil
	if d.EnvKey() != c.EnvKey() {
		t.Error("instance steps change the env key")
	}
	d.PipPackages = []string{"numpy"}
	if d.EnvKey() == c.EnvKey() {
		t.Error("pip_packages do not change the env key")
	}

	for _, tc := range []struct{ cfg, field, msg string }{
		{`null`, "install_config", "absent"},
		{`{"test_cmd": "pytest", "log_parser": "parse_log_nose"}`, "install_config.log_parser", "not a parser"},
		{`{"test_cmd": "pytest", "reqs_path": ["../x.txt"]}`, "install_config.reqs_path", "not a file of the repository"},
		{`{"test_cmd": "pytest", "pip_packages": 3}`, "install_config.pip_packages", "a string or a list"},
		{`{"install": "pip install ."}`, "install_config.test_cmd", "empty"},
		{`{"test_cmd": "pytest", "python": "three"}`, "install_config.python", "not a Python version"},
		{`{"test_cmd": "pytest", "env_vars": {"A B": "x"}}`, "install_config.env_vars", "not a variable name"},
	} {
		_, field, err := Parse([]byte(tc.cfg))
		if err == nil || field != tc.field || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %s: %v; want %s: %s", tc.cfg, field, err, tc.field, tc.msg)
		}
	}
}

// The steps really build a Python environment with the host's python3
// and pip (offline: --no-index, the requirement already there), and a
// failing step is recorded, not raised, and stops the later ones.
func TestStepsBuildAndRecordFailure(t *testing.T) {
	dir := t.TempDir()
	venv := filepath.Join(dir, "venv")
	reqs := filepath.Join(dir, "reqs")
	os.MkdirAll(reqs, 0o755)
	os.WriteFile(filepath.Join(reqs, "requirements.txt"), []byte("pytest\n"), 0o644)
	c := &Config{Python: "3", Packages: "requirements.txt", ReqsPath: []string{"requirements.txt"}, PipPackages: []string{"no-such-package-lego"}, TestCmd: "pytest"}
	failed := filepath.Join(dir, Failed)
	steps := append([]string{c.VenvStep(venv)}, c.PackageSteps(reqs, false)...)
	steps = append(steps, "touch after-failure")
	pre := Prelude(venv, map[string]string{"LEGO_X": "it's"})
	for i, s := range steps {
		cmd := exec.Command("bash", "-c", Wrap(i, pre, s, failed))
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("step %d failed as a command (%v): %s", i, err, out)
		}
	}
	if _, err := os.Stat(filepath.Join(venv, "bin", "pip")); err != nil {
		t.Fatalf("no pip in the venv: %v", err)
	}
	out, err := exec.Command(filepath.Join(venv, "bin", "python"), "-c", "import sys, pytest; print(sys.prefix)").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != venv {
		t.Errorf("venv python: %s %v", out, err)
	}
	b, err := os.ReadFile(failed)
	if err != nil {
		t.Fatalf("the failing pip install left no record: %v", err)
	}
	if !strings.HasPrefix(string(b), "step 2 (") || !strings.Contains(string(b), "no-such-package-lego") || !strings.Contains(string(b), "exited 1") {
		t.Errorf("record %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "after-failure")); err == nil {
		t.Error("a step after the failure ran")
	}
}

// A Parser reads each distinct config once, errors too.
func TestParserOncePerText(t *testing.T) {
	var p Parser
	a, _, err := p.Parse([]byte(`{"test_cmd": "pytest"}`))
	b, _, _ := p.Parse([]byte(`{"test_cmd": "pytest"}`))
	c, _, _ := p.Parse([]byte(`{"test_cmd": "pytest -x"}`))
	if err != nil || a != b || a == c || c.TestCmd != "pytest -x" {
		t.Errorf("configs %p %p %p (%v)", a, b, c, err)
	}
	for range 2 {
		if _, field, err := p.Parse([]byte(`{"test_cmd": ""}`)); err == nil || field != "install_config.test_cmd" {
			t.Errorf("%s: %v", field, err)
		}
	}
}
