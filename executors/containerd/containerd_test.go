package containerd

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/snapshots"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/internal/testenv"
	"github.com/legobuild/lego/rules/oci/layout"
)

var (
	addr  string           // containerd socket
	image layout.Result    // bookworm minbase + python3
	store *cas.Disk        // holds image's blobs
	exe   *Executor        // shared by the tests, as by a build
	ctx   context.Context  // namespaced
	setup = errors.New("") // set by TestMain
)

const testNamespace = "lego-executor-test"

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	var stop func()
	var err error
	addr, stop, err = testenv.Containerd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "containerd:", err)
		return 1
	}
	defer stop()
	dir, err := os.MkdirTemp("", "lego-ctrd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if store, err = cas.Open(filepath.Join(dir, "cas")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if image, err = testenv.DebianImage(store, "python3"); err != nil {
		fmt.Fprintln(os.Stderr, "debian image:", err)
		return 1
	}
	// A namespace of its own: the CLI tests may use the same containerd
	// at the same time, in namespace lego.
	ctx = namespaces.WithNamespace(context.Background(), testNamespace)
	if exe, err = New(ctx, store, Options{Address: addr, Namespace: testNamespace}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer exe.Close()
	return m.Run()
}

// action is a python3 action in the test image.
type action struct {
	script  string
	inputs  map[string]testenv.File
	outputs []string
	props   map[string]string
	limits  executors.Limits
	timeout time.Duration
}

func (a action) request(t testing.TB) *executors.Request {
	t.Helper()
	root, dirs, err := testenv.InputRoot(store, a.inputs)
	if err != nil {
		t.Fatal(err)
	}
	props := []*repb.Platform_Property{
		{Name: executors.PropImage, Value: image.Digest},
		{Name: executors.PropImageSize, Value: strconv.FormatInt(image.Size, 10)},
	}
	for k, v := range a.props {
		props = append(props, &repb.Platform_Property{Name: k, Value: v})
	}
	cmd := &repb.Command{
		Arguments:            []string{"python3", "-c", a.script},
		EnvironmentVariables: []*repb.Command_EnvironmentVariable{{Name: "PATH", Value: "/usr/bin:/bin"}},
		OutputPaths:          a.outputs,
		Platform:             &repb.Platform{Properties: props},
	}
	cd, err := store.PutProto(cmd)
	if err != nil {
		t.Fatal(err)
	}
	act := &repb.Action{CommandDigest: cd, InputRootDigest: root, Platform: cmd.Platform}
	if a.timeout > 0 {
		act.Timeout = durationpb.New(a.timeout)
	}
	return &executors.Request{Action: act, Command: cmd, Dirs: dirs, Limits: a.limits}
}

func (a action) run(t testing.TB) (*repb.ActionResult, error) {
	t.Helper()
	return exe.Execute(context.Background(), a.request(t))
}

func output(t *testing.T, res *repb.ActionResult, path string) string {
	t.Helper()
	for _, f := range res.OutputFiles {
		if f.Path == path {
			b, err := store.Get(f.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
	t.Fatalf("no output %s in %v", path, res.OutputFiles)
	return ""
}

func stderr(res *repb.ActionResult) string {
	s, _ := executors.Tail(store, res.GetStderrDigest(), 20)
	return s
}

// noLeftovers checks that no container, task or snapshot of lego remains.
func noLeftovers(t *testing.T) {
	t.Helper()
	cs, err := exe.Client().Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Errorf("%d containers left", len(cs))
	}
	tasks, err := exe.Client().TaskService().List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks.Tasks) != 0 {
		t.Errorf("%d tasks left", len(tasks.Tasks))
	}
	n := 0
	err = exe.Client().SnapshotService(Snapshotter).Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if strings.HasPrefix(info.Name, "lego-") {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d action snapshots left", n)
	}
}

func TestPythonWritesDeclaredOutput(t *testing.T) {
	a := action{
		script: `import sys
data = open("p/in.txt").read()
open("lego-out/p/out.txt", "w").write(data.upper() + sys.version.split()[0])`,
		inputs:  map[string]testenv.File{"p/in.txt": {Content: "hello "}},
		outputs: []string{"lego-out/p/out.txt"},
	}
	res, err := a.run(t)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("exit %d: %s", res.ExitCode, stderr(res))
	}
	if got := output(t, res, "lego-out/p/out.txt"); !strings.HasPrefix(got, "HELLO 3.") {
		t.Errorf("output = %q", got)
	}
	if w := res.ExecutionMetadata.GetWorker(); w != "containerd" {
		t.Errorf("worker = %q", w)
	}
	noLeftovers(t)
}

func TestInputsAreReadOnly(t *testing.T) {
	a := action{
		script:  `open("p/in.txt", "w").write("changed")`,
		inputs:  map[string]testenv.File{"p/in.txt": {Content: "original"}},
		outputs: []string{"lego-out/p/out.txt"},
	}
	res, err := a.run(t)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode == 0 || !strings.Contains(stderr(res), "Read-only file system") {
		t.Errorf("writing an input: exit %d, stderr %q", res.ExitCode, stderr(res))
	}
	noLeftovers(t)
}

func TestUndeclaredAndMissingOutputs(t *testing.T) {
	a := action{
		script:  `open("lego-out/p/other.txt", "w").write("x")`,
		outputs: []string{"lego-out/p/out.txt"},
	}
	_, err := a.run(t)
	if err == nil || !strings.Contains(err.Error(), "lego-out/p/other.txt") {
		t.Errorf("undeclared output: %v", err)
	}
	noLeftovers(t)
}

func TestNetworkOffUnlessAsked(t *testing.T) {
	port := testenv.Replier(t, "pong")
	script := fmt.Sprintf(`import socket
s = socket.create_connection(("127.0.0.1", %d), timeout=3)
open("lego-out/reply", "w").write(s.recv(4).decode())`, port)

	off := action{script: script, outputs: []string{"lego-out/reply"}}
	res, err := off.run(t)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode == 0 {
		t.Error("the action reached the host's network without network = True")
	}
	on := off
	on.props = map[string]string{executors.PropNetwork: "true"}
	res, err = on.run(t)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("with network: exit %d: %s", res.ExitCode, stderr(res))
	}
	if got := output(t, res, "lego-out/reply"); got != "pong" {
		t.Errorf("reply = %q", got)
	}
	noLeftovers(t)
}

func TestMemoryHogIsOOMKilled(t *testing.T) {
	a := action{
		script:  `x = bytearray(512 << 20); open("lego-out/o", "w").write(str(len(x)))`,
		outputs: []string{"lego-out/o"},
		limits:  executors.Limits{Memory: 64 << 20},
	}
	_, err := a.run(t)
	if err == nil || !strings.Contains(err.Error(), "OOM-killed") || !strings.Contains(err.Error(), "64 MiB") {
		t.Errorf("memory hog: %v", err)
	}
	if c := executors.ClassOf(err); c != executors.ClassOOM {
		t.Errorf("memory hog: failure class %q, want oom", c)
	}
	noLeftovers(t)
}

// A container that cannot start is the runtime's failure, an error (never
// a result to cache) that says so.
func TestContainerThatCannotStartIsRuntimes(t *testing.T) {
	req := action{outputs: []string{"lego-out/o"}}.request(t)
	req.Command.Arguments = []string{"/no/such/program"}
	res, err := exe.Execute(context.Background(), req)
	if err == nil || res != nil || executors.ClassOf(err) != executors.ClassRuntime || !strings.Contains(err.Error(), "/no/such/program") {
		t.Errorf("result %v, error %v (class %s); want the runtime's failure", res, err, executors.ClassOf(err))
	}
	noLeftovers(t)
}

func TestTimeoutKillsContainer(t *testing.T) {
	a := action{script: `import time; time.sleep(60)`, outputs: []string{"lego-out/o"}, timeout: time.Second}
	start := time.Now()
	_, err := a.run(t)
	if !errors.Is(err, executors.ErrTimeout) {
		t.Errorf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("timed-out action took %v", d)
	}
	noLeftovers(t)
}

func TestCancelRemovesContainer(t *testing.T) {
	a := action{script: `import time; time.sleep(60)`, outputs: []string{"lego-out/o"}}
	c, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the container runs.
		for range 300 {
			time.Sleep(50 * time.Millisecond)
			if cs, _ := exe.Client().Containers(ctx); len(cs) > 0 {
				break
			}
		}
		time.Sleep(300 * time.Millisecond)
		cancel()
	}()
	_, err := exe.Execute(c, a.request(t))
	if err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Errorf("err = %v, want cancelled", err)
	}
	noLeftovers(t)
}

func TestLayerOutputHoldsFilesystemChanges(t *testing.T) {
	a := action{
		script: `import os
os.makedirs("/opt/tool", exist_ok=True)
open("/opt/tool/version", "w").write("1.0")
os.remove("/etc/debian_version")`,
		outputs: []string{"lego-out/img/layer.tar"},
		props:   map[string]string{executors.PropLayerOutput: "lego-out/img/layer.tar"},
	}
	res, err := a.run(t)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("exit %d: %s", res.ExitCode, stderr(res))
	}
	entries := map[string]string{}
	tr := tar.NewReader(strings.NewReader(output(t, res, "lego-out/img/layer.tar")))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		entries[strings.TrimPrefix(h.Name, "./")] = string(b)
	}
	if entries["opt/tool/version"] != "1.0" {
		t.Errorf("layer lacks opt/tool/version: %v", keys(entries))
	}
	if _, ok := entries["etc/.wh.debian_version"]; !ok {
		t.Errorf("layer lacks the whiteout of etc/debian_version: %v", keys(entries))
	}
	noLeftovers(t)
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestActionWithoutImageIsRefused(t *testing.T) {
	req := action{script: "pass"}.request(t)
	req.Action.Platform, req.Command.Platform = nil, nil
	if _, err := exe.Execute(context.Background(), req); err == nil || !strings.Contains(err.Error(), "names no image") {
		t.Errorf("err = %v", err)
	}
}

func TestUnreachableContainerdSaysHowToStartIt(t *testing.T) {
	_, err := New(context.Background(), store, Options{Address: filepath.Join(t.TempDir(), "none.sock")})
	if err == nil || !strings.Contains(err.Error(), "apt-get install containerd runc") || !strings.Contains(err.Error(), "none.sock") {
		t.Errorf("err = %v", err)
	}
}

// A container that a killed lego left behind is removed by the next
// executor that connects; one whose owner still runs is kept.
func TestStaleContainersAreSwept(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	img, err := exe.r.image(ctx, image.Digest, image.Size)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(id string, pid int) {
		labels := map[string]string{labelPID: strconv.Itoa(pid), labelBoot: bootID()}
		if _, err := exe.Client().NewContainer(ctx, id, ctrd.WithNewSnapshot(id, img), ctrd.WithNewSpec(oci.WithImageConfig(img)),
			ctrd.WithContainerLabels(labels)); err != nil {
			t.Fatal(err)
		}
	}
	mk("lego-stale", dead.Process.Pid)
	mk("lego-live", os.Getpid())
	e, err := New(ctx, store, Options{Address: addr, Namespace: testNamespace})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	cs, err := exe.Client().Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].ID() != "lego-live" {
		var ids []string
		for _, c := range cs {
			ids = append(ids, c.ID())
		}
		t.Errorf("containers after the sweep: %v, want [lego-live]", ids)
	}
	for _, c := range cs {
		exe.r.remove(ctx, c)
	}
	noLeftovers(t)
}
