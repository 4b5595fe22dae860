// Package agent is lego's OpenHands-style agent loop: a policy (a model
// behind an OpenAI-compatible endpoint, or an offline stand-in) is given
// a task and exactly the paper's four tools, execute_bash,
// str_replace_editor, think and finish, whose commands run in one
// sandbox (a Session) for the whole rollout. The loop records the
// trajectory in the data plane's format, with the corrections it made to
// malformed tool calls.
package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/legobuild/lego/executors"
)

// Session is the sandbox a rollout's commands run in: a container of the
// task's env, or a directory on the host. Run executes argv (no shell) in
// Workdir with stdin, killing it after timeout; out holds stdout and
// stderr interleaved.
type Session interface {
	Run(ctx context.Context, argv []string, stdin []byte, timeout time.Duration) (out []byte, exit int, err error)
	Workdir() string
	Close() error
}

// ErrTimeout is a command that ran past its timeout (and was killed):
// the executors' own, which a container session returns too.
var ErrTimeout = executors.ErrTimeout

// DirSession runs commands on the host in a directory: a directory env's
// copy. It is no sandbox; it is for machines without containerd.
type DirSession struct{ Dir string }

func (d *DirSession) Workdir() string { return d.Dir }
func (d *DirSession) Close() error    { return nil }

func (d *DirSession) Run(ctx context.Context, argv []string, stdin []byte, timeout time.Duration) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = d.Dir
	cmd.Stdin = bytes.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// The whole process group dies with a timeout, not just bash.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return out.Bytes(), -1, ErrTimeout
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.Bytes(), ee.ExitCode(), nil
	}
	if err != nil {
		return out.Bytes(), -1, fmt.Errorf("running %s: %w", argv[0], err)
	}
	return out.Bytes(), 0, nil
}

// NewDirSession copies nothing: dir must be the rollout's own copy.
func NewDirSession(dir string) (*DirSession, error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("session directory %s: not a directory", dir)
	}
	return &DirSession{Dir: dir}, nil
}
