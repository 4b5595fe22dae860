package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/internal/testenv"
)

var hostPath = []*repb.Command_EnvironmentVariable{{Name: "PATH", Value: "/usr/bin:/bin"}}

func newStore(t testing.TB) *cas.Disk { return testenv.Store(t) }

// unsandboxed runs actions as plain host processes (--sandbox=none, and
// the containerd runner's case): the executor's own checks are all that
// stands between an action and the store.
var unsandboxed = Options{Unsandboxed: true}

// file is an input file for inputRoot.
type file = testenv.File

// inputRoot stores files (keyed by slash path) and their Directory messages
// in the store and returns the root digest and the directories by key.
func inputRoot(t testing.TB, s *cas.Disk, files map[string]file) (*repb.Digest, map[string]*repb.Directory) {
	t.Helper()
	root, dirs, err := testenv.InputRoot(s, files)
	if err != nil {
		t.Fatal(err)
	}
	return root, dirs
}

func request(t testing.TB, s *cas.Disk, root *repb.Digest, cmd *repb.Command) *executors.Request {
	t.Helper()
	cd, err := s.PutProto(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return &executors.Request{Action: &repb.Action{CommandDigest: cd, InputRootDigest: root}, Command: cmd}
}

func shell(script string, outputs ...string) *repb.Command {
	return &repb.Command{
		Arguments:            []string{"/bin/sh", "-c", script},
		EnvironmentVariables: hostPath,
		OutputPaths:          outputs,
	}
}

func get(t testing.TB, s *cas.Disk, d *repb.Digest) string {
	t.Helper()
	b, err := s.Get(d)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mustRun executes req and fails the test on an error or a non-zero exit.
func mustRun(t testing.TB, e *Executor, req *executors.Request) *repb.ActionResult {
	t.Helper()
	res, err := e.Execute(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("exit %d, stderr: %s", res.ExitCode, get(t, e.store, res.StderrDigest))
	}
	return res
}

func TestSeesExactlyItsInputs(t *testing.T) {
	s := newStore(t)
	root, _ := inputRoot(t, s, map[string]file{
		"a.txt":          {Content: "alpha\n"},
		"sub/tool":       {Content: "#!/bin/sh\necho tool ran\n", Exec: true},
		"sub/deeper/c":   {Content: "gamma"},
		"sub/deeper/dup": {Content: "alpha\n"}, // same blob as a.txt
	})
	if _, err := s.Put([]byte("in the store but not an input")); err != nil {
		t.Fatal(err)
	}
	res := mustRun(t, New(s, Options{}), request(t, s, root, shell(
		`find . | sort; cat a.txt sub/deeper/dup; sub/tool; test -x sub/tool && test ! -x a.txt && echo modes ok`)))
	want := ".\n./a.txt\n./sub\n./sub/deeper\n./sub/deeper/c\n./sub/deeper/dup\n./sub/tool\n" +
		"alpha\nalpha\ntool ran\nmodes ok\n"
	if got := get(t, s, res.StdoutDigest); got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
}

func TestEmptyInputRoot(t *testing.T) {
	s := newStore(t)
	for _, root := range []*repb.Digest{nil, cas.DigestOf(nil)} {
		res := mustRun(t, New(s, Options{}), request(t, s, root, shell(`find .`)))
		if got := get(t, s, res.StdoutDigest); got != ".\n" {
			t.Errorf("root %v: exec root holds %q, want only .", root, got)
		}
	}
}

func TestDirsFromRequestNeedNotBeStored(t *testing.T) {
	s := newStore(t)
	fd, err := s.Put([]byte("from request"))
	if err != nil {
		t.Fatal(err)
	}
	// Encoded but never stored: only req.Dirs knows these directories.
	sub := &repb.Directory{Files: []*repb.FileNode{{Name: "f", Digest: fd}}}
	subD := digestProto(t, sub)
	top := &repb.Directory{
		Directories: []*repb.DirectoryNode{{Name: "d", Digest: subD}},
		Symlinks:    []*repb.SymlinkNode{{Name: "l", Target: "d/f"}},
	}
	topD := digestProto(t, top)
	req := request(t, s, topD, shell(`cat d/f; echo; readlink l; cat l`))
	req.Dirs = map[string]*repb.Directory{cas.Key(subD): sub, cas.Key(topD): top}
	res := mustRun(t, New(s, Options{}), req)
	if got, want := get(t, s, res.StdoutDigest), "from request\nd/f\nfrom request"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
}

func digestProto(t testing.TB, m proto.Message) *repb.Digest {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return cas.DigestOf(b)
}

func TestEnvironmentIsExactlyTheCommands(t *testing.T) {
	t.Setenv("LEGO_HOST_SECRET", "leak")
	s := newStore(t)
	cmd := &repb.Command{
		Arguments: []string{"/usr/bin/env"},
		EnvironmentVariables: []*repb.Command_EnvironmentVariable{
			{Name: "FOO", Value: "bar"}, {Name: "OVERRIDDEN", Value: "command"},
		},
	}
	e := New(s, Options{ExtraEnv: map[string]string{"EXTRA": "1", "OVERRIDDEN": "extra"}})
	res := mustRun(t, e, request(t, s, nil, cmd))
	lines := strings.Split(strings.TrimSpace(get(t, s, res.StdoutDigest)), "\n")
	sort.Strings(lines)
	if len(lines) != 4 || lines[0] != "EXTRA=1" || lines[1] != "FOO=bar" || lines[2] != "OVERRIDDEN=extra" ||
		!strings.HasPrefix(lines[3], "TMPDIR=") {
		t.Fatalf("environment %q, want EXTRA, FOO, OVERRIDDEN=extra and TMPDIR only", lines)
	}
}

func TestTmpdirIsPrivateAndOutsideTheExecRoot(t *testing.T) {
	s := newStore(t)
	res := mustRun(t, New(s, Options{}), request(t, s, nil, shell(
		`pwd; echo "$TMPDIR"; test -d "$TMPDIR" && test -w "$TMPDIR" && echo scratch > "$TMPDIR/x"`)))
	lines := strings.Split(strings.TrimSpace(get(t, s, res.StdoutDigest)), "\n")
	if len(lines) != 2 {
		t.Fatalf("stdout %q", lines)
	}
	execRoot, tmp := lines[0], lines[1]
	if strings.HasPrefix(tmp, execRoot+"/") || tmp == execRoot {
		t.Errorf("TMPDIR %s inside exec root %s", tmp, execRoot)
	}
	for _, p := range []string{execRoot, tmp} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after the action: %v", p, err)
		}
	}
}

func TestOutputFilesAndDirectories(t *testing.T) {
	s := newStore(t)
	root, _ := inputRoot(t, s, map[string]file{"src/in.txt": {Content: "input"}})
	cmd := shell(`
		set -e
		printf 'binary' > bin/tool && chmod 755 bin/tool
		printf 'data' > data.txt && chmod 644 data.txt
		mkdir -p gen/sub/empty
		printf 'A' > gen/a
		printf 'B' > gen/sub/b && chmod +x gen/sub/b
		printf 'A' > gen/sub/a2
		ln -s a gen/link
		cp src/in.txt src/copy.txt
	`, "bin/tool", "data.txt", "gen", "src/copy.txt")
	res := mustRun(t, New(s, Options{}), request(t, s, root, cmd))

	type of struct {
		content string
		exec    bool
	}
	wantFiles := map[string]of{"bin/tool": {"binary", true}, "data.txt": {"data", false}, "src/copy.txt": {"input", false}}
	if len(res.OutputFiles) != len(wantFiles) {
		t.Fatalf("output files %v", res.OutputFiles)
	}
	for i, f := range res.OutputFiles {
		if i > 0 && res.OutputFiles[i-1].Path >= f.Path {
			t.Errorf("output files not sorted: %v", res.OutputFiles)
		}
		w, ok := wantFiles[f.Path]
		if !ok {
			t.Errorf("unexpected output %s", f.Path)
			continue
		}
		if !proto.Equal(f.Digest, cas.DigestOf([]byte(w.content))) || get(t, s, f.Digest) != w.content {
			t.Errorf("%s: digest %v, want content %q", f.Path, f.Digest, w.content)
		}
		if f.IsExecutable != w.exec {
			t.Errorf("%s: executable %v, want %v", f.Path, f.IsExecutable, w.exec)
		}
	}

	if len(res.OutputDirectories) != 1 || res.OutputDirectories[0].Path != "gen" {
		t.Fatalf("output dirs %v", res.OutputDirectories)
	}
	od := res.OutputDirectories[0]
	tree := &repb.Tree{}
	if err := s.GetProto(od.TreeDigest, tree); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(od.RootDirectoryDigest, digestProto(t, tree.Root)) {
		t.Errorf("root directory digest does not match the tree's root")
	}
	// Flatten the tree back into path -> description, the round trip a
	// consumer of the output makes.
	children := map[string]*repb.Directory{}
	for _, c := range tree.Children {
		children[cas.Key(digestProto(t, c))] = c
		// Every directory is also stored on its own for later input roots.
		if !s.Has(digestProto(t, c)) {
			t.Errorf("child directory not stored")
		}
	}
	got := map[string]string{}
	var flatten func(prefix string, d *repb.Directory)
	flatten = func(prefix string, d *repb.Directory) {
		for _, f := range d.Files {
			got[prefix+f.Name] = fmt.Sprintf("file %s exec=%v", get(t, s, f.Digest), f.IsExecutable)
		}
		for _, l := range d.Symlinks {
			got[prefix+l.Name] = "symlink " + l.Target
		}
		for _, sub := range d.Directories {
			c, ok := children[cas.Key(sub.Digest)]
			if !ok {
				t.Fatalf("tree lacks child %s", sub.Name)
			}
			got[prefix+sub.Name] = "dir"
			flatten(prefix+sub.Name+"/", c)
		}
	}
	flatten("", tree.Root)
	want := map[string]string{
		"a":         "file A exec=false",
		"link":      "symlink a",
		"sub":       "dir",
		"sub/a2":    "file A exec=false",
		"sub/b":     "file B exec=true",
		"sub/empty": "dir",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tree round trip:\n got %v\nwant %v", got, want)
	}
}

func TestDeprecatedOutputFieldsAndWorkingDirectory(t *testing.T) {
	s := newStore(t)
	root, _ := inputRoot(t, s, map[string]file{"pkg/in": {Content: "x"}})
	cmd := &repb.Command{
		Arguments:         []string{"/bin/sh", "-c", `cat in > out/f && mkdir d && : > d/g`},
		WorkingDirectory:  "pkg",
		OutputFiles:       []string{"out/f"},
		OutputDirectories: []string{"d"},
	}
	res := mustRun(t, New(s, Options{}), request(t, s, root, cmd))
	if len(res.OutputFiles) != 1 || res.OutputFiles[0].Path != "out/f" || get(t, s, res.OutputFiles[0].Digest) != "x" {
		t.Errorf("output files %v", res.OutputFiles)
	}
	if len(res.OutputDirectories) != 1 || res.OutputDirectories[0].Path != "d" {
		t.Errorf("output dirs %v", res.OutputDirectories)
	}

	// The deprecated lists say which type each path must have.
	cmd.Arguments = []string{"/bin/sh", "-c", `mkdir out/f && : > d`}
	_, err := New(s, Options{}).Execute(context.Background(), request(t, s, root, cmd))
	if err == nil || !strings.Contains(err.Error(), "out/f (a directory, declared a file)") ||
		!strings.Contains(err.Error(), "d (a file, declared a directory)") {
		t.Errorf("wrong-type outputs: err %v", err)
	}
}

func TestSymlinkOutputsAreResolvedInsideTheRoot(t *testing.T) {
	s := newStore(t)
	root, _ := inputRoot(t, s, map[string]file{"in": {Content: "input"}})
	res := mustRun(t, New(s, Options{}), request(t, s, root,
		shell(`echo real > real && ln -s real alias && ln -s in in_alias`, "alias", "in_alias", "real")))
	got := map[string]string{}
	for _, f := range res.OutputFiles {
		got[f.Path] = get(t, s, f.Digest)
	}
	if got["alias"] != "real\n" || got["real"] != "real\n" || got["in_alias"] != "input" {
		t.Errorf("outputs %v", got)
	}

	_, err := New(s, Options{}).Execute(context.Background(), request(t, s, nil,
		shell(`ln -s /etc/hostname out`, "out")))
	if err == nil || !strings.Contains(err.Error(), "outside the exec root") {
		t.Errorf("symlink out of the root: err %v", err)
	}
}

func TestOutputHardlinkedToAnInputLeavesTheBlobAlone(t *testing.T) {
	s := newStore(t)
	root, _ := inputRoot(t, s, map[string]file{"tool": {Content: "#!/bin/sh\necho ok\n", Exec: true}})
	res := mustRun(t, New(s, unsandboxed), request(t, s, root, shell(
		`ln tool out && mkdir d && ln tool d/t`, "out", "d")))
	if len(res.OutputFiles) != 1 || get(t, s, res.OutputFiles[0].Digest) != "#!/bin/sh\necho ok\n" {
		t.Fatalf("outputs %v", res.OutputFiles)
	}
	// The chmod went through the shared inode: that is a modified input
	// and is restored, so the store still hands out an executable tool.
	_, err := New(s, unsandboxed).Execute(context.Background(), request(t, s, root, shell(`chmod 644 tool`)))
	if err == nil || !strings.Contains(err.Error(), "tool (mode)") {
		t.Errorf("chmod of an input: err %v", err)
	}
	res = mustRun(t, New(s, unsandboxed), request(t, s, root, shell(`./tool`)))
	if got := get(t, s, res.StdoutDigest); got != "ok\n" {
		t.Errorf("tool no longer runs: %q", got)
	}
}

func TestNonZeroExitIsAResult(t *testing.T) {
	s := newStore(t)
	res, err := New(s, Options{}).Execute(context.Background(), request(t, s, nil,
		shell(`echo to stdout; for i in 1 2 3 4; do echo "line $i" >&2; done; exit 3`, "never/made")))
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 3 {
		t.Errorf("exit code %d, want 3", res.ExitCode)
	}
	if got := get(t, s, res.StdoutDigest); got != "to stdout\n" {
		t.Errorf("stdout %q", got)
	}
	if got := get(t, s, res.StderrDigest); got != "line 1\nline 2\nline 3\nline 4\n" {
		t.Errorf("stderr %q", got)
	}
	if tail, err := executors.Tail(s, res.StderrDigest, 2); err != nil || tail != "line 3\nline 4" {
		t.Errorf("Tail = %q, %v", tail, err)
	}
	if len(res.OutputFiles)+len(res.OutputDirectories) != 0 {
		t.Errorf("outputs collected for a failed action")
	}
	if md := res.ExecutionMetadata; md.Worker != "local" || md.WorkerStartTimestamp == nil ||
		md.WorkerCompletedTimestamp.AsTime().Before(md.WorkerStartTimestamp.AsTime()) {
		t.Errorf("metadata %v", md)
	}
}

func TestKilledBySignalExitCode(t *testing.T) {
	s := newStore(t)
	res, err := New(s, Options{}).Execute(context.Background(), request(t, s, nil, shell(`kill -TERM $$`)))
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 128+15 {
		t.Errorf("exit code %d, want 143", res.ExitCode)
	}
}

func TestMissingDeclaredOutput(t *testing.T) {
	s := newStore(t)
	res, err := New(s, Options{}).Execute(context.Background(), request(t, s, nil,
		shell(`echo making y >&2; : > y`, "x", "y", "z/w")))
	if err == nil || !strings.Contains(err.Error(), "missing declared output(s): x, z/w") {
		t.Fatalf("err %v", err)
	}
	// The logs still come back for the failure report.
	if res == nil || get(t, s, res.StderrDigest) != "making y\n" {
		t.Errorf("result with the error: %v", res)
	}
}

func TestUndeclaredOutputs(t *testing.T) {
	s := newStore(t)
	root, _ := inputRoot(t, s, map[string]file{"in/f": {Content: "f"}})
	_, err := New(s, unsandboxed).Execute(context.Background(), request(t, s, root,
		shell(`: > stray; : > in/new; mkdir -p newdir/deep; : > newdir/deep/x; echo unique-ok > out/ok; : > out/extra`, "out/ok")))
	want := "undeclared output(s): in/new, newdir, out/extra, stray"
	if err == nil || err.Error() != want {
		t.Fatalf("err %v, want %q", err, want)
	}
	if s.Has(cas.DigestOf([]byte("unique-ok\n"))) {
		t.Errorf("outputs of a rule-breaking action were stored")
	}
}

func TestLargeLogs(t *testing.T) {
	s := newStore(t)
	const n = 3 << 20 // past the in-memory limit
	res := mustRun(t, New(s, Options{}), request(t, s, nil, shell(fmt.Sprintf(`head -c %d /dev/zero; head -c 5 /dev/zero >&2`, n))))
	if !proto.Equal(res.StdoutDigest, cas.DigestOf(make([]byte, n))) || !proto.Equal(res.StderrDigest, cas.DigestOf(make([]byte, 5))) {
		t.Errorf("log digests %v %v", res.StdoutDigest, res.StderrDigest)
	}
	if !s.Has(res.StdoutDigest) {
		t.Errorf("large stdout not stored")
	}
}

func TestModifiedInputIsAnErrorAndNeverServed(t *testing.T) {
	for _, tc := range []struct {
		name, script string
	}{
		// Writing through the hardlink corrupts the stored file itself.
		{"in place", `chmod u+w victim 2>/dev/null; printf evil > victim`},
		{"in place, same size", `chmod u+w victim 2>/dev/null; printf ORIGINAL > victim`},
		{"in place then deleted", `chmod u+w victim 2>/dev/null; printf ORIGINAL > victim; rm victim`},
		// Replacing the path leaves the blob intact, but is still a change.
		{"replaced", `rm -f victim; printf ORIGINAL > victim`},
	} {
		for _, exec := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/exec=%v", tc.name, exec), func(t *testing.T) {
				s := newStore(t)
				root, _ := inputRoot(t, s, map[string]file{"victim": {Content: "original", Exec: exec}, "other": {Content: "o"}})
				d := cas.DigestOf([]byte("original"))
				res, err := New(s, unsandboxed).Execute(context.Background(), request(t, s, root, shell(tc.script)))
				if err == nil || !strings.Contains(err.Error(), "modified input(s): victim") {
					t.Fatalf("err %v, res %v", err, res)
				}
				// Whatever way the store is asked, it never hands out the
				// corrupt bytes: it has the original or nothing.
				if b, err := s.Get(d); err == nil && string(b) != "original" {
					t.Errorf("Get served %q", b)
				}
				for _, x := range []bool{false, true} {
					p := filepath.Join(t.TempDir(), "linked")
					if err := s.Link(d, x, p); err == nil {
						if b, _ := os.ReadFile(p); string(b) != "original" {
							t.Errorf("Link(exec=%v) served %q", x, b)
						}
					}
				}
				// A later action gets the original or fails to start.
				res, err = New(s, unsandboxed).Execute(context.Background(), request(t, s, root, shell(`cat victim`)))
				if err == nil && get(t, s, res.StdoutDigest) != "original" {
					t.Errorf("next action read %q", get(t, s, res.StdoutDigest))
				}
			})
		}
	}
}

func TestDeletingOrTouchingAnInputIsAllowed(t *testing.T) {
	s := newStore(t)
	root, _ := inputRoot(t, s, map[string]file{"a": {Content: "a"}, "b": {Content: "b"}})
	mustRun(t, New(s, unsandboxed), request(t, s, root, shell(`rm a; touch -d '2001-01-01' b`)))
	if get(t, s, cas.DigestOf([]byte("a"))) != "a" || get(t, s, cas.DigestOf([]byte("b"))) != "b" {
		t.Errorf("blobs changed")
	}
}

// gone reports whether pid has exited (a zombie counts: its parent, which
// may not be us, just has not reaped it).
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) == 0 || f[0] == "Z" || f[0] == "X"
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if gone(pid) {
			return
		}
	}
	t.Errorf("process %d still running", pid)
}

// childScript starts a background sleep, records its pid outside the
// sandbox and then waits or exits.
func childPid(t *testing.T, pidFile string) int {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestTimeoutKillsTheProcessGroup(t *testing.T) {
	s := newStore(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	req := request(t, s, nil, shell(`pwd > "$PIDFILE.root"; sleep 100 & echo $! > "$PIDFILE"; wait`))
	req.Command.EnvironmentVariables = append(req.Command.EnvironmentVariables,
		&repb.Command_EnvironmentVariable{Name: "PIDFILE", Value: pidFile})
	req.Action.Timeout = durationpb.New(300 * time.Millisecond)
	start := time.Now()
	_, err := New(s, unsandboxed).Execute(context.Background(), req)
	if !errors.Is(err, executors.ErrTimeout) || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
	waitGone(t, childPid(t, pidFile))
	root, err := os.ReadFile(pidFile + ".root")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(strings.TrimSpace(string(root))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("exec root left behind after a timeout: %v", err)
	}
}

func TestBackgroundChildrenDieWithTheAction(t *testing.T) {
	s := newStore(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	req := request(t, s, nil, shell(`sleep 100 & echo $! > "$PIDFILE"`))
	req.Command.EnvironmentVariables = append(req.Command.EnvironmentVariables,
		&repb.Command_EnvironmentVariable{Name: "PIDFILE", Value: pidFile})
	mustRun(t, New(s, unsandboxed), req)
	waitGone(t, childPid(t, pidFile))
}

func TestCancelKillsPromptly(t *testing.T) {
	s := newStore(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	req := request(t, s, nil, shell(`sleep 100 & echo $! > "$PIDFILE"; wait`))
	req.Command.EnvironmentVariables = append(req.Command.EnvironmentVariables,
		&repb.Command_EnvironmentVariable{Name: "PIDFILE", Value: pidFile})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the child is running.
		for {
			if _, err := os.Stat(pidFile); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	res, err := New(s, unsandboxed).Execute(ctx, req)
	if !errors.Is(err, context.Canceled) || res != nil {
		t.Fatalf("res %v, err %v", res, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
	waitGone(t, childPid(t, pidFile))

	if _, err := New(s, unsandboxed).Execute(ctx, request(t, s, nil, shell(`true`))); !errors.Is(err, context.Canceled) {
		t.Errorf("already-cancelled context: err %v", err)
	}
}

func TestExecRootRemovedEvenWhenReadOnly(t *testing.T) {
	s := newStore(t)
	root, _ := inputRoot(t, s, map[string]file{"in": {Content: "in"}})
	res, err := New(s, unsandboxed).Execute(context.Background(), request(t, s, root,
		shell(`pwd; mkdir -p ro/x && : > ro/x/f && chmod 555 ro/x ro && chmod 555 .`, "missing")))
	if err == nil {
		t.Fatal("expected an error")
	}
	execRoot := strings.TrimSpace(get(t, s, res.StdoutDigest))
	if _, err := os.Lstat(execRoot); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("exec root %s left behind: %v", execRoot, err)
	}
	// The input blob survives the cleanup.
	if get(t, s, cas.DigestOf([]byte("in"))) != "in" {
		t.Errorf("input blob damaged")
	}
}

func TestArgv0ResolvedInTheActionsPath(t *testing.T) {
	s := newStore(t)
	root, _ := inputRoot(t, s, map[string]file{"bin/hello": {Content: "#!/bin/sh\necho hello from input\n", Exec: true}})
	cmd := &repb.Command{
		Arguments:            []string{"hello"},
		EnvironmentVariables: []*repb.Command_EnvironmentVariable{{Name: "PATH", Value: "bin:/usr/bin:/bin"}},
	}
	res := mustRun(t, New(s, Options{}), request(t, s, root, cmd))
	if got := get(t, s, res.StdoutDigest); got != "hello from input\n" {
		t.Errorf("stdout %q", got)
	}
	// A relative path with a slash is relative to the working directory.
	cmd = &repb.Command{Arguments: []string{"bin/hello"}}
	if res = mustRun(t, New(s, Options{}), request(t, s, root, cmd)); get(t, s, res.StdoutDigest) != "hello from input\n" {
		t.Errorf("relative argv[0] failed")
	}
	// No PATH: the host's is not used.
	cmd = &repb.Command{Arguments: []string{"sh", "-c", "true"}}
	if _, err := New(s, Options{}).Execute(context.Background(), request(t, s, root, cmd)); err == nil ||
		!strings.Contains(err.Error(), "no PATH") {
		t.Errorf("err %v", err)
	}
}

func TestBadPathsRejected(t *testing.T) {
	s := newStore(t)
	root, _ := inputRoot(t, s, map[string]file{"in": {Content: "in"}})
	for _, out := range []string{"../escape", "/abs", "in", "in/under"} {
		if _, err := New(s, Options{}).Execute(context.Background(), request(t, s, root, shell(`true`, out))); err == nil {
			t.Errorf("output %q accepted", out)
		}
	}
	if _, err := New(s, Options{}).Execute(context.Background(), request(t, s, root, shell(`true`, "a", "a/b"))); err == nil {
		t.Errorf("nested outputs accepted")
	}
	bad := &repb.Directory{Files: []*repb.FileNode{{Name: "../x", Digest: cas.DigestOf([]byte("in"))}}}
	bd, err := s.PutProto(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(s, Options{}).Execute(context.Background(), request(t, s, bd, shell(`true`))); err == nil {
		t.Errorf("input named ../x accepted")
	}
}

func TestConcurrentActionsSharingInputs(t *testing.T) {
	s := newStore(t)
	root, dirs := inputRoot(t, s, map[string]file{"shared": {Content: "same blob"}})
	e := New(s, Options{})
	errs := make(chan error, 16)
	for i := range 16 {
		req := request(t, s, root, shell(fmt.Sprintf(`cat shared > out; echo %d >> out`, i), "out"))
		req.Dirs = dirs
		go func() {
			res, err := e.Execute(context.Background(), req)
			if err == nil {
				if b, gerr := s.Get(res.OutputFiles[0].Digest); gerr != nil || string(b) != fmt.Sprintf("same blob%d\n", i) {
					err = fmt.Errorf("output %q, %v", b, gerr)
				}
			}
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// BenchmarkExecuteTrue is an action's fixed cost, in the sandbox and
// (the baseline) as a plain host process.
func BenchmarkExecuteTrue(b *testing.B) {
	for _, mode := range []struct {
		name string
		opts Options
	}{{"sandbox", Options{}}, {"unsandboxed", unsandboxed}} {
		b.Run(mode.name, func(b *testing.B) {
			s := newStore(b)
			root, dirs := inputRoot(b, s, map[string]file{"input.txt": {Content: "input"}})
			req := request(b, s, root, &repb.Command{Arguments: []string{"/bin/true"}})
			req.Dirs = dirs
			e := New(s, mode.opts)
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				res, err := e.Execute(ctx, req)
				if err != nil || res.ExitCode != 0 {
					b.Fatal(res, err)
				}
			}
		})
	}
}

// BenchmarkExecuteTrueParallel is the throughput of a build running
// GOMAXPROCS trivial actions at a time.
func BenchmarkExecuteTrueParallel(b *testing.B) {
	s := newStore(b)
	root, dirs := inputRoot(b, s, map[string]file{"input.txt": {Content: "input"}})
	req := request(b, s, root, &repb.Command{Arguments: []string{"/bin/true"}})
	req.Dirs = dirs
	e := New(s, Options{})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := e.Execute(context.Background(), req)
			if err != nil || res.ExitCode != 0 {
				b.Error(res, err)
				return
			}
		}
	})
}
