package cas

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"golang.org/x/sys/unix"
)

// racyWindow: a file modified this recently is hashed but not recorded.
// Timestamps are coarse (a kernel tick, or seconds on some filesystems),
// so a same-size rewrite within the same tick would keep the recorded
// stat tuple and go unnoticed; after the window, any write moves mtime.
const racyWindow = 2 * time.Second

// FileCache maps a file's stat tuple to its digest, so that unchanged
// files are not hashed again. It is safe for concurrent use.
type FileCache struct {
	path   string
	mu     sync.RWMutex
	m      map[string]fcEntry
	ver    uint64 // bumped on every change; Save writes only if it moved
	saved  uint64
	hashed atomic.Int64
}

type fcEntry struct {
	size, mtime, ctime int64
	ino                uint64
	hash               string // hex: what a hit returns, so no encoding per hit
}

// OpenFileCache loads the cache persisted at path. A missing or corrupt
// file gives an empty cache: it only ever costs re-hashing.
func OpenFileCache(path string) (*FileCache, error) {
	c := &FileCache{path: path, m: map[string]fcEntry{}}
	if b, err := os.ReadFile(path); err == nil {
		if m, ok := decodeFileCache(b); ok {
			c.m = m
		}
	}
	return c, nil
}

// Digest returns the digest of the file at absPath (following symlinks),
// and whether any execute bit is set. The file is hashed unless its size,
// mtime, ctime and inode match what was recorded.
func (c *FileCache) Digest(absPath string) (*repb.Digest, bool, error) {
	d, fp, err := c.DigestFingerprint(absPath)
	return d, fp.Executable(), err
}

// DigestFingerprint is Digest with the fingerprint the digest describes:
// the stat taken before the bytes were read. A file that changed while it
// was read has a zero fingerprint, which matches no later stat.
func (c *FileCache) DigestFingerprint(absPath string) (*repb.Digest, Fingerprint, error) {
	if !filepath.IsAbs(absPath) {
		return nil, Fingerprint{}, fmt.Errorf("file cache: %q is not an absolute path", absPath)
	}
	var st unix.Stat_t
	if err := unix.Stat(absPath, &st); err != nil {
		return nil, Fingerprint{}, &os.PathError{Op: "stat", Path: absPath, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, Fingerprint{}, fmt.Errorf("%s: not a regular file", absPath)
	}
	c.mu.RLock()
	e, ok := c.m[absPath]
	c.mu.RUnlock()
	if ok && e.matches(&st) {
		return &repb.Digest{Hash: e.hash, SizeBytes: e.size}, FingerprintOf(&st), nil
	}

	f, err := os.Open(absPath)
	if err != nil {
		return nil, Fingerprint{}, err
	}
	defer f.Close()
	var before, after unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &before); err != nil {
		return nil, Fingerprint{}, &os.PathError{Op: "fstat", Path: absPath, Err: err}
	}
	hash, n, err := hashCopy(nil, f)
	if err != nil {
		return nil, Fingerprint{}, fmt.Errorf("hash %s: %w", absPath, err)
	}
	c.hashed.Add(1)
	d := &repb.Digest{Hash: hash, SizeBytes: n}
	// Record only what is sure to describe these bytes: the file did not
	// change while being read, and is not racily recent.
	rec := entryOf(&before, hash)
	fp := Fingerprint{Mode: before.Mode}
	if unix.Fstat(int(f.Fd()), &after) == nil && rec.matches(&after) && n == before.Size {
		fp = FingerprintOf(&before)
		if time.Since(time.Unix(0, rec.mtime)) >= racyWindow {
			c.mu.Lock()
			c.m[absPath] = rec
			c.ver++
			c.mu.Unlock()
		}
	}
	return d, fp, nil
}

func entryOf(st *unix.Stat_t, hash string) fcEntry {
	return fcEntry{size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(), ino: st.Ino, hash: hash}
}

func (e *fcEntry) matches(st *unix.Stat_t) bool {
	return e.size == st.Size && e.mtime == st.Mtim.Nano() && e.ctime == st.Ctim.Nano() && e.ino == st.Ino
}

// Save writes the cache back if it changed, atomically (temp + rename).
func (c *FileCache) Save() error {
	c.mu.RLock()
	if c.ver == c.saved {
		c.mu.RUnlock()
		return nil
	}
	ver := c.ver
	b := encodeFileCache(c.m)
	c.mu.RUnlock()

	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return err
	}
	if err := writeFileAtomic(c.path, b); err != nil {
		return err
	}
	c.mu.Lock()
	if c.saved < ver {
		c.saved = ver
	}
	c.mu.Unlock()
	return nil
}

// The file format:
//
//	"LGFC1\n\x00\x00" | entries | crc32c of all before it
//	entry: uvarint len | path | varint size, mtime, ctime | uvarint ino | 32-byte sha256
const fileCacheMagic = "LGFC1\n\x00\x00"

func encodeFileCache(m map[string]fcEntry) []byte {
	b := make([]byte, 0, len(fileCacheMagic)+len(m)*128+4)
	b = append(b, fileCacheMagic...)
	var raw [32]byte
	for p, e := range m {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
		b = binary.AppendVarint(b, e.size)
		b = binary.AppendVarint(b, e.mtime)
		b = binary.AppendVarint(b, e.ctime)
		b = binary.AppendUvarint(b, e.ino)
		hex.Decode(raw[:], []byte(e.hash))
		b = append(b, raw[:]...)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeFileCache parses an encoded cache; ok is false for anything but
// an intact file.
func decodeFileCache(b []byte) (m map[string]fcEntry, ok bool) {
	if len(b) < len(fileCacheMagic)+4 || string(b[:len(fileCacheMagic)]) != fileCacheMagic {
		return nil, false
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, false
	}
	r := &varReader{b: body[len(fileCacheMagic):]}
	m = make(map[string]fcEntry, len(r.b)/100)
	for len(r.b) > 0 && !r.bad {
		p := string(r.bytes(int(r.uvarint())))
		e := fcEntry{size: r.varint(), mtime: r.varint(), ctime: r.varint(), ino: r.uvarint()}
		e.hash = hex.EncodeToString(r.bytes(32))
		m[p] = e
	}
	return m, !r.bad
}

// varReader reads varints and byte runs, latching the first error.
type varReader struct {
	b   []byte
	bad bool
}

func (r *varReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *varReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *varReader) bytes(n int) []byte {
	if n < 0 || n > len(r.b) {
		r.bad, r.b = true, nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// FileCachePath is the file of the workspace root's FileCache in the
// store at cacheDir: one per workspace, so builds of two do not thrash it.
func FileCachePath(cacheDir, root string) string {
	h := sha256.Sum256([]byte(root))
	return filepath.Join(cacheDir, "filecache", hex.EncodeToString(h[:8]))
}

// DefaultDir is where a store lives unless --cache_dir says otherwise:
// the XDG cache directory, as Bazel keeps its output base in ~/.cache.
func DefaultDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "lego")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "lego")
	}
	return filepath.Join(os.TempDir(), "lego-cache")
}
