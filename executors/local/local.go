// Package local runs REAPI actions as sandboxed host processes.
//
// Each action gets a fresh exec root holding only its declared inputs
// (hardlinked from the CAS) and an environment holding only the Command's
// variables, and runs in a namespace sandbox (executors/sandbox) that
// shows it nothing else of the host but system directories. What it
// leaves behind is checked: declared outputs must exist, nothing
// undeclared may appear, and inputs (which share inodes with store blobs)
// must be untouched.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/executors"
)

// Options configure an Executor.
type Options struct {
	// ExtraEnv is added to every action's environment and overrides the
	// Command's variables of the same name. It is not part of any action
	// key: it carries secrets and host-specific settings (e.g. the devices
	// a GPU executor picked). TMPDIR is always set by the executor itself.
	ExtraEnv map[string]string
	// Runner runs the process in the prepared exec root; nil runs it in a
	// namespace sandbox, or as a plain host process with Unsandboxed
	// (--sandbox=none). Worker names the runner in ExecutionMetadata.
	Runner      Runner
	Worker      string
	Unsandboxed bool
}

// Runner runs an action's process once its exec root holds the inputs.
// The executor does the rest: materializing inputs beforehand, and
// afterwards checking inputs, finding undeclared and missing outputs and
// storing logs and outputs. The containerd executor is this executor with
// a runner that starts a container.
type Runner interface {
	Run(ctx context.Context, p *Process) (*Outcome, error)
}

// Process is what a Runner runs.
type Process struct {
	Request *executors.Request
	Root    string   // the exec root on the host
	Tmp     string   // scratch dir on the host, outside Root; TMPDIR in Env
	WorkDir string   // working directory relative to Root ("" = Root)
	Env     []string // the exact environment, "K=V", later entries win
	// Outputs are the declared outputs relative to Root: the only paths
	// the process may create.
	Outputs        []string
	Stdout, Stderr *os.File
}

// Outcome is what happened to a process that ran.
type Outcome struct {
	ExitCode  int32
	TimedOut  error // wraps executors.ErrTimeout
	Cancelled error
	// Err is a failure of the runner's own checks after a normal exit
	// (e.g. an OOM kill explained); the action fails with it.
	Err error
}

// Executor runs actions as local processes. It is safe for concurrent use.
type Executor struct {
	store    *cas.Disk
	extraEnv []string // "K=V", sorted for a stable environment order
	runner   Runner
	worker   string
}

var _ executors.Executor = (*Executor)(nil)

// New returns an executor that reads inputs from and writes outputs to store.
func New(store *cas.Disk, opts Options) *Executor {
	e := &Executor{store: store, runner: opts.Runner, worker: opts.Worker}
	switch {
	case e.runner != nil:
	case opts.Unsandboxed:
		e.runner, e.worker = hostRunner{}, "local"
	default:
		e.runner, e.worker = &sandboxRunner{store: store}, "local"
	}
	for k, v := range opts.ExtraEnv {
		e.extraEnv = append(e.extraEnv, k+"="+v)
	}
	sort.Strings(e.extraEnv)
	return e
}

// Execute implements executors.Executor.
func (e *Executor) Execute(ctx context.Context, req *executors.Request) (*repb.ActionResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("action cancelled: %w", err)
	}
	if req == nil || req.Action == nil || req.Command == nil {
		return nil, errors.New("local executor: request needs an Action and a Command")
	}
	if len(req.Command.Arguments) == 0 {
		return nil, errors.New("local executor: command has no arguments")
	}
	md := &repb.ExecutedActionMetadata{Worker: e.worker, WorkerStartTimestamp: timestamppb.Now()}

	// The exec root and the scratch dir (TMPDIR, outside the action's tree)
	// are store temp dirs, on the store's filesystem so that inputs can be
	// hardlinked in and outputs moved out. Creating an inode is the main
	// fixed cost of an action on some disks, so there are just these two;
	// the logs go to memory files.
	root, err := e.store.TempDir("exec-")
	if err != nil {
		return nil, fmt.Errorf("local executor: %w", err)
	}
	defer removeAll(root)
	tmp, err := e.store.TempDir("tmp-")
	if err != nil {
		return nil, fmt.Errorf("local executor: %w", err)
	}
	defer removeAll(tmp)
	sb := &sandbox{
		store: e.store,
		root:  root,
		tmp:   tmp,
		tree:  &node{kind: kDir, kids: map[string]*node{}},
	}

	md.InputFetchStartTimestamp = timestamppb.Now()
	if err := sb.materialize(req); err != nil {
		return nil, fmt.Errorf("materializing inputs: %w", err)
	}
	outs, wd, err := sb.prepareOutputs(req.Command)
	if err != nil {
		return nil, err
	}
	md.InputFetchCompletedTimestamp = timestamppb.Now()

	stdout, err := newLog("stdout")
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	stderr, err := newLog("stderr")
	if err != nil {
		return nil, err
	}
	defer stderr.Close()

	md.ExecutionStartTimestamp = timestamppb.Now()
	proc := &Process{Request: req, Root: root, Tmp: tmp, WorkDir: wd, Env: e.environ(req, tmp),
		Stdout: stdout, Stderr: stderr}
	for _, o := range outs {
		proc.Outputs = append(proc.Outputs, o.rel)
	}
	run, err := e.runner.Run(ctx, proc)
	md.ExecutionCompletedTimestamp = timestamppb.Now()
	if err != nil {
		return nil, err
	}

	res := &repb.ActionResult{ExitCode: run.ExitCode, ExecutionMetadata: md}
	md.OutputUploadStartTimestamp = timestamppb.Now()
	finish := func(err error) (*repb.ActionResult, error) {
		md.OutputUploadCompletedTimestamp = timestamppb.Now()
		md.WorkerCompletedTimestamp = md.OutputUploadCompletedTimestamp
		return res, err
	}

	// Inputs are checked whatever happened: even a killed action may have
	// written through a hardlink into the store.
	inErr := sb.checkInputs()
	if run.Cancelled != nil {
		return nil, errors.Join(run.Cancelled, inErr)
	}
	// Logs are stored before any rule check so that failure reports can
	// show them.
	if res.StdoutDigest, err = sb.storeCopy(stdout); err != nil {
		return nil, fmt.Errorf("storing stdout: %w", err)
	}
	if res.StderrDigest, err = sb.storeCopy(stderr); err != nil {
		return nil, fmt.Errorf("storing stderr: %w", err)
	}
	if run.TimedOut != nil || run.Err != nil || inErr != nil {
		return finish(errors.Join(run.TimedOut, run.Err, inErr))
	}
	if run.ExitCode != 0 {
		// Outputs of a failed action are not collected: nothing may use them.
		return finish(nil)
	}
	var undeclared []string
	if err := sb.findUndeclared(sb.root, "", sb.tree, &undeclared); err != nil {
		return finish(err)
	}
	found, err := sb.findOutputs(outs)
	if len(undeclared) > 0 {
		sort.Strings(undeclared)
		err = errors.Join(err, fmt.Errorf("undeclared output(s): %s", strings.Join(undeclared, ", ")))
	}
	if err != nil {
		return finish(err) // before storing anything: nothing may use the outputs
	}
	return finish(sb.storeOutputs(res, found))
}

// Node kinds of the sandbox's expected layout.
const (
	kDir     = iota // input directory
	kParent         // directory created to hold outputs or the working dir
	kFile           // input file
	kSymlink        // input symlink
	kOutput         // declared output (absent before the run)
)

// node is the expected layout of the exec root, used to tell inputs and
// declared outputs from anything the action created on its own.
type node struct {
	kind int
	kids map[string]*node // directories only
}

// inputFile records an input as linked, to detect changes after the run.
type inputFile struct {
	rel    string
	digest *repb.Digest
	exec   bool
	st     fstat
}

type inputSymlink struct {
	rel, target string
}

type fstat struct {
	size, mtime int64
	mode        fs.FileMode
	ino         uint64
}

func statOf(fi fs.FileInfo) fstat {
	st := fstat{size: fi.Size(), mtime: fi.ModTime().UnixNano(), mode: fi.Mode()}
	if s, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = s.Ino
	}
	return st
}

type sandbox struct {
	store    *cas.Disk
	root     string // exec root
	tmp      string // the action's TMPDIR
	scratch  string // ours, made on first use inside tmp once the action is dead
	tree     *node
	inputs   []inputFile
	symlinks []inputSymlink
	seq      int // names scratch files
}

// scratchName returns a fresh path for the executor's own temporary links.
// It is only called after the action's processes are dead.
func (sb *sandbox) scratchName(prefix string) (string, error) {
	if sb.scratch == "" {
		d, err := os.MkdirTemp(sb.tmp, ".lego-")
		if err != nil {
			return "", err
		}
		sb.scratch = d
	}
	sb.seq++
	return filepath.Join(sb.scratch, prefix+strconv.Itoa(sb.seq)), nil
}

// materialize builds the input root under sb.root.
func (sb *sandbox) materialize(req *executors.Request) error {
	d := req.Action.InputRootDigest
	if d == nil || d.SizeBytes == 0 {
		return nil // the empty Directory encodes to zero bytes
	}
	return sb.materializeDir(req, d, sb.root, "", sb.tree)
}

func (sb *sandbox) directory(req *executors.Request, d *repb.Digest) (*repb.Directory, error) {
	if dir, ok := req.Dirs[cas.Key(d)]; ok {
		return dir, nil
	}
	dir := &repb.Directory{}
	if d.SizeBytes == 0 {
		return dir, nil
	}
	if err := sb.store.GetProto(d, dir); err != nil {
		return nil, fmt.Errorf("directory %s: %w", cas.Key(d), err)
	}
	return dir, nil
}

func (sb *sandbox) materializeDir(req *executors.Request, d *repb.Digest, abs, rel string, n *node) error {
	dir, err := sb.directory(req, d)
	if err != nil {
		return err
	}
	add := func(name string, kind int) (*node, string, string, error) {
		if !validName(name) {
			return nil, "", "", fmt.Errorf("invalid name %q in directory %q", name, rel)
		}
		if n.kids[name] != nil {
			return nil, "", "", fmt.Errorf("duplicate name %q in directory %q", name, rel)
		}
		c := &node{kind: kind}
		n.kids[name] = c
		return c, filepath.Join(abs, name), path.Join(rel, name), nil
	}
	for _, f := range dir.Files {
		_, p, r, err := add(f.Name, kFile)
		if err != nil {
			return err
		}
		if f.Digest == nil {
			return fmt.Errorf("input %q has no digest", r)
		}
		if err := sb.store.Link(f.Digest, f.IsExecutable, p); err != nil {
			return fmt.Errorf("input %q: %w", r, err)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		sb.inputs = append(sb.inputs, inputFile{rel: r, digest: f.Digest, exec: f.IsExecutable, st: statOf(fi)})
	}
	for _, s := range dir.Symlinks {
		_, p, r, err := add(s.Name, kSymlink)
		if err != nil {
			return err
		}
		if err := os.Symlink(s.Target, p); err != nil {
			return err
		}
		sb.symlinks = append(sb.symlinks, inputSymlink{rel: r, target: s.Target})
	}
	for _, sub := range dir.Directories {
		c, p, r, err := add(sub.Name, kDir)
		if err != nil {
			return err
		}
		if sub.Digest == nil {
			return fmt.Errorf("input directory %q has no digest", r)
		}
		c.kids = map[string]*node{}
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
		if err := sb.materializeDir(req, sub.Digest, p, r, c); err != nil {
			return err
		}
	}
	return nil
}

func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// output is one declared output path.
type output struct {
	decl string // as declared: relative to the working directory
	rel  string // relative to the exec root
	want byte   // 'f' file, 'd' directory, 0 either (OutputPaths)
}

// prepareOutputs validates the output paths and the working directory,
// creates their parent directories and returns the outputs sorted by
// declared path and the working directory relative to the exec root.
func (sb *sandbox) prepareOutputs(cmd *repb.Command) ([]output, string, error) {
	wd, err := cleanRel("", cmd.WorkingDirectory)
	if err != nil {
		return nil, "", fmt.Errorf("working directory: %w", err)
	}
	if wd != "" {
		if _, err := sb.mark(wd, false); err != nil {
			return nil, "", fmt.Errorf("working directory %q: %w", wd, err)
		}
	}

	want := map[string]byte{}
	for _, p := range cmd.OutputFiles {
		want[p] = 'f'
	}
	for _, p := range cmd.OutputDirectories {
		if want[p] == 'f' {
			return nil, "", fmt.Errorf("output %q declared both as a file and as a directory", p)
		}
		want[p] = 'd'
	}
	// REAPI v2.1: OutputPaths supersedes the two older lists; these still
	// say which type a path must have when a client fills in both.
	decls := cmd.OutputPaths
	if len(decls) == 0 {
		decls = append(append([]string(nil), cmd.OutputFiles...), cmd.OutputDirectories...)
	}
	decls = append([]string(nil), decls...)
	sort.Strings(decls)

	var outs []output
	for i, p := range decls {
		if i > 0 && p == decls[i-1] {
			continue
		}
		rel, err := cleanRel(wd, p)
		if err != nil {
			return nil, "", fmt.Errorf("output %q: %w", p, err)
		}
		if rel == "" {
			return nil, "", fmt.Errorf("output %q: names the exec root", p)
		}
		if _, err := sb.mark(rel, true); err != nil {
			return nil, "", fmt.Errorf("output %q: %w", p, err)
		}
		outs = append(outs, output{decl: p, rel: rel, want: want[p]})
	}
	return outs, wd, nil
}

// cleanRel joins p to the exec-root-relative dir wd and checks that the
// result stays inside the exec root. "" stands for the root itself.
func cleanRel(wd, p string) (string, error) {
	if path.IsAbs(p) {
		return "", errors.New("absolute path")
	}
	if strings.ContainsRune(p, 0) {
		return "", errors.New("NUL in path")
	}
	r := path.Join(wd, p)
	if r == ".." || strings.HasPrefix(r, "../") {
		return "", errors.New("escapes the exec root")
	}
	if r == "." {
		r = ""
	}
	return r, nil
}

// mark records rel in the expected layout, creating missing parent
// directories on disk. An output must be new and may not lie inside an
// input file or another output; the working directory may be an input dir.
func (sb *sandbox) mark(rel string, isOutput bool) (*node, error) {
	n := sb.tree
	abs := sb.root
	parts := strings.Split(rel, "/")
	for i, name := range parts {
		abs = filepath.Join(abs, name)
		c := n.kids[name]
		last := i == len(parts)-1
		switch {
		case last && isOutput:
			if c != nil {
				return nil, errors.New("overlaps an input or another output")
			}
			c = &node{kind: kOutput}
			n.kids[name] = c
		case c == nil:
			c = &node{kind: kParent, kids: map[string]*node{}}
			n.kids[name] = c
			if err := os.Mkdir(abs, 0o755); err != nil {
				return nil, err
			}
		case c.kind != kDir && c.kind != kParent:
			return nil, fmt.Errorf("%q is an input file or an output", strings.Join(parts[:i+1], "/"))
		}
		n = c
	}
	return n, nil
}

// hostRunner runs the process on the host, in its own process group.
type hostRunner struct{}

func (hostRunner) Run(ctx context.Context, p *Process) (*Outcome, error) {
	cmd := p.Request.Command
	argv0, cwd, err := p.resolve()
	if err != nil {
		return nil, err
	}

	// Files (not pipes) as stdout/stderr: the child writes to them directly
	// and no copying goroutine can be held up by a background child.
	c := &exec.Cmd{
		Path:        argv0,
		Args:        cmd.Arguments,
		Env:         p.Env,
		Dir:         cwd,
		Stdout:      p.Stdout,
		Stderr:      p.Stderr,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cmd.Arguments[0], err)
	}
	return supervise(ctx, c, p)
}

// supervise waits for the started process c of p, killing its process
// group at the end, at a timeout or when ctx is done.
func supervise(ctx context.Context, c *exec.Cmd, p *Process) (*Outcome, error) {
	var timeout time.Duration
	var timer <-chan time.Time
	if t := p.Request.Action.Timeout; t != nil && t.AsDuration() > 0 {
		timeout = t.AsDuration()
		tm := time.NewTimer(timeout)
		defer tm.Stop()
		timer = tm.C
	}
	pid := c.Process.Pid
	exited := make(chan struct{})
	go func() {
		waitExit(pid)
		close(exited)
	}()

	r := &Outcome{}
	select {
	case <-exited:
	case <-ctx.Done():
		r.Cancelled = fmt.Errorf("action cancelled: %w", ctx.Err())
	case <-timer:
		r.TimedOut = fmt.Errorf("%w after %v", executors.ErrTimeout, timeout)
	}
	// Kill the whole group in every case: on cancel or timeout, and after a
	// normal exit too, so that no background child keeps writing into the
	// exec root. The leader is not reaped yet (waitExit uses WNOWAIT), so
	// its pid, which is the group id, cannot have been reused.
	_ = unix.Kill(-pid, unix.SIGKILL)
	<-exited
	_ = c.Wait() // reaps; a non-zero exit is read from ProcessState below
	if c.ProcessState == nil {
		return nil, fmt.Errorf("waiting for %s: lost the process", p.Request.Command.Arguments[0])
	}
	if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		r.ExitCode = 128 + int32(ws.Signal()) // as shells report it
	} else {
		r.ExitCode = int32(c.ProcessState.ExitCode())
	}
	return r, nil
}

// waitExit blocks until pid has exited, leaving it unreaped.
func waitExit(pid int) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return
		}
	}
}

// environ returns exactly the Command's variables, then ExtraEnv, then the
// request's Env, then TMPDIR; later entries win (os/exec keeps the last of
// duplicates).
func (e *Executor) environ(req *executors.Request, tmp string) []string {
	cmd := req.Command
	env := make([]string, 0, len(cmd.EnvironmentVariables)+len(e.extraEnv)+len(req.Env)+1)
	for _, v := range cmd.EnvironmentVariables {
		env = append(env, v.Name+"="+v.Value)
	}
	env = append(env, e.extraEnv...)
	env = append(env, req.Env...)
	return append(env, "TMPDIR="+tmp)
}

// LookupEnv returns the last value of name in env ("K=V" entries).
func LookupEnv(env []string, name string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// resolve returns the absolute path of the process's program and its
// working directory on the host.
func (p *Process) resolve() (argv0, cwd string, err error) {
	cwd = filepath.Join(p.Root, p.WorkDir)
	pathVar, hasPath := LookupEnv(p.Env, "PATH")
	argv0, err = lookPath(p.Request.Command.Arguments[0], pathVar, hasPath, cwd)
	return argv0, cwd, err
}

// lookPath resolves argv[0] like execvp, but against the action's PATH
// rather than the host's; relative entries are relative to cwd.
func lookPath(arg0, pathVar string, hasPath bool, cwd string) (string, error) {
	if strings.Contains(arg0, "/") {
		if filepath.IsAbs(arg0) {
			return arg0, nil
		}
		return filepath.Join(cwd, arg0), nil
	}
	if !hasPath {
		return "", fmt.Errorf("%q has no slash and the action's environment has no PATH", arg0)
	}
	for _, dir := range filepath.SplitList(pathVar) {
		if dir == "" {
			dir = "."
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(cwd, dir)
		}
		p := filepath.Join(dir, arg0)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q not found in the action's PATH %q", arg0, pathVar)
}

// newLog returns an anonymous in-memory file for an action's stdout or
// stderr: no inode on disk to create, and nothing the action can reach by
// path. CLOEXEC keeps it out of processes forked concurrently for other
// actions.
func newLog(name string) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating %s buffer: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// smallBlob is the size up to which storeCopy reads a file into memory;
// larger ones are streamed through a scratch file, never held in our heap.
const smallBlob = 1 << 20

// storeCopy stores the contents of f, which stays where it is.
func (sb *sandbox) storeCopy(f *os.File) (*repb.Digest, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() <= smallBlob {
		b := make([]byte, fi.Size())
		if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
			return nil, err
		}
		return sb.store.Put(b)
	}
	p, err := sb.scratchName("copy-")
	if err != nil {
		return nil, err
	}
	out, err := os.Create(p)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(out, io.NewSectionReader(f, 0, fi.Size()))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return sb.store.IngestFile(p)
}
