package cas

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// The verification record (verified/ in the store) holds, for every blob
// and executable copy, the stat of its file (inode, size, mtime, ctime)
// when the store last knew its bytes to be right: when it wrote the file,
// or when it hashed it again since. A hit whose file still has that stat
// is served after one stat (Check); any other is hashed first and evicted
// when its bytes are wrong. An edit through a hardlink in lego-out moves
// mtime and ctime, a replaced file has another inode, a cut or grown one
// another size, and an edit that puts the old mtime back still moves the
// ctime, which only the kernel sets.
//
// Why a file of records, not an xattr on each blob: setting an xattr
// changes the very ctime it would record; not every filesystem keeps user
// xattrs; and an xattr travels with the inode into lego-out, where a
// user's cp -a copies it onto other files.
//
// Why 16 append-only logs: storing a blob appends one fixed-size record
// with a single write(2) on an O_APPEND descriptor, so builds sharing the
// store never interleave records and nothing is rewritten on a hot path.
// A shard (by the hash's first hex digit) is read whole on its first
// lookup and then answered from a map: a build that checks a few blobs
// reads a few shards, and reading and looking up cost ~0.4 µs a blob
// checked, beside ~2 µs for its stat (BenchmarkCheck). A lookup that finds
// no match first reads what other processes appended since. Later records win; gc and verify, which hold
// the exclusive lock, rewrite the shards without dead records.
//
// Losing records is always safe: a blob without one is hashed again. A
// record cut short by a crash fails its checksum and is skipped.
//
//	record: sha256 [32] | kind u8 | 0 [3] | ino u64 | size, mtime, ctime i64 | crc32c of the 68 bytes before
const (
	recSize   = 72
	recShards = 16
	recDir    = "verified"
)

// recKind tells a blob's file from its executable copy's.
type recKind uint8

const (
	kindBlob recKind = iota
	kindExec
)

type recKey struct {
	sum  [32]byte
	kind recKind
}

// keyOf is the record's key for a hash already checked by validHash.
func keyOf(h string, kind recKind) recKey { return recKey{sumOf(h), kind} }

// sumOf decodes a hash already checked by validHash, without allocating.
func sumOf(h string) (sum [32]byte) {
	for i := range sum {
		sum[i] = unhex(h[2*i])<<4 | unhex(h[2*i+1])
	}
	return sum
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// record is a Disk's view of the verification record; the zero value is
// ready (nothing is read until a lookup).
type record struct {
	shards [recShards]recShard
	// broken is set when the record cannot be written (a read-only store):
	// every check then hashes, and no write is tried again.
	broken bool
	mu     sync.Mutex
}

type recShard struct {
	mu   sync.Mutex
	read bool // the file was read at least once
	m    map[recKey]Version
	off  int64  // bytes of the file applied to m
	ino  uint64 // the file's inode when last read: a rewrite replaces it
	w    *os.File
}

func (s *Disk) shard(k recKey) *recShard { return &s.rec.shards[k.sum[0]>>4] }

func (s *Disk) shardPath(k recKey) string {
	return filepath.Join(s.dir, recDir, strconv.FormatUint(uint64(k.sum[0]>>4), 16))
}

// recorded reports whether v is the recorded stat of k's file, reading
// what other processes appended when memory says no.
func (s *Disk) recorded(k recKey, v Version) bool {
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.read {
		if r, ok := sh.m[k]; ok && r == v {
			return true
		}
	}
	sh.catchUp(s.shardPath(k))
	r, ok := sh.m[k]
	return ok && r == v
}

// remember records v as the stat of k's good file; persist false keeps it
// in this process only.
func (s *Disk) remember(k recKey, v Version, persist bool) {
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if !sh.read {
		sh.catchUp(s.shardPath(k))
	}
	sh.m[k] = v
	if persist {
		s.appendRecord(sh, k, v)
	}
}

// appendRecord writes one record; sh.mu is held. A failure only costs
// hashing later, so it is not reported, and after one nothing is tried.
func (s *Disk) appendRecord(sh *recShard, k recKey, v Version) {
	s.rec.mu.Lock()
	broken := s.rec.broken
	s.rec.mu.Unlock()
	if broken {
		return
	}
	var err error
	if sh.w == nil {
		p := s.shardPath(k)
		sh.w, err = os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if errors.Is(err, fs.ErrNotExist) {
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				sh.w, err = os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			}
		}
	}
	if err == nil {
		var b [recSize]byte
		_, err = sh.w.Write(encodeRecord(b[:0], k, v))
	}
	if err != nil {
		s.rec.mu.Lock()
		s.rec.broken = true
		s.rec.mu.Unlock()
	}
}

func encodeRecord(b []byte, k recKey, v Version) []byte {
	start := len(b)
	b = append(b, k.sum[:]...)
	b = append(b, byte(k.kind), 0, 0, 0)
	b = binary.LittleEndian.AppendUint64(b, v.ino)
	b = binary.LittleEndian.AppendUint64(b, uint64(v.size))
	b = binary.LittleEndian.AppendUint64(b, uint64(v.mtime))
	b = binary.LittleEndian.AppendUint64(b, uint64(v.ctime))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// decodeRecords applies the whole records of b to m and returns how many
// bytes it consumed: a tail shorter than a record may be an append still
// under way, so it is left for the next read. A record that fails its
// checksum (cut short by a crash, so the ones after it are misaligned) is
// skipped a byte at a time until records check again.
func decodeRecords(b []byte, m map[recKey]Version) int {
	i := 0
	for len(b)-i >= recSize {
		r := b[i : i+recSize]
		if crc32.Checksum(r[:recSize-4], castagnoli) != binary.LittleEndian.Uint32(r[recSize-4:]) || r[32] > byte(kindExec) {
			i++
			continue
		}
		var k recKey
		copy(k.sum[:], r[:32])
		k.kind = recKind(r[32])
		m[k] = Version{
			ino:   binary.LittleEndian.Uint64(r[36:]),
			size:  int64(binary.LittleEndian.Uint64(r[44:])),
			mtime: int64(binary.LittleEndian.Uint64(r[52:])),
			ctime: int64(binary.LittleEndian.Uint64(r[60:])),
		}
		i += recSize
	}
	return i
}

// catchUp applies what was appended to the shard's file since it was last
// read, or all of it when the file was rewritten; sh.mu is held.
func (sh *recShard) catchUp(path string) {
	if sh.m == nil {
		sh.m = map[recKey]Version{}
	}
	sh.read = true
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return
	}
	if st.Ino != sh.ino {
		sh.ino, sh.off = st.Ino, 0
		clear(sh.m)
		if sh.w != nil {
			// Appends go to the file now under the name.
			sh.w.Close()
			sh.w = nil
		}
	}
	if st.Size <= sh.off {
		return
	}
	whole := sh.off == 0
	b := make([]byte, st.Size-sh.off)
	n, err := f.ReadAt(b, sh.off)
	if err != nil && err != io.EOF {
		return
	}
	sh.off += int64(decodeRecords(b[:n], sh.m))
	if whole && n > recCompactMin && n > 2*recSize*len(sh.m) {
		sh.compact(path)
	}
}

// recCompactMin is the size past which a shard mostly of dead records
// (blobs recorded again, or gone) is rewritten when read: a store that is
// never collected must not make every build read an ever longer record.
const recCompactMin = 1 << 20

// compact rewrites the shard's file with the records of sh.m alone, which
// were just read from it. An append another process makes meanwhile, to
// the file this replaces, is lost: that costs a hash, nothing else.
func (sh *recShard) compact(path string) {
	b := make([]byte, 0, recSize*len(sh.m))
	for k, v := range sh.m {
		b = encodeRecord(b, k, v)
	}
	if writeFileAtomic(path, b) != nil {
		return
	}
	var st unix.Stat_t
	if unix.Stat(path, &st) == nil {
		sh.ino, sh.off = st.Ino, int64(len(b))
	}
	if sh.w != nil {
		sh.w.Close()
		sh.w = nil
	}
}

// rewriteRecord replaces the record with exactly good, under the store's
// exclusive lock (no other process is appending), and resets this Disk's
// view of it.
func (s *Disk) rewriteRecord(good map[recKey]Version) error {
	var bufs [recShards][]byte
	for k, v := range good {
		i := k.sum[0] >> 4
		bufs[i] = encodeRecord(bufs[i], k, v)
	}
	dir := filepath.Join(s.dir, recDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range s.rec.shards {
		sh := &s.rec.shards[i]
		sh.mu.Lock()
		if sh.w != nil {
			sh.w.Close()
			sh.w = nil
		}
		sh.read, sh.m, sh.off, sh.ino = false, nil, 0, 0
		p := filepath.Join(dir, strconv.FormatUint(uint64(i), 16))
		err := writeFileAtomic(p, bufs[i])
		sh.mu.Unlock()
		if err != nil {
			return err
		}
	}
	s.rec.mu.Lock()
	s.rec.broken = false
	s.rec.mu.Unlock()
	return nil
}

// writeFileAtomic writes b to a temp file beside p and renames it to p.
func writeFileAtomic(p string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// loadRecord reads the whole record, for gc to prune it.
func (s *Disk) loadRecord() map[recKey]Version {
	all := map[recKey]Version{}
	for i := range s.rec.shards {
		b, err := os.ReadFile(filepath.Join(s.dir, recDir, strconv.FormatUint(uint64(i), 16)))
		if err == nil {
			decodeRecords(b, all)
		}
	}
	return all
}
