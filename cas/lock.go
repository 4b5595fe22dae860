package cas

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// LockShared takes a shared flock on dir/lock, as builds do, waiting while
// a GC holds it exclusively. It also drops memory-layer entries if another
// process ran GC since. Locks are per call (open file description), so a
// process holding a shared lock must not ask for an exclusive one.
func (s *Disk) LockShared() (unlock func(), err error) {
	unlock, err = s.lock(unix.LOCK_SH)
	if err == nil {
		s.syncGCGen()
	}
	return unlock, err
}

// LockExclusive takes an exclusive flock on dir/lock, for gc and
// clean --expunge, waiting for running builds to finish.
func (s *Disk) LockExclusive() (unlock func(), err error) {
	unlock, err = s.lock(unix.LOCK_EX)
	if err == nil {
		s.syncGCGen()
	}
	return unlock, err
}

func (s *Disk) lock(how int) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, &os.PathError{Op: "flock", Path: f.Name(), Err: err}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			unix.Flock(int(f.Fd()), unix.LOCK_UN)
			f.Close()
		})
	}, nil
}
