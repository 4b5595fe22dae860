package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/internal/testenv"
)

func readEvents(t *testing.T, path string) []engine.Event {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []engine.Event
	for _, line := range strings.Split(string(b), "\n") {
		var ev engine.Event
		if json.Unmarshal([]byte(line), &ev) == nil {
			out = append(out, ev)
		}
	}
	return out
}

// sameTree fails the test unless the files under a and b are equal.
func sameTree(t *testing.T, a, b string) {
	t.Helper()
	n := 0
	filepath.WalkDir(a, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		x, _ := os.ReadFile(p)
		y, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs between the workspaces (%v)", rel, err)
		}
		n++
		return nil
	})
	if n == 0 {
		t.Errorf("no files under %s", a)
	}
}

// exampleData copies the example to a new directory and returns it with
// the flags that build its data stages on directory envs.
func exampleData(t *testing.T) (root string, flags []string) {
	root = t.TempDir()
	copyTree(t, "../../examples/swe-lego", root)
	return root, []string{"build", "//data/...", "--define", "env_form=dir", "--executor=local", "--cache_dir=" + t.TempDir(), "--progress=lines"}
}

// Two workspaces at different paths with their own local caches share one
// bazel-remote: the second builds the example's data stages from remote
// hits alone, and a blob corrupted on the server is rejected and rebuilt.
func TestRemoteCacheAcrossWorkspaces(t *testing.T) {
	srv := testenv.StartBazelRemote(t)
	rc := "--remote_cache=" + srv.Addr

	a, flags := exampleData(t)
	r := mustLego(t, a, append(flags, rc)...)
	if _, ran, _ := counts(t, r); ran < 100 {
		t.Fatalf("first workspace ran %d actions:\n%s", ran, r.stderr)
	}

	b, flags := exampleData(t)
	ev := filepath.Join(t.TempDir(), "b.jsonl")
	r = mustLego(t, b, append(flags, rc, "--build_event_json_file="+ev)...)
	hits, writes := 0, 0
	for _, e := range readEvents(t, ev) {
		switch {
		case e.Type == engine.EvActionStarted:
			t.Errorf("second workspace ran %s", e.Action)
		case e.Mnemonic == "Write":
			writes++ // BUILD-file content put in the store; nothing runs
		case e.Type == engine.EvActionCached && e.Remote:
			hits++
		case e.Type == engine.EvActionCached:
			t.Errorf("%s: a local hit in an empty cache", e.Action)
		}
	}
	total, _, _ := counts(t, r)
	if hits == 0 || hits+writes != total || strings.Contains(r.stderr, "WARNING") {
		t.Errorf("%d remote hits and %d writes of %d actions:\n%s", hits, writes, total, r.stderr)
	}
	sameTree(t, filepath.Join(a, "lego-out/data"), filepath.Join(b, "lego-out/data"))

	// Corrupt the server's copy of one output: a third workspace rejects
	// it, runs that action here, and the rest still come from the server.
	stats, err := os.ReadFile(filepath.Join(a, "lego-out/data/masked/stats.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(stats)
	srv.Corrupt(t, hex.EncodeToString(sum[:]))
	c, flags := exampleData(t)
	ev = filepath.Join(t.TempDir(), "c.jsonl")
	r = mustLego(t, c, append(flags, rc, "--build_event_json_file="+ev)...)
	var ran []string
	for _, e := range readEvents(t, ev) {
		if e.Type == engine.EvActionExecuted && e.Mnemonic != "Write" {
			ran = append(ran, e.Action)
		}
	}
	if len(ran) != 1 || !strings.Contains(ran[0], "//data:masked") || !strings.Contains(r.stderr, "corrupt") {
		t.Errorf("with a corrupt blob on the server, ran %q:\n%s", ran, r.stderr)
	}
	sameTree(t, filepath.Join(a, "lego-out/data"), filepath.Join(c, "lego-out/data"))
}

// bazel-remote killed in the middle of a build: the build finishes on the
// local cache and executor with one warning.
func TestRemoteCacheOutageMidBuild(t *testing.T) {
	srv := testenv.StartBazelRemote(t)
	root, flags := exampleData(t)
	ev := filepath.Join(t.TempDir(), "events.jsonl")
	cmd := exec.Command(legoBin, append(flags, "--remote_cache="+srv.Addr, "-j", "1", "--build_event_json_file="+ev)...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for rolloutsRun(ev) < 3 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no progress:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.Kill()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the build failed after the remote cache died: %v\n%s", err, stderr.String())
	}
	if n := strings.Count(stderr.String(), "WARNING"); n != 1 || !strings.Contains(stderr.String(), "remote cache "+srv.Addr+" is unavailable") {
		t.Errorf("%d warnings:\n%s", n, stderr.String())
	}
	after := 0
	for _, e := range readEvents(t, ev) {
		if e.Type == engine.EvActionExecuted && e.Mnemonic == "Rollout" {
			after++
		}
	}
	if after < 20 {
		t.Errorf("only %d rollouts ran", after)
	}
	if _, err := os.Stat(filepath.Join(root, "lego-out/data/masked_curriculum")); err != nil {
		t.Error(err)
	}
}

// inCache tells whether the local store under cache holds content.
func inCache(cache, content string) bool {
	sum := sha256.Sum256([]byte(content))
	h := hex.EncodeToString(sum[:])
	_, err := os.Stat(filepath.Join(cache, "cas", h[:2], h))
	return err == nil
}

// With --remote_download_outputs=toplevel a remote hit brings back only
// the outputs of the targets asked for; an action that then runs here
// fetches the inputs it needs.
func TestRemoteDownloadToplevel(t *testing.T) {
	srv := testenv.StartBazelRemote(t)
	rc := "--remote_cache=" + srv.Addr
	chain := func(last string) map[string]string {
		return map[string]string{"WORKSPACE": "", "BUILD": `
genrule(name = "a", outs = ["a.txt"], cmd = "echo alpha-output > $@")
genrule(name = "b", srcs = [":a"], outs = ["b.txt"], cmd = "tr a-z A-Z < $< > $@")
genrule(name = "c", srcs = [":b"], outs = ["c.txt"], cmd = "` + last + ` $< > $@")
`}
	}
	a := t.TempDir()
	writeFiles(t, a, chain("rev"))
	mustLego(t, a, "build", "//:c", "--cache_dir="+t.TempDir(), rc)

	b, cache := t.TempDir(), t.TempDir()
	writeFiles(t, b, chain("rev"))
	r := mustLego(t, b, "build", "//:c", "--cache_dir="+cache, rc, "--remote_download_outputs=toplevel")
	if total, ran, cached := counts(t, r); ran != 0 || cached != total {
		t.Fatalf("toplevel build: %d executed, %d cached of %d\n%s", ran, cached, total, r.stderr)
	}
	if got := mustRead(t, filepath.Join(b, "lego-out/c.txt")); got != "TUPTUO-AHPLA\n" {
		t.Errorf("c.txt = %q", got)
	}
	for _, p := range []string{"a.txt", "b.txt"} {
		if _, err := os.Stat(filepath.Join(b, "lego-out", p)); err == nil {
			t.Errorf("%s was materialized, though not asked for", p)
		}
	}
	if inCache(cache, "ALPHA-OUTPUT\n") || inCache(cache, "alpha-output\n") {
		t.Error("intermediate outputs were downloaded")
	}

	// c changes: it runs here and needs b's output, which is fetched.
	writeFiles(t, b, chain("cat"))
	r = mustLego(t, b, "build", "//:c", "--cache_dir="+cache, rc, "--remote_download_outputs=toplevel")
	if _, ran, _ := counts(t, r); ran != 1 {
		t.Errorf("after changing c: %d executed\n%s", ran, r.stderr)
	}
	if got := mustRead(t, filepath.Join(b, "lego-out/c.txt")); got != "ALPHA-OUTPUT\n" {
		t.Errorf("c.txt = %q", got)
	}
	if !inCache(cache, "ALPHA-OUTPUT\n") || inCache(cache, "alpha-output\n") {
		t.Error("the local action's input was not fetched, or more than it was")
	}
}

// Remote execution on a real REAPI execution service (Buildbarn): the
// actions run on its worker, only the target's own output comes back,
// a second workspace gets the results from its action cache, and a
// failing action reports the worker's stderr.
func TestRemoteExecutionBuildbarn(t *testing.T) {
	rx := "--remote_executor=" + testenv.Buildbarn(t)
	files := map[string]string{"WORKSPACE": "", "data/in.txt": "remote input\n", "BUILD": `
genrule(name = "a", srcs = ["data/in.txt"], outs = ["a.txt"], cmd = "tr a-z A-Z < $< > $@")
genrule(name = "b", srcs = [":a"], outs = ["b.txt"], cmd = "rev $< > $@; echo worker >> $@")
genrule(name = "c", srcs = [":b", "data/in.txt"], outs = ["c.txt"], cmd = "cat $(SRCS) > $@")
genrule(name = "fails", outs = ["f.txt"], cmd = "echo boom from the worker >&2; exit 3")
`}
	root, cache := t.TempDir(), t.TempDir()
	writeFiles(t, root, files)
	ev := filepath.Join(t.TempDir(), "events.jsonl")
	r := mustLego(t, root, "build", "//:c", "--cache_dir="+cache, rx, "--build_event_json_file="+ev)
	remoteRuns := 0
	for _, e := range readEvents(t, ev) {
		if e.Type == engine.EvActionExecuted && e.Mnemonic != "Write" {
			if !e.Remote {
				t.Errorf("%s ran here", e.Action)
			}
			remoteRuns++
		}
	}
	if remoteRuns != 3 || !strings.Contains(r.stderr, "3 run remotely") {
		t.Errorf("%d actions ran remotely:\n%s", remoteRuns, r.stderr)
	}
	if got := mustRead(t, filepath.Join(root, "lego-out/c.txt")); got != "TUPNI ETOMER\nworker\nremote input\n" {
		t.Errorf("c.txt = %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "lego-out/a.txt")); err == nil || inCache(cache, "REMOTE INPUT\n") {
		t.Error("an intermediate output came back, though only //:c was asked for")
	}

	other := t.TempDir()
	writeFiles(t, other, files)
	r = mustLego(t, other, "build", "//:c", "--cache_dir="+t.TempDir(), rx)
	if total, ran, cached := counts(t, r); ran != 0 || cached != total || !strings.Contains(r.stderr, "3 remote cache hits") {
		t.Errorf("second workspace: %d executed, %d cached of %d\n%s", ran, cached, total, r.stderr)
	}

	// Run remotely with every output downloaded: the intermediate ones
	// come back too.
	all := t.TempDir()
	writeFiles(t, all, files)
	writeFiles(t, all, map[string]string{"data/in.txt": "all outputs\n"})
	r = mustLego(t, all, "build", "//:c", "--cache_dir="+t.TempDir(), rx, "--remote_download_outputs=all")
	if got := mustRead(t, filepath.Join(all, "lego-out/a.txt")); got != "ALL OUTPUTS\n" || !strings.Contains(r.stderr, "3 run remotely") {
		t.Errorf("a.txt = %q\n%s", got, r.stderr)
	}

	r = lego(t, root, "build", "//:c", rx, "--remote_cache=grpc://127.0.0.1:1")
	if r.code == 0 || !strings.Contains(r.stderr, "the executor's server is its cache") {
		t.Errorf("a cache apart from the executor: exit %d\n%s", r.code, r.stderr)
	}

	r = lego(t, root, "build", "//:fails", "--cache_dir="+cache, rx)
	if r.code == 0 || !strings.Contains(r.stderr, "exit code 3") || !strings.Contains(r.stderr, "boom from the worker") {
		t.Errorf("failing remote action: exit %d\n%s", r.code, r.stderr)
	}
}
