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
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/executors/sandbox"
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

// DirSession runs commands on the host in a directory, a directory env's
// copy, each in a namespace sandbox of its own that shows it that
// directory (writable), the system directories (read-only), a private
// /tmp, loopback only and an environment of its own: a model's `rm -rf /`
// or `curl` stays inside its copy of the repository, and the rollout's
// secrets (the endpoint's key) are not in reach.
type DirSession struct {
	Dir string
	// tmp is the session's /tmp, which lasts as long as the session
	// (the rollout keeps its scratch files there, as in a container);
	// root, empty, is what each command's sandbox mounts its root on.
	tmp, root string
}

func (d *DirSession) Workdir() string { return d.Dir }

// Close removes the session's /tmp; the directory is the caller's.
func (d *DirSession) Close() error { return errors.Join(os.RemoveAll(d.tmp), os.Remove(d.root)) }

const sessionPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// dirEnv is a session command's whole environment.
func dirEnv() []string {
	// The system's PATH: the sandbox shows no other directory of the
	// host. Python writes no bytecode, as in actions and containers.
	return []string{"PATH=" + sessionPath, "HOME=/tmp", "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1"}
}

func (d *DirSession) Run(ctx context.Context, argv []string, stdin []byte, timeout time.Duration) ([]byte, int, error) {
	env := dirEnv()
	argv0 := argv[0]
	if !strings.Contains(argv0, "/") {
		p, err := lookPath(argv0, sessionPath)
		if err != nil {
			return nil, -1, err
		}
		argv0 = p
	}
	var out bytes.Buffer
	c, err := sandbox.Command(&sandbox.Spec{Path: argv0, Args: argv, Env: env, Dir: d.Dir,
		Binds: []sandbox.Bind{{Path: d.Dir, Writable: true}}, Tmp: d.tmp, Root: d.root, UserNS: true}, bytes.NewReader(stdin), &out, &out)
	if err != nil {
		return nil, -1, err
	}
	defer c.Close()
	if err := c.Start(); err != nil {
		return nil, -1, fmt.Errorf("running %s: %w", argv[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var stopped error
	select {
	case err = <-done:
	case <-timer.C:
		stopped = ErrTimeout
	case <-ctx.Done():
		stopped = ctx.Err()
	}
	if stopped != nil {
		// The sandbox's init is pid 1 of its namespace: every process of
		// the command dies with it.
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		<-done
		return out.Bytes(), -1, stopped
	}
	if serr := c.Err(); serr != nil {
		// The sandbox failed, not the command: no observation for the model.
		return out.Bytes(), -1, executors.Infra(executors.ClassRuntime, serr)
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

// lookPath finds a command in PATH as the sandbox will see it: the
// system directories are the host's.
func lookPath(name, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: command not found in %s", name, path)
}

// NewDirSession copies nothing: dir must be the rollout's own copy.
func NewDirSession(dir string) (*DirSession, error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("session directory %s: not a directory", dir)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".session-tmp-")
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp(filepath.Dir(dir), ".session-root-")
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return &DirSession{Dir: dir, tmp: tmp, root: root}, nil
}
