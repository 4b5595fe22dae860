package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/internal/testenv"
)

// These are the attacks a hostile action tried on the path-only sandbox;
// in the namespace sandbox each fails, and the store is unchanged.

func TestSandboxInputsAreReadOnly(t *testing.T) {
	s := newStore(t)
	root, _ := inputRoot(t, s, map[string]file{"in/victim": {Content: "original"}, "in/tool": {Content: "#!/bin/sh\n", Exec: true}})
	for _, script := range []string{
		`printf ORIGINAL > in/victim`,
		`chmod 666 in/victim`,
		`rm in/victim`,
		`mv in/victim in/other`,
		`touch -d 2001-01-01 in/victim`,
		`ln in/tool out/t`,
		`: > in/new`,
		`: > stray`,
	} {
		res, err := New(s, Options{}).Execute(context.Background(), request(t, s, root, shell(script, "out/ok")))
		if err == nil && res.ExitCode == 0 {
			t.Errorf("%s: succeeded", script)
		}
	}
	if get(t, s, cas.DigestOf([]byte("original"))) != "original" {
		t.Errorf("the input's blob changed")
	}
	// Writes beside a declared output are possible, and then undeclared.
	_, err := New(s, Options{}).Execute(context.Background(), request(t, s, root,
		shell(`echo ok > out/ok; : > out/extra`, "out/ok")))
	if err == nil || err.Error() != "undeclared output(s): out/extra" {
		t.Errorf("write beside an output: err %v", err)
	}
}

func TestSandboxShowsNothingOfTheHost(t *testing.T) {
	s := newStore(t)
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := testenv.Replier(t, "hello from the host\n")
	t.Setenv("LEGO_TEST_SECRET", "model-key")
	d, err := s.Put([]byte("a blob of the store"))
	if err != nil {
		t.Fatal(err)
	}
	blob, err := s.BlobPath(d, false)
	if err != nil {
		t.Fatal(err)
	}

	script := fmt.Sprintf(`exec 2>&1
cat /proc/$PPID/environ /proc/1/environ | tr '\0' '\n'
cat /etc/passwd
cat %s
cat %s
ls /proc | grep -c '^[0-9]'
id -u
hostname
exec 3<>/dev/tcp/127.0.0.1/%d && cat <&3
echo end`, secret, blob, port)
	res := mustRun(t, New(s, Options{}), request(t, s, nil, bash(script)))
	out := get(t, s, res.StdoutDigest)
	for _, leak := range []string{"model-key", "LEGO_TEST_SECRET", "s3cret", "hello from the host", "a blob of the store"} {
		if strings.Contains(out, leak) {
			t.Errorf("the action saw %q:\n%s", leak, out)
		}
	}
	host, _ := os.ReadFile("/etc/passwd")
	for _, line := range strings.Split(string(host), "\n") {
		if line != "" && !strings.HasPrefix(line, "root:") && !strings.HasPrefix(line, "nobody:") && strings.Contains(out, line) {
			t.Errorf("the host's passwd line %q is visible", line)
		}
	}
	for _, want := range []string{"\n65534\n", "\nlego\n", "end"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// network = True shares the host's network, and nothing more.
	req := request(t, s, nil, bash(fmt.Sprintf(`exec 3<>/dev/tcp/127.0.0.1/%d && cat <&3`, port)))
	req.Command.Platform = &repb.Platform{Properties: []*repb.Platform_Property{{Name: executors.PropNetwork, Value: "true"}}}
	res = mustRun(t, New(s, Options{}), req)
	if got := get(t, s, res.StdoutDigest); got != "hello from the host\n" {
		t.Errorf("with network: %q", got)
	}
}

// bash is shell with bash, for /dev/tcp and exec -a.
func bash(script string, outputs ...string) *repb.Command {
	c := shell(script, outputs...)
	c.Arguments[0] = "/bin/bash"
	return c
}

// markerGone waits until no host process has marker in its command line.
func markerGone(t *testing.T, marker string) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		left = left[:0]
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err == nil && strings.Contains(string(b), marker) && !gone(atoi(e.Name())) {
				left = append(left, e.Name())
			}
		}
		if len(left) == 0 {
			return
		}
	}
	t.Errorf("processes %v of the action still run", left)
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestSandboxKillsEveryProcessOfTheAction(t *testing.T) {
	s := newStore(t)
	// A daemon that leaves its process group and session is still in the
	// action's PID namespace.
	marker := fmt.Sprintf("lego-marker-%d", time.Now().UnixNano())
	res := mustRun(t, New(s, Options{}), request(t, s, nil, bash(fmt.Sprintf(`setsid bash -c 'exec -a %s sleep 100' & sleep 0.2; ps -eo args`, marker))))
	if !strings.Contains(get(t, s, res.StdoutDigest), marker) {
		t.Fatalf("the daemon did not start: %s", get(t, s, res.StdoutDigest))
	}
	markerGone(t, marker)

	req := request(t, s, nil, bash(fmt.Sprintf(`setsid bash -c 'exec -a %s-t sleep 100' & wait`, marker)))
	req.Action.Timeout = durationpb.New(300 * time.Millisecond)
	if _, err := New(s, Options{}).Execute(context.Background(), req); !errors.Is(err, executors.ErrTimeout) {
		t.Fatalf("err %v", err)
	}
	markerGone(t, marker+"-t")
}

func TestSandboxFailureIsNotAResult(t *testing.T) {
	s := newStore(t)
	// A program the sandbox cannot show (it is under no visible path)
	// fails to start: an error, not an exit code to cache.
	dir := t.TempDir()
	prog := filepath.Join(dir, "prog")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\necho ran\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := New(s, Options{}).Execute(context.Background(), request(t, s, nil, &repb.Command{Arguments: []string{prog}}))
	if err == nil || !strings.Contains(err.Error(), "sandbox: starting "+prog) {
		t.Errorf("err %v, res %v", err, res)
	}
}
