package cas

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A Disk's exec roots and scratch directories (TempDir) live in a
// directory of its own under tmp/, tmp/<pid>-<n>/, holding a file "lock"
// that the Disk keeps flocked. A process killed with SIGKILL cannot clean
// up, but the kernel drops its lock: Open removes every such directory
// whose lock is free. The directory is made under a staging name and
// renamed once locked, so no Open ever sees it unlocked.

// stagePrefix starts the name of a process directory being made.
const stagePrefix = ".new-"

// stageMaxAge is how old a staging directory must be before Open takes
// it for the leftover of a process killed while making it.
const stageMaxAge = time.Minute

// procTmp is a Disk's process directory, made at its first TempDir.
type procTmp struct {
	mu   sync.Mutex
	path string
	lock *os.File // flocked until Close
}

// held keeps the lock files of Disks that are never closed open for the
// process's lifetime: a Disk dropped without Close may have handed out
// temp dirs still in use, and the runtime closes an unreachable file.
var held sync.Map // *os.File -> true

// TempDir creates a fresh private directory in this Disk's process
// directory under dir/tmp, on the same filesystem as the blobs so that
// outputs can be renamed into the store. The caller removes it (RemoveAll
// copes with read-only trees); what a killed process left, the next Open
// removes.
func (s *Disk) TempDir(prefix string) (string, error) {
	dir, err := s.proc.dir(s.tmpDir)
	if err != nil {
		return "", err
	}
	return os.MkdirTemp(dir, prefix)
}

// Close removes the Disk's process directory, with whatever temp
// directories are left in it. A later TempDir makes a new one.
func (s *Disk) Close() error {
	p := &s.proc
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lock == nil {
		return nil
	}
	err := RemoveAll(p.path)
	held.Delete(p.lock)
	p.lock.Close()
	p.path, p.lock = "", nil
	return err
}

func (p *procTmp) dir(tmp string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lock != nil {
		return p.path, nil
	}
	stage, err := os.MkdirTemp(tmp, stagePrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(filepath.Join(stage, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err == nil {
		if err = flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
		}
	}
	final := filepath.Join(tmp, strings.TrimPrefix(filepath.Base(stage), stagePrefix))
	if err == nil {
		if err = os.Rename(stage, final); err != nil {
			f.Close()
		}
	}
	if err != nil {
		RemoveAll(stage)
		return "", err
	}
	held.Store(f, true)
	p.path, p.lock = final, f
	return final, nil
}

// sweepTmp removes the process directories of processes that are gone,
// and staging directories that were never finished.
func (s *Disk) sweepTmp() {
	ents, err := os.ReadDir(s.tmpDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name, p := e.Name(), filepath.Join(s.tmpDir, e.Name())
		switch {
		case procDirName(name):
			removeIfUnlocked(p)
		case strings.HasPrefix(name, stagePrefix):
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > stageMaxAge {
				RemoveAll(p)
			}
		}
	}
}

// removeIfUnlocked removes the process directory p unless its owner
// holds its lock. The lock is held while removing, so two Opens do not
// both take it for free; a directory whose lock file is gone was being
// removed by an Open that was killed, and is removed again.
func removeIfUnlocked(p string) {
	f, err := os.OpenFile(filepath.Join(p, "lock"), os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			RemoveAll(p)
		}
		return
	}
	defer f.Close()
	if flock(f, unix.LOCK_EX|unix.LOCK_NB) != nil {
		return // alive (or locked by another sweeper)
	}
	RemoveAll(p)
}

// procDirName reports whether name is a process directory's: <pid>-<n>
// (other entries of tmp/ start with a letter: w-, put-, exec-...).
func procDirName(name string) bool {
	pid, n, ok := strings.Cut(name, "-")
	return ok && digits(pid) && n != ""
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// flock is unix.Flock on f, retried when a signal interrupts it.
func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			if err != nil {
				return &os.PathError{Op: "flock", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
