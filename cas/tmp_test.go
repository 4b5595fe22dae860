package cas

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary a process that opens the store named by
// it, makes temp dirs as an executor does (one a read-only tree), prints
// their paths and waits to be killed.
const helperEnv = "LEGO_CAS_TEMP_HELPER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(tempHelper(dir))
	}
	os.Exit(m.Run())
}

func tempHelper(dir string) int {
	s, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var paths []string
	for _, prefix := range []string{"exec-", "tmp-", "exec-"} {
		p, err := s.TempDir(prefix)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		paths = append(paths, p)
	}
	// What an action may leave: read-only files in read-only directories.
	ro := filepath.Join(paths[0], "out", "deep")
	os.MkdirAll(ro, 0o755)
	os.WriteFile(filepath.Join(ro, "f"), []byte("x"), 0o444)
	os.Chmod(ro, 0o555)
	os.Chmod(filepath.Dir(ro), 0o555)
	fmt.Println(strings.Join(paths, " "))
	time.Sleep(time.Hour)
	return 0
}

// startHelper runs a helper process on the store at dir and returns it
// with the temp dirs it made.
func startHelper(t *testing.T, dir string) (*exec.Cmd, []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	return cmd, strings.Fields(line)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// What a SIGKILLed process left in tmp/ goes at the next Open; the temp
// dirs of live processes (another, or this one) stay.
func TestOpenRemovesKilledProcessTemps(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lego")
	killed, dead := startHelper(t, dir)
	live, alive := startHelper(t, dir)
	mine, err := openDisk(t, dir).TempDir("exec-")
	if err != nil {
		t.Fatal(err)
	}
	if err := killed.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed.Wait()
	if len(dead) != 3 || !exists(dead[0]) {
		t.Fatalf("the killed helper's temp dirs %v are not there to remove", dead)
	}
	// Three process directories: the killed helper's, the live one's, ours.
	if n := len(entries(t, filepath.Join(dir, "tmp"))); n != 3 {
		t.Fatalf("tmp/ holds %d entries, want 3", n)
	}

	openDisk(t, dir)
	for _, p := range dead {
		if exists(p) {
			t.Errorf("Open left %s of a killed process", p)
		}
	}
	if exists(filepath.Dir(dead[0])) {
		t.Errorf("Open left the killed process's directory %s", filepath.Dir(dead[0]))
	}
	for _, p := range append(alive, mine) {
		if !exists(p) {
			t.Errorf("Open removed %s of a live process", p)
		}
	}
	if !exists(filepath.Join(alive[0], "out", "deep", "f")) {
		t.Error("Open removed files of a live process")
	}

	// Killed too: its read-only tree goes as well.
	live.Process.Signal(syscall.SIGKILL)
	live.Wait()
	openDisk(t, dir)
	for _, p := range alive {
		if exists(p) {
			t.Errorf("Open left %s of a killed process", p)
		}
	}
	if !exists(mine) {
		t.Errorf("Open removed %s, this process's", mine)
	}
	if n := len(entries(t, filepath.Join(dir, "tmp"))); n != 1 {
		t.Errorf("tmp/ holds %d entries, want this process's directory only", n)
	}
}

// Close removes the Disk's directory in tmp/; a later TempDir makes another.
func TestCloseRemovesTemps(t *testing.T) {
	s := newDisk(t)
	a, err := s.TempDir("exec-")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(a, "f"), nil, 0o444)
	os.Chmod(a, 0o555)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, filepath.Join(s.Dir(), "tmp")); len(got) != 0 {
		t.Errorf("tmp/ after Close: %v", got)
	}
	b, err := s.TempDir("exec-")
	if err != nil || filepath.Dir(b) == filepath.Dir(a) || !exists(b) {
		t.Errorf("TempDir after Close: %q %v", b, err)
	}
}

// A process directory whose lock file is gone (its sweeper was killed
// midway) is removed; a staging directory only once it is old.
func TestSweepUnfinished(t *testing.T) {
	s := newDisk(t)
	tmp := filepath.Join(s.Dir(), "tmp")
	half := filepath.Join(tmp, "123-456")
	stage, old := filepath.Join(tmp, stagePrefix+"1-2"), filepath.Join(tmp, stagePrefix+"3-4")
	for _, d := range []string{filepath.Join(half, "exec-1"), stage, old} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	backdate(t, old, 2*stageMaxAge)
	openDisk(t, s.Dir())
	if got := entries(t, tmp); len(got) != 1 || got[0] != filepath.Base(stage) {
		t.Errorf("tmp/ after Open: %v, want the young staging directory only", got)
	}
}
