package cas

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"golang.org/x/sys/unix"
)

// The store's owner: blobs belong to the uid and gid lego runs as, so that
// an action run as another uid (a sandbox's nobody) can neither write nor
// chmod what it reads or wrote.
var storeUID, storeGID = os.Getuid(), os.Getgid()

// Check reports whether the blob d is stored and sound, and with
// executable its executable copy too where one was made: nil, or an error
// wrapping ErrNotFound, or ErrCorrupt when a bad copy was found and
// evicted. A file whose stat is the one recorded when it was last known
// good costs one stat; any other is hashed first (record.go).
func (s *Disk) Check(d *repb.Digest, executable bool) error {
	if err := check(d); err != nil {
		return err
	}
	if isEmpty(d) {
		return nil // no bytes to go wrong; BlobPath recreates a lost file
	}
	if err := s.checkFile(d, kindBlob); err != nil {
		return err
	}
	if executable {
		if err := s.checkFile(d, kindExec); err != nil && !errors.Is(err, ErrNotFound) {
			return err // a missing copy is made again from the blob on demand
		}
	}
	return nil
}

func (s *Disk) pathOf(h string, kind recKind) string {
	if kind == kindExec {
		return s.casxPath(h)
	}
	return s.blobPath(h)
}

func (s *Disk) checkFile(d *repb.Digest, kind recKind) error {
	p := s.pathOf(d.Hash, kind)
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%w: %s", ErrNotFound, Key(d))
		}
		return &os.PathError{Op: "stat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size == d.SizeBytes && s.recorded(keyOf(d.Hash, kind), versionOf(&st)) {
		return nil
	}
	return s.rehash(d, kind, p)
}

// present reports whether a sound copy of blob d is stored already
// (Check, which evicts a bad one): a writer then keeps it, and with it the
// links lego-out has to it, rather than put its own copy in its place.
func (s *Disk) present(d *repb.Digest) bool {
	if isEmpty(d) {
		return statSize(s.blobPath(d.Hash), 0)
	}
	return s.checkFile(d, kindBlob) == nil
}

// stored records the file just renamed into place at p as good.
func (s *Disk) stored(h string, kind recKind, p string) {
	var st unix.Stat_t
	if unix.Stat(p, &st) == nil {
		s.remember(keyOf(h, kind), versionOf(&st), true)
	}
}

// rehash hashes the file p stored for d and evicts it when its bytes are
// wrong. First it gives the file back to the store's owner and mode (a
// chmod u+w through a link in lego-out leaves it writable), so no one else
// can write it meanwhile. A sound file is recorded again, in this process
// only when it changed within racyWindow: a write in the same clock tick
// would not move its stat.
func (s *Disk) rehash(d *repb.Digest, kind recKind, p string) error {
	s.rehashed.Add(1)
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, Key(d))
	}
	if err != nil {
		// A symlink or other non-file under a blob's name.
		s.evict(d.Hash, kind)
		return fmt.Errorf("%w: %s: %v; evicted", ErrCorrupt, Key(d), err)
	}
	defer f.Close()
	owned := takeOver(f, kind)
	var before, after unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &before); err != nil {
		return &os.PathError{Op: "fstat", Path: p, Err: err}
	}
	hash, n, err := hashCopy(nil, f)
	if err != nil {
		// Unreadable bytes serve no one (EIO of a failing disk, a directory).
		s.evict(d.Hash, kind)
		return fmt.Errorf("%w: %s: %v; evicted", ErrCorrupt, Key(d), err)
	}
	if hash == d.Hash && n != d.SizeBytes {
		// The file is sound; the caller's digest names no stored blob.
		return fmt.Errorf("%w: %s (stored blob has %d bytes)", ErrNotFound, Key(d), n)
	}
	if hash != d.Hash {
		s.evict(d.Hash, kind)
		return fmt.Errorf("%w: %s: %d bytes hashing to %s; evicted", ErrCorrupt, Key(d), n, hash)
	}
	if owned && unix.Fstat(int(f.Fd()), &after) == nil && versionOf(&after) == versionOf(&before) {
		s.remember(keyOf(d.Hash, kind), versionOf(&after), time.Since(time.Unix(0, after.Ctim.Nano())) >= racyWindow)
	}
	return nil
}

// takeOver gives the open blob file f the store's owner and read-only mode
// (0444, or 0555 for an executable copy). It reports false when the owner
// cannot be changed (lego not root): such a file is never recorded.
func takeOver(f *os.File, kind recKind) bool {
	var st unix.Stat_t
	fd := int(f.Fd())
	if unix.Fstat(fd, &st) != nil {
		return false
	}
	owned := true
	if int(st.Uid) != storeUID {
		owned = unix.Fchown(fd, storeUID, storeGID) == nil
	}
	want := uint32(0o444)
	if kind == kindExec {
		want = 0o555
	}
	if st.Mode&0o7777 != want {
		// After the chown: a chmod by its owner could otherwise race it.
		if unix.Fchmod(fd, want) != nil {
			owned = false
		}
	}
	return owned
}

// evict removes a bad file: a blob together with its executable copy (made
// from it), an executable copy alone.
func (s *Disk) evict(h string, kind recKind) {
	if kind == kindExec {
		os.Remove(s.casxPath(h))
		return
	}
	s.removeBlob(h)
}

// Evicted is one file Verify removed, named relative to the store.
type Evicted struct {
	Path   string // e.g. cas/ab/ab12…, cas-x/…, ac/…
	Reason string
}

// VerifyStats is what Verify checked and what it removed.
type VerifyStats struct {
	Blobs, ExecCopies, Actions int
	Bytes                      int64 // hashed
	Upgraded                   int   // action results rewritten with a checksum
	Evicted                    []Evicted
}

// Verify hashes every blob and executable copy in the store and parses
// every action result, removes those that are wrong, and rewrites the
// verification record and the action-cache index with what it found good.
// The caller holds LockExclusive: a file removed here is not in use.
func (s *Disk) Verify() (VerifyStats, error) {
	var st VerifyStats
	if err := s.staleIndex(); err != nil {
		return st, err
	}
	good := map[recKey]Version{}
	for _, kind := range []recKind{kindBlob, kindExec} {
		root := s.casDir
		if kind == kindExec {
			root = s.casxDir
		}
		err := walkStore(root, func(h, p string, size, _ int64) {
			if h == emptyHash && size == 0 {
				return
			}
			if kind == kindBlob {
				st.Blobs++
			} else {
				st.ExecCopies++
			}
			st.Bytes += size
			v, owned, reason := s.verifyFile(h, kind, p)
			if reason != "" {
				s.evict(h, kind)
				st.Evicted = append(st.Evicted, Evicted{Path: s.rel(p), Reason: reason})
				return
			}
			if owned {
				good[keyOf(h, kind)] = v
			}
		})
		if err != nil {
			return st, err
		}
	}
	// A blob's executable copy went with it when the blob was bad.
	for k := range good {
		if k.kind == kindExec {
			if _, ok := good[recKey{k.sum, kindBlob}]; !ok {
				delete(good, k)
			}
		}
	}
	live := map[[32]byte][]byte{} // the index to write
	err := walkStore(s.acDir, func(h, p string, _, _ int64) {
		st.Actions++
		b, err := os.ReadFile(p)
		if err != nil {
			return // unreadable now is not damaged; GC neither removes it
		}
		_, legacy, ok := decodeAC(b)
		switch {
		case !ok:
			os.Remove(p)
			st.Evicted = append(st.Evicted, Evicted{Path: s.rel(p), Reason: "damaged action result"})
			return
		case legacy:
			if s.writeAtomic(p, encodeAC(b), 0o644) == nil {
				st.Upgraded++
			}
		}
		live[sumOf(h)] = acBody(b, legacy)
	})
	if err != nil {
		return st, err
	}
	if err := s.rewriteRecord(good); err != nil {
		return st, err
	}
	gen := newGCGen()
	if err := s.rewriteIndex(live, gen); err != nil {
		return st, err
	}
	return st, s.bumpGCGen(gen)
}

// verifyFile hashes one stored file: reason is why it is bad, or ""; a
// sound file is recorded with stat v when owned (takeOver).
func (s *Disk) verifyFile(h string, kind recKind, p string) (v Version, owned bool, reason string) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return v, false, "" // removed meanwhile
		}
		return v, false, err.Error()
	}
	defer f.Close()
	owned = takeOver(f, kind)
	got, _, err := hashCopy(nil, f)
	if err != nil {
		return v, false, err.Error()
	}
	if got != h {
		return v, false, "content hashes to " + got
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return v, false, ""
	}
	return versionOf(&st), owned, ""
}

func (s *Disk) rel(p string) string { return strings.TrimPrefix(p, s.dir+string(os.PathSeparator)) }
