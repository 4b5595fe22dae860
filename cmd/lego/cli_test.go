package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/internal/testenv"
)

var legoBin string

// TestMain builds the real binary, linked as the Makefile links it, so the
// tests exercise what users run.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lego-cli-test-")
	if err != nil {
		panic(err)
	}
	legoBin = filepath.Join(dir, "lego")
	out, err := exec.Command("go", "build", "-ldflags=-extldflags=-Wl,-z,lazy", "-o", legoBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building lego: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	ctrdStop()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func lego(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(legoBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{o.String(), e.String(), code}
}

func mustLego(t *testing.T, dir string, args ...string) result {
	t.Helper()
	r := lego(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("lego %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

var summaryRE = regexp.MustCompile(`(\d+) actions: (\d+) executed, (\d+) cached`)

// counts reads total, executed, cached from the summary line.
func counts(t *testing.T, r result) (int, int, int) {
	t.Helper()
	m := summaryRE.FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no summary line in:\n%s", r.stderr)
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	c, _ := strconv.Atoi(m[3])
	return a, b, c
}

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	testenv.WriteFiles(t, root, files)
}

// copyTree copies a source tree (not lego-out).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() && info.Name() == engine.OutDir {
			return filepath.SkipDir
		}
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, info.Mode())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// verifyStore checks every blob against its name (the store is consistent)
// and counts the non-empty ones.
func verifyStore(t *testing.T, cache string) int {
	t.Helper()
	n := 0
	for _, sub := range []string{"cas", "cas-x"} {
		filepath.Walk(filepath.Join(cache, sub), func(p string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Errorf("read %s: %v", p, err)
				return nil
			}
			h := sha256.Sum256(b)
			if hex.EncodeToString(h[:]) != info.Name() {
				t.Errorf("corrupt blob %s", p)
			}
			if info.Size() > 0 {
				n++
			}
			return nil
		})
	}
	return n
}

func exampleWS(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "ws")
	copyTree(t, "../../examples/basics", root)
	return root
}

func TestNullBuildAndRelocatedWorkspace(t *testing.T) {
	root := exampleWS(t)
	cache := t.TempDir()
	r := mustLego(t, root, "build", "//...", "--cache_dir="+cache)
	total, ran, _ := counts(t, r)
	if total == 0 || ran != total {
		t.Fatalf("first build: %d of %d executed\n%s", ran, total, r.stderr)
	}
	report, err := os.ReadFile(filepath.Join(root, "lego-out/pipeline/report.txt"))
	if err != nil || string(report) != "resolved 4 of 6\n" {
		t.Fatalf("report = %q, %v", report, err)
	}
	// Outputs are hardlinks of the store's blobs, never copies.
	if st, err := os.Stat(filepath.Join(root, "lego-out/pipeline/report.txt")); err != nil || st.Sys().(*syscall.Stat_t).Nlink < 2 {
		t.Fatalf("report is not a hardlink into the cache: %v", err)
	}
	r = mustLego(t, root, "build", "//...", "--cache_dir="+cache)
	if _, ran, cached := counts(t, r); ran != 0 || cached != total || !strings.Contains(r.stderr, fmt.Sprintf("(all %d cached)", total)) {
		t.Fatalf("null build: %d executed, %d cached\n%s", ran, cached, r.stderr)
	}
	// The same workspace at another absolute path hits the cache for every action.
	moved := filepath.Join(t.TempDir(), "elsewhere", "ws")
	copyTree(t, root, moved)
	r = mustLego(t, moved, "build", "//...", "--cache_dir="+cache)
	if _, ran, cached := counts(t, r); ran != 0 || cached != total {
		t.Fatalf("relocated build: %d executed, %d cached\n%s", ran, cached, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(moved, "lego-out/pipeline/report.txt")); string(b) != string(report) {
		t.Fatalf("relocated report = %q", b)
	}
	// --define changes the filter: it and its dependents rerun, nothing else.
	r = mustLego(t, root, "build", "//...", "--cache_dir="+cache, "--define", "keep=false", "--progress=lines")
	if _, ran, _ := counts(t, r); ran != 3 {
		t.Fatalf("--define keep=false ran %d actions, want 3 (resolved, count_resolved, report)\n%s", ran, r.stderr)
	}
	for _, want := range []string{"ran", "//pipeline:resolved", "//pipeline:count_resolved", "//pipeline:report"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("progress lines lack %q:\n%s", want, r.stderr)
		}
	}
	verifyStore(t, cache)
}

func TestExplainAndEvents(t *testing.T) {
	root := exampleWS(t)
	cache := t.TempDir()
	mustLego(t, root, "build", "//...", "--cache_dir="+cache)
	if err := os.WriteFile(filepath.Join(root, "data/real.jsonl"), []byte(`{"instance_id": "x", "resolved": true, "turns": 3}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	events := filepath.Join(t.TempDir(), "events.jsonl")
	mustLego(t, root, "build", "//pipeline:report", "--cache_dir="+cache, "--build_event_json_file="+events)
	r := mustLego(t, root, "explain", "//pipeline:resolved")
	if !strings.Contains(r.stdout, "input changed: data/real.jsonl") {
		t.Fatalf("explain:\n%s", r.stdout)
	}
	r = mustLego(t, root, "explain", "//pipeline:count_all")
	if !strings.Contains(r.stdout, "input changed: data/real.jsonl") {
		t.Fatalf("explain count_all:\n%s", r.stdout)
	}
	types := eventTypes(t, events)
	for _, ty := range []string{engine.EvBuildStarted, engine.EvTargetStarted, engine.EvTargetFinished, engine.EvActionStarted, engine.EvActionExecuted, engine.EvBuildFinished} {
		if types[ty] == 0 {
			t.Errorf("no %s event in %v", ty, types)
		}
	}
	// A null build: explain says nothing ran.
	mustLego(t, root, "build", "//pipeline:report", "--cache_dir="+cache, "--build_event_json_file="+events)
	if types := eventTypes(t, events); types[engine.EvActionCached] != 4 || types[engine.EvActionExecuted] != 0 {
		t.Errorf("null build events: %v", types)
	}
	if r := mustLego(t, root, "explain", "//pipeline:resolved"); !strings.Contains(r.stdout, "no action of it ran") {
		t.Fatalf("explain after null build:\n%s", r.stdout)
	}
}

// eventTypes counts the events of a --build_event_json_file by type.
func eventTypes(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	types := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e engine.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("event line %q: %v", sc.Text(), err)
		}
		types[e.Type]++
		if e.Type == engine.EvActionExecuted && (e.Key == "" || e.Duration <= 0) {
			t.Errorf("executed event without key or duration: %s", sc.Text())
		}
	}
	return types
}

func TestTerminalProgress(t *testing.T) {
	root := slowWS(t, 3, "0.4")
	r := mustLego(t, root, "build", "//...", "--cache_dir="+t.TempDir(), "--progress=tty", "-j", "1")
	// The live line shows done/total and the running action with its elapsed time.
	if !regexp.MustCompile(`\r\x1b\[K\[\d/3\] 0 cached, \d ran \| running: //:s\d Genrule s\d\.txt \d\.\ds`).MatchString(r.stderr) {
		t.Fatalf("no live status line in %q", r.stderr)
	}
}

func TestQuery(t *testing.T) {
	root := exampleWS(t)
	r := mustLego(t, root, "query", "deps(//pipeline:report)")
	for _, want := range []string{"//pipeline:report", "//pipeline:count_all", "//data:trajectories", "//data:real.jsonl"} {
		if !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("deps lacks %s:\n%s", want, r.stdout)
		}
	}
	r = mustLego(t, root, "query", "rdeps(//..., //pipeline:resolved)")
	if got := strings.Fields(r.stdout); strings.Join(got, " ") != "//pipeline:count_resolved //pipeline:report //pipeline:resolved" {
		t.Errorf("rdeps = %v", got)
	}
	r = mustLego(t, root, "query", "kind(line_count, //...)")
	if got := strings.Fields(r.stdout); strings.Join(got, " ") != "//pipeline:count_all //pipeline:count_resolved" {
		t.Errorf("kind = %v", got)
	}
	r = mustLego(t, root, "query", "attr(outs, report, //...)")
	if got := strings.TrimSpace(r.stdout); got != "//pipeline:report" {
		t.Errorf("attr = %q", got)
	}
	r = mustLego(t, root, "query", "deps(//pipeline:count_all)", "--output=graph")
	if !strings.Contains(r.stdout, `"//pipeline:count_all" -> "//data:trajectories";`) || !strings.HasPrefix(r.stdout, "digraph") {
		t.Errorf("graph output:\n%s", r.stdout)
	}
	r = mustLego(t, root, "query", "//pipeline:resolved", "--output=json")
	var js []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil || len(js) != 1 || js[0]["kind"] != "genrule" {
		t.Errorf("json output %v: %s", err, r.stdout)
	}
}

func TestLegorcCleanGCVersion(t *testing.T) {
	root := exampleWS(t)
	cache := t.TempDir()
	writeFiles(t, root, map[string]string{".legorc": "# defaults\ncommon --cache_dir=" + cache + "\nbuild --keep_going\n"})
	mustLego(t, root, "build", "//...")
	if verifyStore(t, cache) == 0 {
		t.Fatal(".legorc --cache_dir was not used: the cache is empty")
	}
	r := mustLego(t, root, "gc", "--max_size=0")
	if !strings.Contains(r.stdout, "gc:") {
		t.Fatalf("gc output: %s", r.stdout)
	}
	if n := verifyStore(t, cache); n != 0 {
		t.Fatalf("gc --max_size=0 left %d blobs", n)
	}
	r = mustLego(t, root, "build", "//...")
	if _, ran, _ := counts(t, r); ran == 0 {
		t.Fatalf("after gc everything should rerun:\n%s", r.stderr)
	}
	mustLego(t, root, "clean")
	if _, err := os.Stat(filepath.Join(root, engine.OutDir)); !os.IsNotExist(err) {
		t.Fatalf("clean left lego-out: %v", err)
	}
	mustLego(t, root, "clean", "--expunge")
	if n := verifyStore(t, cache); n != 0 {
		t.Fatalf("clean --expunge left %d blobs", n)
	}
	if r := mustLego(t, root, "version"); !strings.HasPrefix(r.stdout, "lego ") {
		t.Fatalf("version: %q", r.stdout)
	}
}

func TestBadInputMessages(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"WORKSPACE": "",
		"a/BUILD": `genrule(name = "gen", outs = ["x"], cmd = "echo one; echo two >&2; exit 7")
genrule(name = "ok", outs = ["y"], cmd = "echo fine > $@")
genrule(name = "typo", srcs = [":gne"], outs = ["z"], cmd = "cp $< $@")
`,
	})
	r := lego(t, root, "build", "//a:typo")
	if r.code == 0 || !strings.Contains(r.stderr, "a/BUILD:3:8: //a:typo: attribute srcs: no target or source file //a:gne; did you mean //a:gen?") {
		t.Fatalf("unknown label: exit %d\n%s", r.code, r.stderr)
	}
	r = lego(t, root, "build", "//a:gen", "//a:ok", "--keep_going", "--cache_dir="+t.TempDir())
	for _, want := range []string{"//a:gen Genrule a/x failed with exit code 7", "command: /bin/bash -c 'set -euo pipefail; ", "two", "1 failed"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("failure output lacks %q:\n%s", want, r.stderr)
		}
	}
	if r.code == 0 {
		t.Error("failed build exited 0")
	}
	if b, err := os.ReadFile(filepath.Join(root, "lego-out/a/y")); err != nil || string(b) != "fine\n" {
		t.Errorf("--keep_going did not finish the independent action: %q %v", b, err)
	}
}

// slowWS declares n chained targets that each take a moment.
func slowWS(t *testing.T, n int, sleep string) string {
	root := t.TempDir()
	var b strings.Builder
	for i := 0; i < n; i++ {
		src := ""
		if i > 0 {
			src = fmt.Sprintf(`":s%d"`, i-1)
		}
		fmt.Fprintf(&b, "genrule(name = \"s%d\", srcs = [%s], outs = [\"s%d.txt\"], cmd = \"sleep %s; echo %d $$(cat $(SRCS) /dev/null | wc -c) > $@\")\n", i, src, i, sleep, i)
	}
	writeFiles(t, root, map[string]string{"WORKSPACE": "", "BUILD": b.String()})
	return root
}

// processGone: no such process, or a zombie (nobody may reap orphans in a container).
func processGone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) == 0 || f[0] == "Z" || f[0] == "X"
}

func countEvents(t *testing.T, path, typ string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), `"type":"`+typ+`"`)
}

func TestSIGKILLMidBuildReusesFinishedActions(t *testing.T) {
	const n = 24
	root := slowWS(t, n, "0.15")
	cache := t.TempDir()
	events := filepath.Join(t.TempDir(), "events.jsonl")
	cmd := exec.Command(legoBin, "build", "//...", "--cache_dir="+cache, "-j", "1", "--build_event_json_file="+events)
	cmd.Dir = root
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for countEvents(t, events, engine.EvActionExecuted) < 8 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("build made no progress")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	finished := countEvents(t, events, engine.EvActionExecuted)
	verifyStore(t, cache)
	r := mustLego(t, root, "build", "//...", "--cache_dir="+cache)
	total, ran, cached := counts(t, r)
	// An action may have been stored just before the kill, after its event.
	if total != n || cached < finished || cached > finished+1 || ran+cached != n {
		t.Fatalf("after SIGKILL with %d finished: %d executed, %d cached of %d", finished, ran, cached, total)
	}
	b, err := os.ReadFile(filepath.Join(root, "lego-out", fmt.Sprintf("s%d.txt", n-1)))
	if err != nil || !strings.HasPrefix(string(b), fmt.Sprintf("%d ", n-1)) {
		t.Fatalf("last output %q, %v", b, err)
	}
	verifyStore(t, cache)
}

func TestSIGINTKillsActionsAndKeepsStoreConsistent(t *testing.T) {
	root := t.TempDir()
	// The sandbox shows the action no host file to leave its pid in: its
	// child is found by a marker in its command line.
	marker := fmt.Sprintf("lego-sigint-%d", time.Now().UnixNano())
	writeFiles(t, root, map[string]string{"WORKSPACE": "", "BUILD": `
genrule(name = "quick", outs = ["q"], cmd = "echo q > $@")
genrule(name = "long", outs = ["l"], cmd = "bash -c 'exec -a ` + marker + ` sleep 60' & wait; echo done > $@")
`})
	cache := t.TempDir()
	cmd := exec.Command(legoBin, "build", "//...", "--cache_dir="+cache)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	var pid int
	for pid == 0 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the long action never started")
		}
		if procs := markerProcs(marker); len(procs) > 0 {
			pid, _ = strconv.Atoi(procs[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("interrupted build: %v\n%s", err, stderr.String())
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("interrupt took %v", time.Since(start))
	}
	for !processGone(pid) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the action's child %d survived the interrupt", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	verifyStore(t, cache)
	// The interrupted action left no cache entry: it runs again.
	writeFiles(t, root, map[string]string{"BUILD": `
genrule(name = "quick", outs = ["q"], cmd = "echo q > $@")
genrule(name = "long", outs = ["l"], cmd = "echo done > $@")
`})
	r := mustLego(t, root, "build", "//...", "--cache_dir="+cache)
	if _, ran, cached := counts(t, r); ran != 1 || cached != 1 {
		t.Fatalf("after interrupt: %d executed, %d cached\n%s", ran, cached, r.stderr)
	}
}

func TestConcurrentBuildsShareCache(t *testing.T) {
	cache := t.TempDir()
	a := slowWS(t, 12, "0.02")
	b := t.TempDir()
	copyTree(t, a, b)
	var wg sync.WaitGroup
	results := make([]result, 2)
	for i, root := range []string{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(legoBin, "build", "//...", "--cache_dir="+cache, "-j", "4")
			cmd.Dir = root
			var e bytes.Buffer
			cmd.Stderr = &e
			err := cmd.Run()
			code := 0
			if err != nil {
				code = 1
			}
			results[i] = result{stderr: e.String(), code: code}
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Fatalf("build %d failed:\n%s", i, r.stderr)
		}
	}
	verifyStore(t, cache)
	for _, root := range []string{a, b} {
		r := mustLego(t, root, "build", "//...", "--cache_dir="+cache)
		if _, ran, _ := counts(t, r); ran != 0 {
			t.Fatalf("after concurrent builds, %d actions reran\n%s", ran, r.stderr)
		}
		out, _ := os.ReadFile(filepath.Join(root, "lego-out/s11.txt"))
		if !strings.HasPrefix(string(out), "11 ") {
			t.Fatalf("output %q", out)
		}
	}
}

// --nobuild loads and analyses, reports the graph's size, and runs
// nothing: no output appears.
func TestNoBuild(t *testing.T) {
	root := exampleWS(t)
	r := mustLego(t, root, "build", "//...", "--nobuild", "--cache_dir="+t.TempDir())
	if !strings.Contains(r.stderr, "INFO: analysed 5 targets") || !strings.Contains(r.stderr, "4 actions") {
		t.Errorf("--nobuild said:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(root, engine.OutDir)); !os.IsNotExist(err) {
		t.Errorf("--nobuild made %s: %v", engine.OutDir, err)
	}
}
