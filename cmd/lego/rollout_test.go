package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/rules/swe/agent"
	"github.com/legobuild/lego/rules/swe/format"
)

// rolloutsRun counts the Rollout actions an event log says ran (a line
// still being written is skipped).
func rolloutsRun(path string) int {
	b, _ := os.ReadFile(path)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		var ev engine.Event
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Type == engine.EvActionExecuted && ev.Mnemonic == "Rollout" {
			n++
		}
	}
	return n
}

// killAfterRollouts runs lego with args (one action at a time), kills it
// with what it started once n rollouts have finished, and returns how
// many had.
func killAfterRollouts(t *testing.T, root string, n int, args ...string) int {
	t.Helper()
	ev := filepath.Join(t.TempDir(), "killed.jsonl")
	cmd := exec.Command(legoBin, append(args, "-j", "1", "--build_event_json_file="+ev)...)
	cmd.Dir = root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for rolloutsRun(ev) < n {
		if time.Now().After(deadline) {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Fatal("the rollouts made no progress")
		}
		time.Sleep(20 * time.Millisecond)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	return rolloutsRun(ev)
}

// TestExampleRolloutsResumeAfterKill builds //rollouts:teacher of the
// example on directory envs (the scripted policy over the real and
// synthetic tasks), kills the build half-way, and checks that the rebuild
// runs only the rollouts that had not finished, that resolved comes from
// the tests, and that a third build is fully cached.
func TestExampleRolloutsResumeAfterKill(t *testing.T) {
	root := t.TempDir()
	copyTree(t, "../../examples/swe-lego", root)
	cache := t.TempDir()
	dir := []string{"--define", "env_form=dir", "--executor=local", "--cache_dir=" + cache}
	mustLego(t, root, append([]string{"build", "//tasks:real", "//tasks:synthetic"}, dir...)...)

	finished := killAfterRollouts(t, root, 8, append([]string{"build", "//rollouts:teacher"}, dir...)...)
	verifyStore(t, cache)

	ev2 := filepath.Join(t.TempDir(), "events2.jsonl")
	mustLego(t, root, append([]string{"build", "//rollouts:teacher", "--build_event_json_file=" + ev2}, dir...)...)
	total := 33 // 3 real instances and 30 synthetic candidates, one sample each
	// A rollout may have been stored just before the kill, after its event.
	if again := rolloutsRun(ev2); again+finished != total && again+finished != total-1 {
		t.Errorf("after a kill with %d rollouts finished, the rebuild ran %d of %d", finished, again, total)
	}

	out := filepath.Join(root, "lego-out/rollouts/teacher")
	var rep agent.Report
	if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(out, "report.json"))), &rep); err != nil {
		t.Fatal(err)
	}
	// The policy gives up on about a quarter of the tasks (give_up_rate):
	// the verifier learns from both outcomes.
	if rep.Rollouts+rep.Skipped != total || rep.Rollouts < 25 || rep.Resolved < rep.Rollouts/2 || rep.Resolved == rep.Rollouts || rep.Exits[agent.ExitFinish] != rep.Rollouts {
		t.Errorf("report %+v", rep)
	}
	n, masked := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(mustRead(t, filepath.Join(out, "trajectories.jsonl"))), "\n") {
		var tr format.Trajectory
		if err := json.Unmarshal([]byte(line), &tr); err != nil {
			t.Fatal(err)
		}
		n++
		if tr.Check() != "" || tr.GoldPatch == "" || tr.Teacher != "//rollouts:scripted" || tr.Turns < 4 {
			t.Errorf("%s: trajectory %q, %d turns", tr.InstanceID, tr.Check(), tr.Turns)
		}
		if !tr.Resolved {
			// Given up after reproducing the failure: no change, and the
			// last command run is the failing tests.
			if tr.Patch != "" || !strings.Contains(tr.Messages[len(tr.Messages)-2].Content, "could not find") {
				t.Errorf("%s: unresolved, patch %q, not a give-up", tr.InstanceID, tr.Patch)
			}
			continue
		}
		if tr.Patch == "" {
			t.Errorf("%s: resolved with no patch", tr.InstanceID)
		}
		// The resolved flag comes from the tests: the evaluation ran them
		// after the agent's own last test run, which shows them passing.
		last := ""
		for _, m := range tr.Messages {
			if m.Role == "tool" && strings.Contains(m.Content, "[exit code") {
				last = m.Content
			}
			if m.Role == "tool" && strings.HasPrefix(m.Content, "ERROR") {
				masked++
			}
		}
		if !strings.Contains(last, "[exit code 0]") {
			t.Errorf("%s: the agent's last command: %q", tr.InstanceID, last)
		}
	}
	if n != rep.Rollouts || masked == 0 {
		t.Errorf("%d trajectories for %d rollouts; %d tool errors (the missteps)", n, rep.Rollouts, masked)
	}
	if total, ran, cached := counts(t, mustLego(t, root, append([]string{"build", "//rollouts:teacher"}, dir...)...)); ran != 0 || cached != total {
		t.Errorf("third build: %d executed, %d cached of %d", ran, cached, total)
	}
}
