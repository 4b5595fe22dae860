package cas

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/protobuf/proto"
)

// GCStats reports what GC did. Sizes are in bytes, as counted by Size.
type GCStats struct {
	Before, After                int64
	RemovedBlobs, RemovedActions int
}

// tmpMaxAge is how old a leftover in tmp/ must be before GC removes it.
const tmpMaxAge = time.Hour

// walkStore calls fn for every file under root/<shard>/ named by a hash.
func walkStore(root string, fn func(hash, path string, size, mtime int64)) error {
	shards, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, sh := range shards {
		if !sh.IsDir() || len(sh.Name()) != 2 {
			continue
		}
		dir := filepath.Join(root, sh.Name())
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if !validHash(e.Name()) || !e.Type().IsRegular() {
				continue
			}
			info, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // removed meanwhile
				}
				return err
			}
			fn(e.Name(), filepath.Join(dir, e.Name()), info.Size(), info.ModTime().UnixNano())
		}
	}
	return nil
}

// Size returns the bytes held by blobs, executable variants and action
// results (not journals or temp files).
func (s *Disk) Size() (int64, error) {
	var total int64
	add := func(_, _ string, size, _ int64) { total += size }
	for _, root := range []string{s.casDir, s.casxDir, s.acDir} {
		if err := walkStore(root, add); err != nil {
			return 0, err
		}
	}
	return total, nil
}

type gcItem struct {
	hash       string
	size, last int64 // last use, unix nanos
	ac         bool
}

// GC evicts least recently used entries until Size() <= maxSize. The
// caller should hold LockExclusive, so no build is using what goes.
//
// An action result's last use is the later of its latest RecordUse and its
// file's mtime (a rewrite is a use too). A blob's is the later of its mtime
// and the last use of every action result naming it (outputs, stdout,
// stderr, Trees and the files in them). So a blob never goes before a
// result that names it, and on a tie results go first: a kept result
// always has its outputs. Leftovers older than an hour in tmp/ are
// removed, the journals are folded into one, and the action-cache index
// is rewritten with the results kept.
func (s *Disk) GC(maxSize int64) (GCStats, error) {
	var st GCStats
	s.cleanTmp(time.Now().Add(-tmpMaxAge))
	uses, journals, err := s.readJournals()
	if err != nil {
		return st, err
	}
	if err := s.staleIndex(); err != nil {
		return st, err
	}

	var total, corrupt int64
	blobs := map[string]*gcItem{}
	if err := walkStore(s.casDir, func(h, _ string, size, mtime int64) {
		total += size
		blobs[h] = &gcItem{hash: h, size: size, last: mtime}
	}); err != nil {
		return st, err
	}
	if err := walkStore(s.casxDir, func(h, _ string, size, mtime int64) {
		total += size
		if b := blobs[h]; b != nil {
			b.size += size // removed with its blob
		} else {
			blobs[h] = &gcItem{hash: h, size: size, last: mtime}
		}
	}); err != nil {
		return st, err
	}
	var items []*gcItem
	live := map[[32]byte][]byte{} // the index to write
	if err := walkStore(s.acDir, func(h, p string, size, mtime int64) {
		r, body, ok := readACFile(p)
		if !ok {
			os.Remove(p)
			corrupt += size
			st.RemovedActions++
			return
		}
		total += size
		last := max(mtime, uses[h])
		items = append(items, &gcItem{hash: h, size: size, last: last, ac: true})
		if r == nil {
			return
		}
		live[sumOf(h)] = body
		s.forEachBlobOf(r, func(d *repb.Digest) {
			if b := blobs[d.Hash]; b != nil && b.last < last {
				b.last = last
			}
		})
	}); err != nil {
		return st, err
	}
	st.Before = total + corrupt

	for _, b := range blobs {
		items = append(items, b)
	}
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if a.last != b.last {
			return a.last < b.last
		}
		if a.ac != b.ac {
			return a.ac
		}
		return a.hash < b.hash
	})
	removed, removedBlobs := map[string]bool{}, map[string]bool{}
	for _, it := range items {
		if total <= maxSize {
			break
		}
		if it.ac {
			if err := os.Remove(s.acPath(it.hash)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return st, err
			}
			removed[it.hash] = true
			delete(live, sumOf(it.hash))
			st.RemovedActions++
		} else {
			if it.hash == emptyHash {
				continue
			}
			s.removeBlob(it.hash)
			removedBlobs[it.hash] = true
			st.RemovedBlobs++
		}
		total -= it.size
	}
	st.After = total

	keep := map[string]int64{}
	for _, it := range items {
		if it.ac && !removed[it.hash] {
			if u, ok := uses[it.hash]; ok {
				keep[it.hash] = u
			}
		}
	}
	if err := s.foldJournals(keep, journals); err != nil {
		return st, err
	}
	// The record keeps only the files still here.
	rec := s.loadRecord()
	for k := range rec {
		h := hex.EncodeToString(k.sum[:])
		if blobs[h] == nil || removedBlobs[h] {
			delete(rec, k)
		}
	}
	if err := s.rewriteRecord(rec); err != nil {
		return st, err
	}
	gen := newGCGen()
	if err := s.rewriteIndex(live, gen); err != nil {
		return st, err
	}
	return st, s.bumpGCGen(gen)
}

// readACFile parses an action-cache file, returning its result decoded
// and as body (acBody). ok is false only for a corrupt entry; r is nil
// (and ok true) when it could not be read at all, so an I/O error never
// deletes an entry.
func readACFile(p string) (r *repb.ActionResult, body []byte, ok bool) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, nil, true
	}
	r, legacy, ok := decodeAC(b)
	if !ok {
		return nil, nil, false
	}
	return r, acBody(b, legacy), true
}

// forEachBlobOf calls fn for every blob r references, including the files
// and directories inside its output Trees.
func (s *Disk) forEachBlobOf(r *repb.ActionResult, fn func(*repb.Digest)) {
	forEachDigest(r, fn)
	for _, od := range r.OutputDirectories {
		if od.TreeDigest == nil {
			continue
		}
		t, ok := s.readTree(od.TreeDigest)
		if !ok {
			continue
		}
		for _, dir := range append([]*repb.Directory{t.Root}, t.Children...) {
			if dir == nil {
				continue
			}
			for _, f := range dir.Files {
				if f.Digest != nil && validHash(f.Digest.Hash) {
					fn(f.Digest)
				}
			}
			// Executors may also have stored each Directory on its own.
			if b, err := (proto.MarshalOptions{Deterministic: true}).Marshal(dir); err == nil {
				fn(DigestOf(b))
			}
		}
	}
}

// readTree reads and verifies a Tree blob, bypassing the memory layer.
func (s *Disk) readTree(d *repb.Digest) (*repb.Tree, bool) {
	b, err := os.ReadFile(s.blobPath(d.Hash))
	if err != nil {
		return nil, false
	}
	sum := sha256.Sum256(b)
	if !sumMatches(sum[:], d.Hash) {
		return nil, false
	}
	t := new(repb.Tree)
	if proto.Unmarshal(b, t) != nil {
		return nil, false
	}
	return t, true
}

// cleanTmp removes entries of tmp/ last modified before cutoff: leftovers
// of killed processes (builds hold the shared lock, so none is running).
func (s *Disk) cleanTmp(cutoff time.Time) {
	ents, err := os.ReadDir(s.tmpDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if procDirName(e.Name()) {
			continue // a process's: sweepTmp goes by its lock
		}
		info, err := e.Info()
		if err == nil && info.ModTime().Before(cutoff) {
			RemoveAll(filepath.Join(s.tmpDir, e.Name()))
		}
	}
}
