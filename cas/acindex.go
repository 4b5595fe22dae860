package cas

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// The action-cache index (acindex/ in the store) holds a copy of every
// action result PutActionResult writes, in 16 append-only logs by the
// key's first hex digit: a null build looks up every action's result, and
// opening and reading one file each was ~40% of its time. A shard is read
// whole on its first lookup and then answered from a map; a key it lacks
// first makes it read what other processes appended since, then the
// result's own file under ac/ is read as before, and indexed.
//
// The files under ac/ stay the store's truth: GC, Verify and older legos
// go by them, and an index that is missing, unreadable or garbage costs
// their reads, nothing else. So that it never names what they no longer
// keep, GC and Verify (under the exclusive lock) rewrite the shards from
// the files still present, and stamp acindex/gen with the gcgen they then
// write. An index whose stamp is not the store's gcgen is not used: an
// older lego collected the store since, or a GC died after removing
// entries (it writes "stale" there first).
//
// Why 16 append-only logs, as for the verification record (record.go):
// storing a result appends one record with a single write(2) on an
// O_APPEND descriptor, so builds sharing the store never interleave
// records, and nothing is rewritten on a hot path.
//
// A record cut short (a crash, a full disk) or damaged fails its length or
// checksum check and is never applied. A short tail may be an append still
// under way: it is read again next time. A short record that whole records
// follow was cut by a crash (appends to a file are serialized, so nothing
// was appended after one under way): it is skipped by looking for the next
// magic whose record checks.
//
//	record: "\x00LX1" | key sha256 [32] | n u32 | ActionResult, deterministic [n] | crc32c of all before
const (
	acxDir    = "acindex"
	acxStamp  = "gen"
	acxStale  = "stale" // never a gcgen, which newGCGen writes in hex
	acxMagic  = "\x00LX1"
	acxHeader = len(acxMagic) + 32 + 4
	// acxMax bounds a record's claimed length, so garbage is not taken
	// for the start of a record still being appended; a bigger result is
	// not indexed, only read from its file.
	acxMax = 1 << 20
)

// acIndex is a Disk's view of the index; the zero value is ready
// (nothing is read until a lookup).
type acIndex struct {
	shards [recShards]acShard
	mu     sync.Mutex
	// on is whether the index may be used, decided from its stamp when
	// gen was the Disk's Generation: a GC seen since decides again.
	decided bool
	gen     uint64
	on      bool
	// broken is set when the index cannot be written (a read-only
	// store): lookups still read it, and no append is tried again.
	broken bool
}

type acShard struct {
	mu  sync.Mutex
	gen uint64              // the Disk's Generation when m was started
	m   map[[32]byte][]byte // key -> deterministic ActionResult; nil until read
	off int64               // bytes of the file applied to m
	// ino and size are the file's when last read: one stat then tells a
	// miss that nothing was appended or rewritten since.
	ino  uint64
	size int64
	w    *os.File
}

func (s *Disk) indexPath(i int) string {
	return filepath.Join(s.dir, acxDir, strconv.FormatUint(uint64(i), 16))
}

// indexed returns the result the index holds for key k, or nil; the
// caller then reads k's file.
func (s *Disk) indexed(k *[32]byte) *repb.ActionResult {
	if !s.indexOn() {
		return nil
	}
	sh, i := s.lockShard(k)
	b, ok := sh.m[*k]
	if !ok {
		sh.catchUp(s.indexPath(i))
		b, ok = sh.m[*k]
	}
	sh.mu.Unlock()
	if !ok {
		return nil
	}
	// Decoded per lookup, as from a file: the bytes read are never
	// changed, so this needs no lock.
	r := new(repb.ActionResult)
	if proto.Unmarshal(b, r) != nil || !wellFormed(r) {
		return nil
	}
	return r
}

// index appends body, the deterministic encoding of k's result, to the
// index. A failure only costs reading k's file later, so it is not
// reported, and after one nothing is tried.
func (s *Disk) index(k *[32]byte, body []byte) {
	if len(body) > acxMax || !s.indexOn() {
		return
	}
	x := &s.acx
	x.mu.Lock()
	broken := x.broken
	x.mu.Unlock()
	if broken {
		return
	}
	rec := encodeIndexRecord(make([]byte, 0, acxHeader+len(body)+4), k, body)
	sh, i := s.lockShard(k)
	defer sh.mu.Unlock()
	if err := sh.append(s.indexPath(i), rec); err != nil {
		x.mu.Lock()
		x.broken = true
		x.mu.Unlock()
		return
	}
	if sh.m != nil {
		// Read already, so not read again until the next catch-up, which
		// applies this record once more.
		sh.m[*k] = rec[acxHeader : len(rec)-4]
	}
}

// lockShard returns k's shard, locked, and its number. A shard read before
// a GC this Disk has seen since is dropped: the GC may have removed what
// it holds, and rewritten its file under the descriptor appended to.
func (s *Disk) lockShard(k *[32]byte) (*acShard, int) {
	i := int(k[0] >> 4)
	sh := &s.acx.shards[i]
	sh.mu.Lock()
	if g := s.gen.Load(); sh.gen != g {
		sh.reset()
		sh.gen = g
	}
	return sh, i
}

// reset forgets what was read; sh.mu is held.
func (sh *acShard) reset() {
	if sh.w != nil {
		sh.w.Close()
		sh.w = nil
	}
	sh.m, sh.off, sh.ino, sh.size = nil, 0, 0, 0
}

// append writes rec with one write(2), so that a concurrent append by
// another process lands wholly before or after it; sh.mu is held. The
// descriptor stays open for the next: a build appends one record per
// action it runs, and a rewrite of the file (by a GC, which the build's
// lock excludes) drops it (lockShard, catchUp).
func (sh *acShard) append(path string, rec []byte) error {
	if sh.w == nil {
		w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if errors.Is(err, fs.ErrNotExist) {
			if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
				w, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			}
		}
		if err != nil {
			return err
		}
		sh.w = w
	}
	// Not sh.w.Write, which writes the rest of a short write with a
	// second write(2) that another process's record may precede.
	n, err := unix.Write(int(sh.w.Fd()), rec)
	if err == nil && n < len(rec) {
		err = io.ErrShortWrite
	}
	return err
}

// catchUp applies what was appended to the shard's file since it was last
// read, or all of it when the file was replaced; sh.mu is held.
func (sh *acShard) catchUp(path string) {
	if sh.m == nil {
		sh.m = map[[32]byte][]byte{}
	}
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil || (st.Ino == sh.ino && st.Size == sh.size) {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return
	}
	if st.Ino != sh.ino || st.Size < sh.off {
		// Rewritten, or cut in place: what was read may be gone.
		sh.ino, sh.off, sh.size = st.Ino, 0, 0
		clear(sh.m)
		if sh.w != nil {
			// Appends go to the file now under the name.
			sh.w.Close()
			sh.w = nil
		}
	}
	if st.Size <= sh.off {
		sh.size = st.Size
		return
	}
	b := make([]byte, st.Size-sh.off)
	n, err := f.ReadAt(b, sh.off)
	if err != nil && err != io.EOF {
		return
	}
	sh.size = sh.off + int64(n)
	sh.off += int64(decodeIndex(b[:n], sh.m))
}

func encodeIndexRecord(b []byte, k *[32]byte, body []byte) []byte {
	start := len(b)
	b = append(b, acxMagic...)
	b = append(b, k[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
	b = append(b, body...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// What checkIndexRecord found at the start of a buffer.
const (
	recWhole = iota // a record that checks
	recShort        // the start of one, cut off by the buffer's end
	recBad          // no record
)

// checkIndexRecord reports whether b starts with a whole record, and its
// length if so.
func checkIndexRecord(b []byte) (int, int) {
	if len(b) < len(acxMagic) {
		if string(b) == acxMagic[:len(b)] {
			return 0, recShort
		}
		return 0, recBad
	}
	if string(b[:len(acxMagic)]) != acxMagic {
		return 0, recBad
	}
	if len(b) < acxHeader {
		return 0, recShort
	}
	n := binary.LittleEndian.Uint32(b[acxHeader-4:])
	if n > acxMax {
		return 0, recBad
	}
	end := acxHeader + int(n)
	if len(b) < end+4 {
		return 0, recShort
	}
	if crc32.Checksum(b[:end], castagnoli) != binary.LittleEndian.Uint32(b[end:]) {
		return 0, recBad
	}
	return end + 4, recWhole
}

// decodeIndex applies the records of b to m, later ones winning, and
// returns how many bytes it consumed: up to a short record no whole one
// follows, which the next read starts at. The values are slices of b.
func decodeIndex(b []byte, m map[[32]byte][]byte) int {
	i := 0
	for i < len(b) {
		n, what := checkIndexRecord(b[i:])
		switch what {
		case recWhole:
			m[[32]byte(b[i+len(acxMagic):])] = b[i+acxHeader : i+n-4]
			i += n
		case recBad:
			i = nextMagic(b, i+1)
		case recShort:
			j := nextWhole(b, i+1)
			if j < 0 {
				return i
			}
			i = j
		}
	}
	return i
}

// nextMagic returns where the first magic at or after from starts, or
// where the tail too short to hold one does (it may start one).
func nextMagic(b []byte, from int) int {
	if j := bytes.Index(b[from:], []byte(acxMagic)); j >= 0 {
		return from + j
	}
	return max(from, len(b)-len(acxMagic)+1)
}

// nextWhole returns where the first whole record at or after from starts,
// or -1.
func nextWhole(b []byte, from int) int {
	for j := nextMagic(b, from); j < len(b); j = nextMagic(b, j+1) {
		if _, what := checkIndexRecord(b[j:]); what == recWhole {
			return j
		}
	}
	return -1
}

// indexOn reports whether the index may be used: its stamp is the store's
// gcgen (both missing in a store never collected).
func (s *Disk) indexOn() bool {
	g := s.gen.Load()
	x := &s.acx
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.decided && x.gen == g {
		return x.on
	}
	s.mu.Lock()
	want := s.seenGCGen
	s.mu.Unlock()
	x.decided, x.gen = true, g
	dir := filepath.Join(s.dir, acxDir)
	b, err := os.ReadFile(filepath.Join(dir, acxStamp))
	switch {
	case err == nil:
		x.on = string(b) == want
	case errors.Is(err, fs.ErrNotExist):
		x.on = want == "" || adoptIndex(dir, want)
	default:
		x.on = false
	}
	return x.on
}

// adoptIndex stamps an index that has no stamp and no shards with the
// store's gcgen: a store an older lego collected, first used by this one.
// An empty index cannot disagree with ac/, and the build's shared lock
// keeps GC away meanwhile.
func adoptIndex(dir, gen string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	for _, e := range ents {
		if len(e.Name()) == 1 {
			return false // a shard, written by a lego since collected by an older one
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false
	}
	return writeFileAtomic(filepath.Join(dir, acxStamp), []byte(gen)) == nil
}

// staleIndex makes every Disk ignore the index until rewriteIndex stamps
// it again, before GC or Verify removes anything: one that dies midway
// must not leave an index naming what it removed.
func (s *Disk) staleIndex() error {
	dir := filepath.Join(s.dir, acxDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, acxStamp), []byte(acxStale)); err != nil {
		return err
	}
	s.acx.mu.Lock()
	s.acx.decided = false
	s.acx.mu.Unlock()
	return nil
}

// rewriteIndex replaces the index with exactly live (key -> deterministic
// ActionResult: what each file under ac/ still holds), under the store's
// exclusive lock, and stamps it with gen, the gcgen the caller writes
// next. Taking the files' results, not the latest records, keeps the index
// to the results whose blobs GC kept: a record and a file of one key can
// differ, as when two builds stored a result for it at once.
func (s *Disk) rewriteIndex(live map[[32]byte][]byte, gen string) error {
	var bufs [recShards][]byte
	for k, b := range live {
		if len(b) <= acxMax {
			i := k[0] >> 4
			bufs[i] = encodeIndexRecord(bufs[i], &k, b)
		}
	}
	if err := os.MkdirAll(filepath.Join(s.dir, acxDir), 0o755); err != nil {
		return err
	}
	for i := range s.acx.shards {
		sh := &s.acx.shards[i]
		sh.mu.Lock()
		sh.reset()
		err := writeFileAtomic(s.indexPath(i), bufs[i])
		sh.mu.Unlock()
		if err != nil {
			return err
		}
	}
	if err := writeFileAtomic(filepath.Join(s.dir, acxDir, acxStamp), []byte(gen)); err != nil {
		return err
	}
	s.acx.mu.Lock()
	s.acx.decided, s.acx.broken = false, false
	s.acx.mu.Unlock()
	return nil
}
