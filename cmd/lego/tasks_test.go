package main

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/legobuild/lego/rules/swe/agent"
	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/tasks"
)

// TestExampleTasks builds //tasks:synthetic of the swe-lego
// example as a user would: at least 20 validated tasks over the three
// repositories, every test run inside a container, a fully cached second
// build, and a seed change for one repository that reruns that
// repository's generation and validation only; then //tasks:real (see
// checkRealTasks).
func TestExampleTasks(t *testing.T) {
	addr := containerdAddr(t)
	root := t.TempDir()
	copyTree(t, "../../examples/swe-lego", root)
	cache := t.TempDir()
	ev := filepath.Join(t.TempDir(), "events.jsonl")
	build := func() result {
		t.Helper()
		return mustLego(t, root, "build", "//tasks:synthetic", "--cache_dir="+cache, "--containerd_address="+addr,
			"--build_event_json_file="+ev)
	}
	build()

	var got []format.Task
	b, err := os.ReadFile(filepath.Join(root, "lego-out/tasks/synthetic", tasks.TasksFile))
	if err != nil {
		t.Fatal(err)
	}
	perRepo := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var task format.Task
		if err := json.Unmarshal([]byte(line), &task); err != nil {
			t.Fatal(err)
		}
		if len(task.FailToPass) == 0 || task.BugPatch == "" || task.Patch == "" || !strings.HasPrefix(task.Image, "sha256:") ||
			task.ProblemStatement == "" || task.Source != "synthetic" {
			t.Errorf("incomplete task %+v", task)
		}
		perRepo[task.Repo]++
		got = append(got, task)
	}
	if len(got) < 20 || len(perRepo) != 3 {
		t.Fatalf("%d tasks over %v; want at least 20 over the three repositories", len(got), perRepo)
	}
	var rep tasks.Report
	if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(root, "lego-out/tasks/synthetic", tasks.ReportFile))), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Kept != len(got) || rep.Candidates != 30 || len(rep.Rejected) != rep.Candidates-rep.Kept {
		t.Errorf("report: %d kept of %d, %d rejected; tasks file has %d", rep.Kept, rep.Candidates, len(rep.Rejected), len(got))
	}

	// Every test run happened in a container: the harness ran in the
	// container's exec root.
	runs, _ := filepath.Glob(filepath.Join(root, "lego-out/tasks/*.work/*/*.json"))
	n := 0
	for _, p := range runs {
		if base := filepath.Base(p); !strings.HasSuffix(base, ".result.json") && base != "clean.json" {
			continue
		}
		var res tasks.Results
		if err := json.Unmarshal([]byte(mustRead(t, p)), &res); err != nil {
			t.Fatal(err)
		}
		if !res.Empty && res.Cwd != "/lego/exec" {
			t.Errorf("%s ran in %q, not in a container", p, res.Cwd)
		}
		// A synthetic env holds no history at all.
		if filepath.Base(p) == "clean.json" && (res.Git == nil || res.Git.Present) {
			t.Errorf("%s: the env's git audit is %+v; want no .git", p, res.Git)
		}
		n++
	}
	if n != 33 {
		t.Errorf("%d test runs, want 33 (3 clean, 30 candidates)", n)
	}

	r := build()
	if total, ran, cached := counts(t, r); ran != 0 || cached != total {
		t.Fatalf("rebuild: %d executed, %d cached of %d", ran, cached, total)
	}

	// The real tasks share the Debian base image built above.
	checkRealTasks(t, root, cache, addr)
	checkRebenchTasks(t, root, "--cache_dir="+cache, "--containerd_address="+addr)
	checkRollouts(t, root, cache, addr)
	checkPaper(t, root, cache, addr)

	// Another seed for minicalc: its candidates and their test runs
	// rerun, then the collections; textkit and inventory do not.
	writeFiles(t, root, map[string]string{"tasks/BUILD": strings.Replace(mustRead(t, filepath.Join(root, "tasks/BUILD")),
		`"minicalc": (10, 1)`, `"minicalc": (10, 2)`, 1)})
	build()
	for _, a := range executedActions(t, ev) {
		label, mnemonic, _ := strings.Cut(a, " ")
		switch {
		case label == "//tasks:synthetic" && mnemonic == "TaskCollect":
		case label == "//tasks:synthetic_minicalc" && (mnemonic == "BugCandidates" || mnemonic == "TestBug" || mnemonic == "TaskJudge" ||
			mnemonic == "TaskCollect" || mnemonic == "Write"):
		default:
			t.Errorf("after the minicalc seed change, %s ran", a)
		}
	}
	if got := executedActions(t, ev); !slices.Contains(got, "//tasks:synthetic_minicalc BugCandidates") {
		t.Errorf("the minicalc candidates did not rerun: %v", got)
	}

	// The same envs as directories, on the host: the same tasks.
	imageForm := map[string]map[string]format.Task{}
	for _, set := range []string{"synthetic", "real"} {
		mustLego(t, root, "build", "//tasks:"+set, "--cache_dir="+cache, "--containerd_address="+addr)
		imageForm[set] = readTasks(t, filepath.Join(root, "lego-out/tasks", set))
	}
	mustLego(t, root, "build", "//tasks:synthetic", "//tasks:real", "--define", "env_form=dir", "--executor=local", "--cache_dir="+cache)
	for set, want := range imageForm {
		got := readTasks(t, filepath.Join(root, "lego-out/tasks", set))
		if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
			t.Errorf("%s: directory envs give %v, images %v", set, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
		for id, w := range want {
			if g := got[id]; !slices.Equal(g.FailToPass, w.FailToPass) || g.Image != "" || g.Env != w.Env {
				t.Errorf("%s %s: directory env gives FAIL_TO_PASS %v (image %q), images %v", set, id, g.FailToPass, g.Image, w.FailToPass)
			}
		}
	}
	// The envs made from install_config, as directories: the same verdicts.
	checkRebenchTasks(t, root, "--define", "env_form=dir", "--executor=local", "--cache_dir="+cache)
	var res tasks.Results
	if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(root, "lego-out/tasks/real.work/example__minicalc-7/results.json"))), &res); err != nil {
		t.Fatal(err)
	}
	if res.Cwd == "/lego/exec" || res.Git == nil || res.Git.Commits != 2 || len(res.Git.After) != 0 {
		t.Errorf("directory env of a real task: ran in %q, git audit %+v", res.Cwd, res.Git)
	}
	verifyStore(t, cache)
}

// readTasks reads a task set's tasks by instance id.
func readTasks(t *testing.T, dir string) map[string]format.Task {
	t.Helper()
	out := map[string]format.Task{}
	for _, line := range strings.Split(strings.TrimSpace(mustRead(t, filepath.Join(dir, tasks.TasksFile))), "\n") {
		var task format.Task
		if err := json.Unmarshal([]byte(line), &task); err != nil {
			t.Fatal(err)
		}
		out[task.InstanceID] = task
	}
	return out
}

// checkRealTasks builds //tasks:real: two valid pull requests kept, one
// whose FAIL_TO_PASS test already passes before its fix dropped with
// that reason, and in each kept instance's env a git history that ends
// before created_at, as seen from inside its container.
func checkRealTasks(t *testing.T, root, cache, addr string) {
	t.Helper()
	build := func() result {
		return mustLego(t, root, "build", "//tasks:real", "--cache_dir="+cache, "--containerd_address="+addr)
	}
	build()
	out := filepath.Join(root, "lego-out/tasks/real")
	kept := readTasks(t, out)
	for _, task := range kept {
		if task.Source != "real" || !strings.HasPrefix(task.Image, "sha256:") || task.Patch == "" || task.TestPatch == "" || len(task.FailToPass) == 0 {
			t.Errorf("incomplete task %+v", task)
		}
	}
	if len(kept) != 2 || kept["example__textkit-1"].Repo != "textkit" || kept["example__minicalc-7"].Repo != "minicalc" {
		t.Fatalf("kept %v; want example__textkit-1 and example__minicalc-7", slices.Sorted(maps.Keys(kept)))
	}
	var rep tasks.Report
	if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(out, tasks.ReportFile))), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Rejected) != 1 || rep.Rejected[0].InstanceID != "example__textkit-2" ||
		!strings.Contains(rep.Rejected[0].Reason, "tests/test_wrap.py::test_truncate_empty_text already passes before the fix") {
		t.Errorf("rejected: %+v; want example__textkit-2, its FAIL_TO_PASS test already passing", rep.Rejected)
	}

	for id, task := range kept {
		created, err := time.Parse(time.RFC3339, task.CreatedAt)
		if err != nil {
			t.Fatal(err)
		}
		// The commits of the upstream history after created_at: the fix
		// and what came later.
		mirror := filepath.Join(root, "lego-out/repos", task.Repo+"_at_base.git")
		var late []string
		for _, line := range strings.Split(gitOut(t, mirror, "log", "--all", "--format=%H %ct"), "\n") {
			id, sec, _ := strings.Cut(line, " ")
			if n, _ := strconv.ParseInt(sec, 10, 64); time.Unix(n, 0).After(created) {
				late = append(late, id)
			}
		}
		if len(late) < 2 {
			t.Fatalf("%s: upstream has %d commits after created_at; the example should have the fix and later work", id, len(late))
		}
		// Inside the env (the harness ran in the container, before any
		// patch): git log --all, every commit object, reachable or not.
		var res tasks.Results
		if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(root, "lego-out/tasks/real.work", id, "results.json"))), &res); err != nil {
			t.Fatal(err)
		}
		g := res.Git
		if res.Cwd != "/lego/exec" || g == nil || !g.Present || g.Error != "" || len(g.After) != 0 || g.Commits != 2 || len(g.LogAll) != 2 {
			t.Fatalf("%s: ran in %q, git audit %+v; want 2 commits, none after created_at", id, res.Cwd, g)
		}
		if !strings.HasPrefix(g.LogAll[0], task.BaseCommit+" ") {
			t.Errorf("%s: git log --all starts %q, want the base commit", id, g.LogAll[0])
		}
		for _, line := range g.LogAll {
			_, date, _ := strings.Cut(line, " ")
			if d, err := time.Parse(time.RFC3339, date); err != nil || d.After(created) {
				t.Errorf("%s: git log --all in the env shows %q, after created_at %s", id, line, task.CreatedAt)
			}
		}
		// The .git the env's layer holds: the fix's object is not there.
		dotgit := filepath.Join(root, "lego-out/tasks/real.work", id, "git")
		for _, c := range late {
			if slices.ContainsFunc(g.LogAll, func(l string) bool { return strings.HasPrefix(l, c) }) {
				t.Errorf("%s: commit %s, after created_at, is in the env's log", id, c)
			}
			cmd := exec.Command("git", "--git-dir", dotgit, "cat-file", "-e", c)
			if err := cmd.Run(); err == nil {
				t.Errorf("%s: commit %s, after created_at, can be read in the env's .git", id, c)
			}
		}
	}
	if total, ran, cached := counts(t, build()); ran != 0 || cached != total {
		t.Fatalf("real tasks rebuild: %d executed, %d cached of %d", ran, cached, total)
	}
}

func gitOut(t *testing.T, gitDir string, args ...string) string {
	t.Helper()
	b, err := exec.Command("git", append([]string{"--git-dir", gitDir}, args...)...).Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSpace(string(b))
}

// TestGitRepoURL fetches a git_repo by url (here a file:// one: the
// machine has no internet) at a pinned commit: the tree at that commit,
// the whole history beside it, and a fetch cached like any action.
func TestGitRepoURL(t *testing.T) {
	up := t.TempDir()
	gitIn := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=u", "-c", "user.email=u@example.com"}, args...)...)
		cmd.Dir = up
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	gitIn("init", "-q", "-b", "main")
	writeFiles(t, up, map[string]string{"lib.py": "V = 1\n"})
	gitIn("add", "lib.py")
	gitIn("commit", "-q", "-m", "one")
	first := gitIn("rev-parse", "HEAD")
	writeFiles(t, up, map[string]string{"lib.py": "V = 2\n"})
	gitIn("commit", "-q", "-a", "-m", "two")

	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"WORKSPACE": "",
		"BUILD":     `git_repo(name = "lib", url = "file://` + up + `", commit = "` + first + `")` + "\n",
	})
	cache := t.TempDir()
	mustLego(t, root, "build", "//:lib", "--cache_dir="+cache)
	if got := mustRead(t, filepath.Join(root, "lego-out/lib.tree/lib.py")); got != "V = 1\n" {
		t.Errorf("tree at the pinned commit: lib.py = %q", got)
	}
	if n := gitOut(t, filepath.Join(root, "lego-out/lib.git"), "rev-list", "--all", "--count"); n != "2" {
		t.Errorf("the history holds %s commits, want 2", n)
	}
	if total, ran, _ := counts(t, mustLego(t, root, "build", "//:lib", "--cache_dir="+cache)); ran != 0 || total != 1 {
		t.Errorf("rebuild: %d of %d actions ran", ran, total)
	}
}

// checkRollouts builds //rollouts:teacher on the images, killed half-way
// first: the rebuild runs only the rollouts that had not finished and
// removes the killed rollouts' containers. The scripted policy resolves
// every task, each rollout in containers of its own (the agent's, then a
// fresh one for the tests), none left behind; a second build is fully
// cached.
func checkRollouts(t *testing.T, root, cache, addr string) {
	t.Helper()
	args := []string{"build", "//rollouts:teacher", "--cache_dir=" + cache, "--containerd_address=" + addr}
	finished := killAfterRollouts(t, root, 5, args...)
	ev2 := filepath.Join(t.TempDir(), "rollouts2.jsonl")
	mustLego(t, root, append(args, "--build_event_json_file="+ev2)...)
	if again := rolloutsRun(ev2); again+finished != 33 && again+finished != 32 {
		t.Errorf("after a kill with %d rollouts finished, the rebuild ran %d of 33", finished, again)
	}
	ctrEmpty(t, addr, "after the rollouts")
	var rep agent.Report
	if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(root, "lego-out/rollouts/teacher/report.json"))), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Rollouts != 29 || rep.Skipped != 4 || rep.Resolved != 20 {
		t.Errorf("rollouts on images: %+v; want 29 (27 synthetic, 2 real), 20 resolved (the policy gives up on 9), 4 rejected slots skipped", rep)
	}
	for _, line := range strings.Split(strings.TrimSpace(mustRead(t, filepath.Join(root, "lego-out/rollouts/teacher/trajectories.jsonl"))), "\n") {
		var tr format.Trajectory
		if err := json.Unmarshal([]byte(line), &tr); err != nil {
			t.Fatal(err)
		}
		// The agent saw the container's /testbed, not a host path.
		if !strings.Contains(tr.Messages[1].Content, "<uploaded_files>\n/testbed\n") {
			t.Errorf("%s: the task says %q", tr.InstanceID, tr.Messages[1].Content)
			break
		}
	}
	if total, ran, cached := counts(t, mustLego(t, root, args...)); ran != 0 || cached != total {
		t.Errorf("rollouts rebuild: %d executed, %d cached of %d", ran, cached, total)
	}
}
