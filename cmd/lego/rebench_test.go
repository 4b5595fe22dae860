package main

import (
	"encoding/json"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/tasks"
)

// checkRebenchTasks builds //tasks:rebench, the instances SWE-rebench's
// way (a JSON array with install_config) in envs //envs:rebench made from
// that config, in the form the flags give (containerd images, or
// directory envs on the host), and checks the verdicts: the instance
// whose base is newer than its created_at kept, validated on the test
// file its test_patch touches only; the one whose env fails to install
// and the one with no env dropped with their reasons; the set built all
// the same. It returns the kept tasks.
func checkRebenchTasks(t *testing.T, root string, flags ...string) map[string]format.Task {
	t.Helper()
	build := func() result {
		return mustLego(t, root, append([]string{"build", "//tasks:rebench"}, flags...)...)
	}
	r := build()
	out := filepath.Join(root, "lego-out/tasks/rebench")
	kept := readTasks(t, out)
	if got := slices.Sorted(maps.Keys(kept)); !slices.Equal(got, []string{"example__ledger-12"}) {
		t.Fatalf("kept %v; want example__ledger-12", got)
	}
	if task := kept["example__ledger-12"]; task.Env != "//envs:rebench" || task.Source != "real" {
		t.Errorf("task %+v", task)
	}
	var rep tasks.Report
	if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(out, tasks.ReportFile))), &rep); err != nil {
		t.Fatal(err)
	}
	why := map[string]string{}
	for _, rj := range rep.Rejected {
		why[rj.InstanceID] = rj.Reason
	}
	if w := why["example__ledger-13"]; !strings.Contains(w, "the env did not build") || !strings.Contains(w, "ledger-plugins==2.0") {
		t.Errorf("example__ledger-13 dropped for %q; want its failed install of ledger-plugins", w)
	}
	if w := why["example__abacus-3"]; !strings.Contains(w, "rebench.json") || !strings.Contains(w, `no env for repository "example/abacus"`) {
		t.Errorf("example__abacus-3 dropped for %q; want its location and no env for example/abacus", w)
	}
	if rep.Kept != 1 || rep.Candidates != 3 || len(rep.Rejected) != 2 {
		t.Errorf("report: %d kept of %d, rejected %v", rep.Kept, rep.Candidates, rep.Rejected)
	}
	if !strings.Contains(r.stderr, "//tasks:rebench: 2 dropped, 1 kept") {
		t.Errorf("the build summary does not count the verdicts:\n%s", r.stderr)
	}

	// The harness's record: only the file test_patch touches ran, before
	// and after the fix, in the env pip installed the repository into
	// (a src layout: nothing imports without it), with env_vars set.
	var res tasks.Results
	if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(root, "lego-out/tasks/rebench.work/example__ledger-12/results.json"))), &res); err != nil {
		t.Fatal(err)
	}
	if res.Scope == nil || res.Scope.Mode != "touched" || !slices.Equal(res.Scope.Files, []string{"tests/test_money.py"}) {
		t.Errorf("scope %+v; want the touched tests/test_money.py", res.Scope)
	}
	for _, run := range []string{"before", "after"} {
		ids := slices.Sorted(maps.Keys(res.Runs[run].Tests))
		if len(ids) != 5 {
			t.Errorf("%s: ran %v; want test_money.py's 5 tests", run, ids)
		}
		for _, id := range ids {
			if !strings.HasPrefix(id, "tests/test_money.py::") {
				t.Errorf("%s: %s ran, outside the file test_patch touches", run, id)
			}
		}
	}
	after := res.Runs["after"].Tests
	if after["tests/test_money.py::test_parse_thousands"] != tasks.Passed || after["tests/test_money.py::test_env_vars_reach_the_tests"] != tasks.Passed {
		t.Errorf("after the fix: %v", after)
	}
	// The base commit is dated after created_at: an ancestor after it, in
	// the audit as information, and nothing beyond the base.
	if g := res.Git; g == nil || !g.Present || g.Commits != 2 || len(g.After) != 1 || g.Leak() != "" {
		t.Errorf("git audit %+v", res.Git)
	}
	if total, ran, cached := counts(t, build()); ran != 0 || cached != total {
		t.Fatalf("rebench rebuild: %d executed, %d cached of %d", ran, cached, total)
	}
	return kept
}

// An instance that cannot be validated (no env for its repository, a
// created_at or install_config lego cannot read, no test_patch) is
// dropped with its location and field in report.json; the set builds.
func TestRealInstancesDroppedNotFatal(t *testing.T) {
	root := t.TempDir()
	cfg := `"install_config": {"python": "3.11", "install": "pip install -e .", "test_cmd": "pytest -rA"}`
	inst := func(id, repo, extra string) string {
		return `{"instance_id": "` + id + `", "repo": "` + repo + `", "base_commit": "f771ea915bb5d5ae63bff7ff54af31b784610167", ` +
			`"created_at": "2026-02-10T09:00:00Z", "patch": "p", "test_patch": "t", "FAIL_TO_PASS": [], "PASS_TO_PASS": [], ` + extra + `}`
	}
	writeFiles(t, root, map[string]string{
		"WORKSPACE": "",
		"BUILD": `git_repo(name = "r", bundle = "up.bundle", commit = "f771ea915bb5d5ae63bff7ff54af31b784610167", repo_name = "org/r")
swe_env_set(name = "set", instances = "prs.jsonl", repos = [":r"], form = "dir")
task_set(name = "t", source = "real", instances = "prs.jsonl", envs = [":set"])
`,
		"up.bundle": "not built: no instance gets this far\n",
		"prs.jsonl": strings.Join([]string{
			inst("none-1", "org/none", cfg),
			strings.Replace(inst("r-1", "org/r", cfg), `"2026-02-10T09:00:00Z"`, `"yesterday"`, 1),
			inst("r-2", "org/r", strings.Replace(cfg, `"test_cmd"`, `"log_parser": "parse_log_nose", "test_cmd"`, 1)),
			strings.Replace(inst("r-3", "org/r", cfg), `"test_patch": "t"`, `"test_patch": ""`, 1),
			inst("r-4", "org/r", `"install_config": null`),
			inst("r-5", "org/r", `"environment_setup_commit": "main", `+cfg),
			strings.Replace(inst("r-6", "org/r", cfg), `"base_commit": "f771ea915bb5d5ae63bff7ff54af31b784610167"`,
				`"base_commit": "f771ea9", "environment_setup_commit": "f771ea915bb5d5ae63bff7ff54af31b784610167"`, 1),
		}, "\n") + "\n",
	})
	mustLego(t, root, "build", "//:t", "--executor=local", "--cache_dir="+t.TempDir())
	var rep tasks.Report
	if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(root, "lego-out/t", tasks.ReportFile))), &rep); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"none-1": `prs.jsonl:1: field repo: no env for repository "org/none"`,
		"r-1":    `prs.jsonl:2: field created_at: "yesterday" is not a time`,
		"r-2":    `prs.jsonl:3: field install_config.log_parser: "parse_log_nose" is not a parser`,
		"r-3":    `prs.jsonl:4: field patch: an instance needs both patch and test_patch`,
		"r-4":    `prs.jsonl:5: field install_config: absent`,
		"r-5":    `prs.jsonl:6: field environment_setup_commit: "main" is not a full 40-hex commit id`,
		"r-6":    `prs.jsonl:7: field base_commit: "f771ea9" is not a full 40-hex commit id`,
	}
	if rep.Kept != 0 || rep.Candidates != len(want) || len(rep.Rejected) != len(want) {
		t.Errorf("report: %d kept of %d, %d rejected", rep.Kept, rep.Candidates, len(rep.Rejected))
	}
	for _, rj := range rep.Rejected {
		if w, ok := want[rj.InstanceID]; !ok || !strings.HasPrefix(rj.Reason, w) {
			t.Errorf("%s dropped for %q; want %q", rj.InstanceID, rj.Reason, w)
		}
	}
}
