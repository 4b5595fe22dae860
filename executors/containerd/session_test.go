package containerd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/legobuild/lego/executors"
)

// A session is one container: what a command leaves, the next sees; a
// command past its timeout is killed with what it started; Close removes
// everything.
func TestSessionExecsIntoOneContainer(t *testing.T) {
	s, err := OpenSession(context.Background(), SessionOptions{Address: addr, Namespace: testNamespace, Store: store,
		Manifest: image.Digest, Size: image.Size, Workdir: "/tmp", Env: []string{"GREETING=hi"}})
	if err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, timeout time.Duration, argv ...string) (string, int, error) {
		t.Helper()
		out, code, err := s.Run(context.Background(), argv, []byte(stdin), timeout)
		return string(out), code, err
	}
	out, code, err := run("", time.Minute, "sh", "-c", `echo "$GREETING from $(pwd)"; echo oops >&2; exit 3`)
	if err != nil || code != 3 || !strings.Contains(out, "hi from /tmp\n") || !strings.Contains(out, "oops\n") || len(out) != 18 {
		t.Errorf("first exec: %q, exit %d, %v", out, code, err)
	}
	if _, code, err := run("kept between commands\n", time.Minute, "sh", "-c", "cat > state.txt"); err != nil || code != 0 {
		t.Fatalf("writing from stdin: exit %d, %v", code, err)
	}
	if out, _, _ := run("", time.Minute, "cat", "/tmp/state.txt"); out != "kept between commands\n" {
		t.Errorf("the next command sees %q", out)
	}
	// All of stdin arrives, and all of the output, every time (an
	// agent's editor writes and reads files this way).
	big := strings.Repeat("0123456789abcdef\n", 1<<14)
	for i := range 20 {
		if out, code, err := run(big, time.Minute, "sh", "-c", "cat > f && wc -c < f"); err != nil || code != 0 || strings.TrimSpace(out) != fmt.Sprint(len(big)) {
			t.Fatalf("write %d: %q, exit %d, %v; want %d bytes", i, out, code, err, len(big))
		}
		if out, _, err := run("", time.Minute, "cat", "f"); err != nil || out != big {
			t.Fatalf("read %d: %d bytes, %v; want %d", i, len(out), err, len(big))
		}
	}
	start := time.Now()
	_, _, err = run("", time.Second, "sh", "-c", "sleep 300 & sleep 300")
	if !errors.Is(err, executors.ErrTimeout) || time.Since(start) > time.Minute {
		t.Errorf("a command past its timeout: %v after %v", err, time.Since(start))
	}
	out, _, _ = run("", time.Minute, "sh", "-c", `for p in /proc/[0-9]*; do tr '\0' ' ' < $p/cmdline; echo; done`)
	if strings.Contains(out, "sleep 300") {
		t.Errorf("the timed-out command left processes:\n%s", out)
	}
	// An edit of the same size right after a run is seen by the next run:
	// no stale bytecode.
	py := `printf 'X = %s\n' "$1" > mod.py && python3 -c 'import mod; print(mod.X)'`
	for _, v := range []string{"1", "2"} {
		if out, code, err := run("", time.Minute, "sh", "-c", py, "sh", v); err != nil || code != 0 || out != v+"\n" {
			t.Errorf("module with X = %s: %q, exit %d, %v", v, out, code, err)
		}
	}
	if out, _, _ := run("", time.Minute, "sh", "-c", "ls -d __pycache__ 2>/dev/null || echo none"); out != "none\n" {
		t.Errorf("python wrote bytecode: %q", out)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	noLeftovers(t)
}
