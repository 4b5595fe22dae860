package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// GenerateSWE writes a workspace of the task stage's shape at scale: envs
// swe_env targets over one Debian base, half of them on git_repo path
// snapshots (for synthetic tasks), half on git_repo bundles at a commit
// (for real tasks); and tasks task_set targets, alternately synthetic
// (one candidate) and real (one pull request, in its own instances file).
func GenerateSWE(dir string, envs, tasks int) error {
	half := envs / 2
	files := map[string]string{
		"WORKSPACE":       "workspace(name = \"swe_scale\")\n",
		"repos/up.bundle": "a stand-in: analysis does not read it\n",
		"repos/BUILD": fmt.Sprintf(`[git_repo(name = "r%%d" %% i, path = "r%%d" %%i, srcs = ["r%%d/m.py" %% i]) for i in range(%d)]
[git_repo(name = "r%%d" %% i, bundle = "up.bundle", commit = ("0" * 40 + "%%x" %% i)[-40:]) for i in range(%d, %d)]
`, half, half, envs),
		"envs/BUILD": fmt.Sprintf(`debian_image(name = "py", packages = ["python3", "python3-pytest", "git"])
[swe_env(
    name = "r%%d" %% i,
    repo = "//repos:r%%d" %% i,
    base = ":py",
    install = ["echo /testbed > /usr/lib/python3/dist-packages/testbed.pth"],
    test_cmd = "python3 -m pytest",
) for i in range(%d)]
`, envs),
		"tasks/BUILD": fmt.Sprintf(`[task_set(
    name = "t%%d" %% i,
    source = "synthetic",
    envs = ["//envs:r%%d" %% (i %% %d)],
    per_repo = 1,
    seed = i,
) for i in range(0, %d, 2)]
[task_set(
    name = "t%%d" %% i,
    source = "real",
    instances = "prs/t%%d.jsonl" %% i,
    envs = ["//envs:r%%d" %% (%d + i %% %d)],
) for i in range(1, %d, 2)]
`, half, tasks, half, envs-half, tasks),
	}
	for i := range half {
		files[fmt.Sprintf("repos/r%d/m.py", i)] = fmt.Sprintf("def f(x):\n    return x + %d\n", i)
	}
	for i := 1; i < tasks; i += 2 {
		r := half + i%(envs-half)
		files[fmt.Sprintf("tasks/prs/t%d.jsonl", i)] = fmt.Sprintf(`{"instance_id": "r%d-%d", "repo": "r%d", "base_commit": "%040x", "created_at": "2026-02-10T09:00:00Z", `+
			`"patch": "--- a/m.py\n+++ b/m.py\n", "test_patch": "--- a/t.py\n+++ b/t.py\n", "FAIL_TO_PASS": ["t.py::test_f"], "PASS_TO_PASS": []}`+"\n", r, i, r, r)
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// benchSWE times loading and analysing the generated workspace.
func benchSWE(bin, base string, envs, tasks, runs int) error {
	return benchAnalysis(bin, filepath.Join(base, "swe"), runs, func(ws string) error { return GenerateSWE(ws, envs, tasks) },
		fmt.Sprintf("%d swe_env + %d task_set targets", envs, tasks))
}

// benchAnalysis generates a workspace in ws and times loading and
// analysing it (--nobuild): the median of runs, and the peak RSS.
func benchAnalysis(bin, ws string, runs int, generate func(ws string) error, what string) error {
	if err := generate(ws); err != nil {
		return err
	}
	defer os.RemoveAll(ws)
	var walls []time.Duration
	var peak int64
	for range runs {
		w, r, err := run(bin, ws, ws+"-cache", "build", "//...", "--nobuild")
		if err != nil {
			return fmt.Errorf("analysing %s: %w", what, err)
		}
		walls = append(walls, w)
		peak = max(peak, r)
	}
	fmt.Printf("%s: load and analysis %.2fs (median of %d), peak RSS %d MB\n", what, median(walls).Seconds(), runs, peak>>20)
	return nil
}
