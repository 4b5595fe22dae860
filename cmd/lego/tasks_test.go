package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/tasks"
)

// TestExampleSyntheticTasks builds //tasks:synthetic of the swe-lego
// example as a user would: at least 20 validated tasks over the three
// repositories, every test run inside a container, a fully cached second
// build, and a seed change for one repository that reruns that
// repository's generation and validation only.
func TestExampleSyntheticTasks(t *testing.T) {
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
		if base := filepath.Base(p); !strings.HasPrefix(base, "result") && base != "clean.json" {
			continue
		}
		var res tasks.Results
		if err := json.Unmarshal([]byte(mustRead(t, p)), &res); err != nil {
			t.Fatal(err)
		}
		if !res.Empty && res.Cwd != "/lego/exec" {
			t.Errorf("%s ran in %q, not in a container", p, res.Cwd)
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

	// Another seed for minicalc: its candidates and their test runs
	// rerun, then the collections; textkit and inventory do not.
	writeFiles(t, root, map[string]string{"tasks/BUILD": strings.Replace(mustRead(t, filepath.Join(root, "tasks/BUILD")),
		`"minicalc": (10, 1)`, `"minicalc": (10, 2)`, 1)})
	build()
	for _, a := range executedActions(t, ev) {
		label, mnemonic, _ := strings.Cut(a, " ")
		switch {
		case label == "//tasks:synthetic" && mnemonic == "TaskCollect":
		case label == "//tasks:synthetic_minicalc" && (mnemonic == "BugCandidates" || mnemonic == "TestBug" ||
			mnemonic == "TaskCollect" || mnemonic == "Write"):
		default:
			t.Errorf("after the minicalc seed change, %s ran", a)
		}
	}
	if got := executedActions(t, ev); !slices.Contains(got, "//tasks:synthetic_minicalc BugCandidates") {
		t.Errorf("the minicalc candidates did not rerun: %v", got)
	}
	verifyStore(t, cache)
}
