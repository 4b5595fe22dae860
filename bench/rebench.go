package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// GenerateRebench writes a workspace of SWE-rebench's shape at scale:
// repos git_repo targets (bundles: analysis reads none) and one instances
// file of instances, with install_config, read by one swe_env_set and one
// task_set. Repositories have one or two environment_setup_commits; the
// configs vary the Python version, requirements files and pip_packages
// as published sets do.
func GenerateRebench(dir string, repos, instances int) error {
	write := func(name, body string) error {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, []byte(body), 0o644)
	}
	files := map[string]string{
		"WORKSPACE":       "workspace(name = \"rebench_scale\")\n",
		"repos/up.bundle": "a stand-in: analysis does not read it\n",
		"repos/BUILD": fmt.Sprintf(`[git_repo(name = "r%%d" %% i, bundle = "up.bundle", commit = ("0" * 40 + "%%x" %% i)[-40:], repo_name = "org%%d/repo%%d" %% (i, i)) for i in range(%d)]
`, repos),
		"envs/BUILD": fmt.Sprintf(`debian_image(name = "py", packages = ["python3", "python3-pytest", "python3-pip", "git"])
swe_env_set(name = "set", instances = "//tasks:instances.jsonl", repos = ["//repos:r%%d" %% i for i in range(%d)], base = ":py")
`, repos),
		"tasks/BUILD": `task_set(name = "real", source = "real", instances = "instances.jsonl", envs = ["//envs:set"])
`,
	}
	for name, body := range files {
		if err := write(name, body); err != nil {
			return err
		}
	}
	f, err := os.Create(filepath.Join(dir, "tasks/instances.jsonl"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for i := range instances {
		r := i % repos
		setup := r*2 + (i/repos)%2 // two environment_setup_commits per repository
		cfg := map[string]any{
			"python":       []string{"3.9", "3.10", "3.11"}[r%3],
			"packages":     "requirements.txt",
			"reqs_path":    []string{"requirements.txt"},
			"env_yml_path": nil,
			"pip_packages": []string{"pytest", fmt.Sprintf("dep%d==1.%d", r%50, r%7)},
			"pre_install":  []string{"apt-get update", "apt-get install -y gcc"},
			"install":      "pip install -e .",
			"test_cmd":     "pytest --no-header -rA --tb=no -p no:cacheprovider",
			"log_parser":   "parse_log_pytest",
			"env_vars":     map[string]string{"PYTHONWARNINGS": "ignore"},
		}
		if r%4 == 0 {
			cfg["packages"], cfg["reqs_path"] = "numpy scipy", nil
		}
		err := enc.Encode(map[string]any{
			"instance_id": fmt.Sprintf("org%d__repo%d-%d", r, r, i), "repo": fmt.Sprintf("org%d/repo%d", r, r),
			"base_commit": fmt.Sprintf("%040x", 1<<40+i), "environment_setup_commit": fmt.Sprintf("%040x", 1<<41+setup),
			"created_at": "2024-03-01T10:00:00", "version": "1.0",
			"patch":             fmt.Sprintf("diff --git a/src/m%d.py b/src/m%d.py\n--- a/src/m%d.py\n+++ b/src/m%d.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n", i, i, i, i),
			"test_patch":        fmt.Sprintf("diff --git a/tests/test_m%d.py b/tests/test_m%d.py\n--- a/tests/test_m%d.py\n+++ b/tests/test_m%d.py\n@@ -1 +1,2 @@\n x = 1\n+def test_x(): pass\n", i, i, i, i),
			"problem_statement": strings.Repeat("The widget breaks when it is copied. ", 20),
			"FAIL_TO_PASS":      []string{fmt.Sprintf("tests/test_m%d.py::test_x", i)},
			"PASS_TO_PASS":      []string{fmt.Sprintf("tests/test_m%d.py::test_y", i), fmt.Sprintf("tests/test_m%d.py::test_z", i)},
			"install_config":    cfg,
		})
		if err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// benchRebench times loading and analysing the generated workspace.
func benchRebench(bin, base string, repos, instances, runs int) error {
	return benchAnalysis(bin, filepath.Join(base, "rebench"), runs, func(ws string) error { return GenerateRebench(ws, repos, instances) },
		fmt.Sprintf("swe_env_set + task_set over %d repositories, %d instances (one file)", repos, instances))
}
