package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// EnvREAPIExecutor names a running REAPI execution service the test
// command started (scripts/test.sh sources scripts/buildbarn.sh).
const EnvREAPIExecutor = "LEGO_TEST_REAPI_EXECUTOR"

// Buildbarn returns the address (grpc://…) of a Buildbarn cluster: the one
// the test command started, or one started now by scripts/buildbarn.sh
// (which builds it from the Go module proxy once per machine) and stopped
// when the test ends.
func Buildbarn(tb testing.TB) string {
	tb.Helper()
	if a := os.Getenv(EnvREAPIExecutor); a != "" {
		return a
	}
	_, self, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(self), "..", "..", "scripts", "buildbarn.sh")
	// The script stops the cluster when its shell exits: the shell waits
	// on its stdin, which the cleanup closes.
	cmd := exec.Command("bash", "-c", `set -euo pipefail; . "$0"; echo "lego-reapi $LEGO_TEST_REAPI_EXECUTOR"; read -r _ || true`, script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "lego-reapi "); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			return addr
		}
	}
	cmd.Wait()
	tb.Fatal(fmt.Sprintf("scripts/buildbarn.sh did not start Buildbarn:\n%s", stderr.String()))
	return ""
}
