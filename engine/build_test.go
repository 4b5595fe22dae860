package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/executors/local"
)

// shRule is a test rule: one bash action writing out from srcs.
type shRule struct{}

func (shRule) Kind() string { return "sh" }
func (shRule) Attrs() []AttrSpec {
	return []AttrSpec{
		{Name: "srcs", Type: AttrLabelList},
		{Name: "cmd", Type: AttrString},
		{Name: "out", Type: AttrString},
	}
}
func (shRule) Analyze(ctx *Context) error {
	// An out ending in "/" is a directory.
	name := ctx.Attr("out").(string)
	out, err := ctx.DeclareFile(strings.TrimSuffix(name, "/"), strings.HasSuffix(name, "/"))
	if err != nil {
		return err
	}
	srcs := ctx.Files("srcs")
	var paths []string
	for _, f := range srcs {
		paths = append(paths, f.Path)
	}
	cmd := strings.NewReplacer("$SRCS", strings.Join(paths, " "), "$OUT", out.Path).Replace(ctx.Attr("cmd").(string))
	return ctx.AddAction(&Action{Mnemonic: "Sh", Args: []string{"/bin/bash", "-c", cmd},
		Env: map[string]string{"PATH": DefaultPath}, Inputs: srcs, Outputs: []*File{out}, Tools: []string{"/bin/bash"}})
}

// memLoader serves packages declared in Go.
type memLoader struct {
	root string
	pkgs map[string]*Package
}

func (m *memLoader) Root() string { return m.root }
func (m *memLoader) Package(p string) (*Package, error) {
	if pk, ok := m.pkgs[p]; ok {
		return pk, nil
	}
	return nil, fmt.Errorf("no package //%s", p)
}
func (m *memLoader) Expand(p Pattern) ([]Label, error) {
	var out []Label
	for name, pk := range m.pkgs {
		if p.MatchesPkg(name) {
			for _, t := range pk.Order {
				out = append(out, Label{name, t})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out, nil
}

type ws struct {
	t     *testing.T
	root  string
	cache string
	decl  map[string][3]any // name -> srcs, cmd, out
	order []string
	// local are the local executor's options: unsandboxed for tests whose
	// actions keep state on the host between runs (to behave differently
	// the second time), which the sandbox rightly forbids.
	local local.Options
}

func newWS(t *testing.T) *ws {
	return &ws{t: t, root: t.TempDir(), cache: t.TempDir(), decl: map[string][3]any{}}
}

func (w *ws) file(name, content string) {
	if err := os.WriteFile(filepath.Join(w.root, "p", name), []byte(content), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func (w *ws) sh(name string, srcs []string, cmd string) {
	if _, ok := w.decl[name]; !ok {
		w.order = append(w.order, name)
	}
	w.decl[name] = [3]any{srcs, cmd, name + ".out"}
}

// build analyses the declared targets afresh and builds them all.
func (w *ws) build(opts ...func(*Options)) (*Summary, error) {
	w.t.Helper()
	var sum *Summary
	err := w.withGraph(func(g *Graph, targets []*Target, o Options) error {
		for _, f := range opts {
			f(&o)
		}
		var err error
		sum, err = Build(context.Background(), g, targets, o)
		return err
	})
	return sum, err
}

// withGraph analyses the declared targets afresh and calls fn with them
// all and the options of a build.
func (w *ws) withGraph(fn func(g *Graph, targets []*Target, o Options) error) error {
	w.t.Helper()
	os.MkdirAll(filepath.Join(w.root, "p"), 0o755)
	pk := &Package{Name: "p", BuildFile: "p/BUILD", Targets: map[string]*Target{}}
	for _, n := range w.order {
		d := w.decl[n]
		var srcs []Label
		for _, s := range d[0].([]string) {
			srcs = append(srcs, Label{"p", s})
		}
		pk.Targets[n] = &Target{Label: Label{"p", n}, Rule: shRule{}, Pos: "p/BUILD:1:1",
			Attrs: map[string]any{"srcs": srcs, "cmd": d[1], "out": d[2]}}
		pk.Order = append(pk.Order, n)
	}
	l := &memLoader{root: w.root, pkgs: map[string]*Package{"p": pk}}
	labels, _ := l.Expand(Pattern{Recursive: true})
	g, err := Analyze(l, labels)
	if err != nil {
		return err
	}
	store, err := cas.Open(w.cache)
	if err != nil {
		w.t.Fatal(err)
	}
	// The layers as lego build stacks them.
	mem, err := cas.NewMemory(store)
	if err != nil {
		w.t.Fatal(err)
	}
	defer mem.Close()
	files, err := cas.OpenFileCache(filepath.Join(w.cache, "files"))
	if err != nil {
		w.t.Fatal(err)
	}
	var targets []*Target
	for _, lab := range labels {
		targets = append(targets, g.Targets[lab])
	}
	o := Options{Jobs: 4, Store: mem, Files: files, Executor: local.New(store, w.local),
		History: OpenHistory(filepath.Join(w.root, OutDir, ".lego"))}
	err = fn(g, targets, o)
	if serr := files.Save(); serr != nil {
		w.t.Fatal(serr)
	}
	return err
}

func (w *ws) ran(want ...string) {
	w.t.Helper()
	sum, err := w.build()
	if err != nil {
		w.t.Fatalf("build: %v", err)
	}
	var got []string
	for _, r := range sum.Ran {
		got = append(got, strings.Fields(r)[0])
	}
	if want == nil {
		want = []string{}
	}
	if got == nil {
		got = []string{}
	}
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		w.t.Fatalf("executed %v, want %v", got, want)
	}
	if sum.Cached+sum.Executed != sum.Total {
		w.t.Fatalf("summary %+v does not add up", sum)
	}
}

func (w *ws) out(name string) string {
	b, err := os.ReadFile(filepath.Join(w.root, OutDir, "p", name+".out"))
	if err != nil {
		w.t.Fatal(err)
	}
	return string(b)
}

// chain: a.txt -> upper -> count -> report, plus an independent side target.
func chain(t *testing.T) *ws {
	w := newWS(t)
	os.MkdirAll(filepath.Join(w.root, "p"), 0o755)
	w.file("a.txt", "hello\n")
	w.sh("upper", []string{"a.txt"}, "tr a-z A-Z < $SRCS > $OUT")
	w.sh("count", []string{"upper"}, "wc -c < $SRCS > $OUT")
	w.sh("report", []string{"count"}, "echo total $(cat $SRCS) > $OUT")
	w.sh("side", nil, "echo side > $OUT")
	return w
}

func TestIncrementalExactSets(t *testing.T) {
	w := chain(t)
	w.ran("//p:count", "//p:report", "//p:side", "//p:upper")
	if got := w.out("report"); got != "total 6\n" {
		t.Fatalf("report = %q", got)
	}
	w.ran() // null build

	// Changing one attribute reruns that target and what depends on it.
	w.sh("side", nil, "echo side2 > $OUT")
	w.ran("//p:side")

	// A source change reruns the chain.
	w.file("a.txt", "world!\n")
	w.ran("//p:count", "//p:report", "//p:upper")
	if got := w.out("report"); got != "total 7\n" {
		t.Fatalf("report = %q", got)
	}

	// Early cutoff: upper's output changes, count's output (a byte count)
	// does not, so report does not rerun.
	w.file("a.txt", "WORLD?\n")
	w.ran("//p:count", "//p:upper")

	// A changed command that yields identical bytes reruns nothing downstream.
	w.sh("upper", []string{"a.txt"}, "cat $SRCS | tr a-z A-Z > $OUT")
	w.ran("//p:upper")
}

func TestTouchRerunsNothing(t *testing.T) {
	w := chain(t)
	w.ran("//p:count", "//p:report", "//p:side", "//p:upper")
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(w.root, "p", "a.txt"), future, future); err != nil {
		t.Fatal(err)
	}
	w.ran()
}

// An output that is a copy rather than a link to its blob (the blob was
// past the filesystem's link limit) is kept when its bytes are right and
// replaced when they are not.
func TestMaterializeKeepsGoodCopies(t *testing.T) {
	w := chain(t)
	w.ran("//p:count", "//p:report", "//p:side", "//p:upper")
	out := filepath.Join(w.root, OutDir, "p", "side.out")
	copyOver := func(content string) os.FileInfo {
		t.Helper()
		os.Remove(out)
		if err := os.WriteFile(out, []byte(content), 0o444); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	good := copyOver("side\n")
	w.ran()
	if st, _ := os.Stat(out); !os.SameFile(good, st) {
		t.Error("a correct copy was replaced")
	}
	bad := copyOver("sIde\n")
	w.ran()
	if st, _ := os.Stat(out); os.SameFile(bad, st) || w.out("side") != "side\n" {
		t.Errorf("a wrong copy of the same size was kept: %q", w.out("side"))
	}
}

func TestExplainNamesChange(t *testing.T) {
	w := chain(t)
	w.ran("//p:count", "//p:report", "//p:side", "//p:upper")
	w.file("a.txt", "changed\n")
	w.sh("side", nil, "echo other > $OUT")
	w.ran("//p:count", "//p:report", "//p:side", "//p:upper")
	recs, err := LastBuild(filepath.Join(w.root, OutDir, ".lego"))
	if err != nil {
		t.Fatal(err)
	}
	why := map[string]string{}
	for _, r := range recs {
		why[r.Label] = strings.Join(r.Reasons, "; ")
	}
	for label, want := range map[string]string{
		"//p:upper":  "input changed: p/a.txt",
		"//p:count":  "input changed: lego-out/p/upper.out",
		"//p:report": "input changed: lego-out/p/count.out",
		"//p:side":   "attribute cmd changed",
	} {
		if !strings.Contains(why[label], want) {
			t.Errorf("%s reasons %q, want %q", label, why[label], want)
		}
	}
}

func TestFailureReportAndKeepGoing(t *testing.T) {
	w := newWS(t)
	w.sh("bad", nil, "for i in $(seq 1 80); do echo line$i >&2; done; exit 3")
	w.sh("after", []string{"bad"}, "cp $SRCS $OUT")
	w.sh("slow", nil, "sleep 0.3; echo ok > $OUT")
	sum, err := w.build(func(o *Options) { o.KeepGoing = true })
	if err == nil {
		t.Fatal("build succeeded")
	}
	if sum.Failed != 1 || sum.Executed != 1 || sum.Skipped != 1 {
		t.Fatalf("summary %+v: want 1 failed, 1 executed (slow), 1 not run", sum)
	}
	msg := sum.Errors[0].Error()
	for _, want := range []string{"//p:bad Sh", "exit code 3", "command: /bin/bash -c", "line80", "line31"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "line30\n") {
		t.Errorf("failure message holds more than the last 50 lines:\n%s", msg)
	}
	// The failed action left no cache entry: fixing it reruns it and its dependent.
	w.sh("bad", nil, "echo fixed > $OUT")
	w.ran("//p:after", "//p:bad")
}

func TestCycleAndUnknownLabel(t *testing.T) {
	w := newWS(t)
	w.sh("a", []string{"b"}, "true")
	w.sh("b", []string{"a"}, "true")
	if _, err := w.build(); err == nil || !strings.Contains(err.Error(), "dependency cycle: //p:a -> //p:b -> //p:a") {
		t.Fatalf("cycle error = %v", err)
	}
}

// flaky fails, once each, the actions whose command holds a word, with
// the error given for it, after running them (an OOM noticed after a
// normal exit, say).
type flaky struct {
	executors.Executor
	mu   sync.Mutex
	fail map[string]error
}

func (f *flaky) Execute(ctx context.Context, req *executors.Request) (*repb.ActionResult, error) {
	res, err := f.Executor.Execute(ctx, req)
	f.mu.Lock()
	defer f.mu.Unlock()
	for word, e := range f.fail {
		if strings.Contains(strings.Join(req.Command.Arguments, " "), word) {
			delete(f.fail, word)
			return res, e
		}
	}
	return res, err
}

type eventLog struct {
	mu     sync.Mutex
	events []*Event
}

func (l *eventLog) Event(e *Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

// Infrastructure failures are classified in the summary and the events,
// from an executor's InfraError or a process's exit code 75 with its
// stderr line, and they leave nothing cached: the next build reruns them.
func TestInfraFailuresAreClassifiedAndRerun(t *testing.T) {
	w := newWS(t)
	w.sh("oomed", nil, "echo big > $OUT")
	w.sh("after", []string{"oomed"}, "cp $SRCS $OUT")
	w.sh("endpoint", nil, "echo trying >&2; echo 'lego-infra-error: endpoint: model endpoint answered 503 on 6 tries' >&2; exit 75")
	w.sh("exit1", nil, "echo 'lego-infra-error: endpoint: says so' >&2; exit 1")           // not 75: its own failure
	w.sh("exit75", nil, "echo 'lego-infra-error: weather: bad' >&2; exit 75")              // no known class
	w.sh("slow", nil, "sleep 0.2; echo 'lego-infra-error: oom: fine' >&2; echo ok > $OUT") // exit 0: a result
	fl := &flaky{fail: map[string]error{"echo big": executors.Infra(executors.ClassOOM, errors.New("OOM-killed: the action exceeded its memory limit of 64 MiB"))}}
	log := &eventLog{}
	sum, err := w.build(func(o *Options) {
		o.KeepGoing = true
		fl.Executor = o.Executor
		o.Executor, o.Listener = fl, log
	})
	if err == nil {
		t.Fatal("build succeeded")
	}
	want := map[string]int{executors.ClassOOM: 1, executors.ClassEndpoint: 1, executors.ClassAction: 2}
	if sum.Failed != 4 || !reflect.DeepEqual(sum.FailedBy, want) || sum.Executed != 1 || sum.Skipped != 1 {
		t.Fatalf("summary %+v; want 4 failed %v, 1 executed, 1 not run", sum, want)
	}
	var line strings.Builder
	sum.Report(&line, 6, time.Second)
	if !strings.Contains(line.String(), "4 failed (1 endpoint, 1 oom, 2 action), 1 not run") {
		t.Errorf("summary line %q", line.String())
	}
	classes := map[string]string{}
	for _, e := range log.events {
		if e.Type == EvActionFailed {
			classes[strings.Fields(e.Action)[0]] = e.FailureClass
		}
	}
	if want := map[string]string{"//p:oomed": "oom", "//p:endpoint": "endpoint", "//p:exit1": "action", "//p:exit75": "action"}; !reflect.DeepEqual(classes, want) {
		t.Errorf("failure classes of the events %v, want %v", classes, want)
	}
	for _, e := range sum.Errors {
		if strings.HasPrefix(e.Error(), "//p:endpoint ") && !strings.Contains(e.Error(), "failed (endpoint: model endpoint answered 503 on 6 tries)") {
			t.Errorf("endpoint failure reads %q", e)
		}
	}

	// The OOM'd action (which exited 0) was not cached: it runs again,
	// and its dependent after it; the good one is a cache hit.
	for _, n := range []string{"endpoint", "exit1", "exit75"} {
		delete(w.decl, n)
		w.order = slices.DeleteFunc(w.order, func(s string) bool { return s == n })
	}
	w.ran("//p:after", "//p:oomed")
}
