package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/legobuild/lego/cas"
)

// Reads records what loading and analysis read from the workspace: the
// BUILD and .star files, the files rules read (instances), and the
// directories listed (packages under a pattern, globs). A build snapshot
// holds them; a later build whose reads are all unchanged can skip both.
// Each is fingerprinted before it is read, so a change made while or after
// it was read is seen. The zero value records nothing; so does a nil one.
type Reads struct {
	mu    sync.Mutex
	on    bool
	files map[string]readEntry
	dirs  map[string]readEntry
}

// readEntry is a read file's (or directory's) fingerprint as it was read,
// whether it was racy then, and the digest of its bytes (of its listing).
type readEntry struct {
	fp   cas.Fingerprint
	racy bool
	hash string
}

// NewReads returns a recorder that records.
func NewReads() *Reads {
	return &Reads{on: true, files: map[string]readEntry{}, dirs: map[string]readEntry{}}
}

// ReadFile reads the file at path (absolute), recording it.
func (r *Reads) ReadFile(path string) ([]byte, error) {
	if r == nil || !r.on {
		return os.ReadFile(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	r.add(r.files, path, entryAfter(f, &st, sha256.Sum256(b)))
	return b, nil
}

// File records the file at path, which the caller reads next.
func (r *Reads) File(path string) error {
	if r == nil || !r.on {
		return nil
	}
	e, err := readFileEntry(path)
	if err != nil {
		return err
	}
	r.add(r.files, path, e)
	return nil
}

// Dir records the listing of the directory at path, which the caller
// lists next.
func (r *Reads) Dir(path string) {
	if r == nil || !r.on {
		return
	}
	if e, err := readDirEntry(path); err == nil {
		r.add(r.dirs, path, e)
	}
}

func (r *Reads) add(m map[string]readEntry, path string, e readEntry) {
	r.mu.Lock()
	if _, dup := m[path]; !dup {
		m[path] = e // the first read is the one analysis used
	}
	r.mu.Unlock()
}

// entryAfter makes the entry of the open file f, fingerprinted st before
// its bytes hashing to sum were read: racy if it moved meanwhile.
func entryAfter(f *os.File, st *unix.Stat_t, sum [32]byte) readEntry {
	now := time.Now()
	fp := cas.FingerprintOf(st)
	var after unix.Stat_t
	moved := unix.Fstat(int(f.Fd()), &after) != nil || cas.FingerprintOf(&after) != fp
	return readEntry{fp: fp, racy: moved || fp.Racy(now), hash: hex.EncodeToString(sum[:])}
}

// openEntry makes the entry of the file or directory at path: its
// fingerprint, taken before digest reads it, and the digest.
func openEntry(path string, digest func(f *os.File) ([32]byte, error)) (readEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return readEntry{}, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return readEntry{}, err
	}
	sum, err := digest(f)
	if err != nil {
		return readEntry{}, err
	}
	return entryAfter(f, &st, sum), nil
}

func readFileEntry(path string) (readEntry, error) {
	return openEntry(path, func(f *os.File) (sum [32]byte, err error) {
		h := sha256.New()
		_, err = io.Copy(h, f)
		h.Sum(sum[:0])
		return sum, err
	})
}

// readDirEntry digests the names and kinds in the directory at path: what
// a glob or a package search sees of it, which is not lego-out.
func readDirEntry(path string) (readEntry, error) {
	return openEntry(path, listingDigest)
}

func listingDigest(f *os.File) (sum [32]byte, err error) {
	ents, err := f.ReadDir(-1)
	if err != nil {
		return sum, err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	h := sha256.New()
	for _, e := range ents {
		if e.Name() == OutDir {
			continue // made by the build itself; neither search enters it
		}
		kind := byte('f')
		if e.IsDir() {
			kind = 'd'
		} else if e.Type()&os.ModeSymlink != 0 {
			kind = 'l'
		}
		h.Write([]byte{kind})
		io.WriteString(h, e.Name())
		h.Write([]byte{0})
	}
	h.Sum(sum[:0])
	return sum, nil
}
