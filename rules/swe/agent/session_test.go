package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An agent's commands are hostile: in a directory session they may wreck
// their copy of the repository and nothing else.
func TestDirSessionHoldsTheAgentsCommands(t *testing.T) {
	outside := t.TempDir()
	keep := filepath.Join(outside, "keep.txt")
	if err := os.WriteFile(keep, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "testbed")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.py"), []byte("x = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OPENAI_API_KEY", "sk-secret")
	sess, err := NewDirSession(dir)
	if err != nil {
		t.Fatal(err)
	}
	run := func(cmd string) (string, int) {
		t.Helper()
		out, code, err := sess.Run(context.Background(), []string{"bash", "-c", cmd}, nil, 20*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		return string(out), code
	}
	if out, code := run(`echo y = 2 >> a.py; cat a.py; pwd`); code != 0 || out != "x = 1\ny = 2\n"+dir+"\n" {
		t.Errorf("work in the copy: exit %d, %q", code, out)
	}
	out, _ := run(`env; cat ` + keep + `; ls ` + outside + `; cat /proc/1/environ`)
	for _, leak := range []string{"sk-secret", "precious", "\nkeep.txt\n"} {
		if strings.Contains(out, leak) {
			t.Errorf("the command saw %q:\n%s", leak, out)
		}
	}
	if _, code := run(`exec 3<>/dev/tcp/1.1.1.1/80`); code == 0 {
		t.Errorf("the command reached the network")
	}
	run(`rm -rf ` + outside + ` "$HOME" /tmp/* /usr/share/doc 2>/dev/null; true`)
	if b, err := os.ReadFile(keep); err != nil || string(b) != "precious" {
		t.Errorf("outside the copy after rm -rf: %q, %v", b, err)
	}
	if _, err := os.Stat("/usr/share/doc"); err != nil {
		t.Errorf("the host's /usr/share/doc after rm -rf: %v", err)
	}
	// Stdin reaches the command, and a command past its timeout dies
	// with everything it started.
	if out, _, err := sess.Run(context.Background(), []string{"cat"}, []byte("in"), 5*time.Second); err != nil || string(out) != "in" {
		t.Errorf("stdin: %q, %v", out, err)
	}
	start := time.Now()
	if _, _, err := sess.Run(context.Background(), []string{"bash", "-c", "sleep 100 & sleep 100"}, nil, 300*time.Millisecond); err != ErrTimeout {
		t.Errorf("timeout: err %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout took %v", d)
	}
}
