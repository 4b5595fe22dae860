package cas

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
)

// A usage journal is a sequence of records, appended with one write each:
//
//	"LGU1" | unix nanos int64 | n uint32 | n raw sha256 hashes | crc32c
//
// A record cut short (a killed process, a full disk) fails its checksum,
// and reading that file stops there.
const (
	journalMagic  = "LGU1"
	journalHeader = 4 + 8 + 4
	journalExt    = ".log"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func appendRecord(buf []byte, when int64, hashes [][32]byte) []byte {
	start := len(buf)
	buf = append(buf, journalMagic...)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(when))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(hashes)))
	for i := range hashes {
		buf = append(buf, hashes[i][:]...)
	}
	return binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf[start:], castagnoli))
}

// RecordUse notes that the actions keys were used now; GC keeps recently
// used action results (and the blobs they name) over older ones.
func (s *Disk) RecordUse(keys []*repb.Digest) error {
	if len(keys) == 0 {
		return nil
	}
	hashes := make([][32]byte, len(keys))
	for i, k := range keys {
		if err := check(k); err != nil {
			return err
		}
		hex.Decode(hashes[i][:], []byte(k.Hash))
	}
	rec := appendRecord(make([]byte, 0, journalHeader+32*len(keys)+4), time.Now().UnixNano(), hashes)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal == "" {
		s.journal = newJournalName(s.usageDir)
	}
	// Opened per call, so that a journal GC folded away is not written to
	// after its unlink.
	f, err := os.OpenFile(s.journal, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(rec)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// Records after a partial one would be unreadable: start afresh.
		s.journal = ""
		return fmt.Errorf("usage journal: %w", err)
	}
	return nil
}

func newJournalName(dir string) string {
	var r [6]byte
	rand.Read(r[:])
	return filepath.Join(dir, fmt.Sprintf("%d-%d-%x%s", time.Now().UnixNano(), os.Getpid(), r, journalExt))
}

// readJournals returns the latest recorded use of each key, and the
// journal files read.
func (s *Disk) readJournals() (map[string]int64, []string, error) {
	ents, err := os.ReadDir(s.usageDir)
	if err != nil {
		return nil, nil, err
	}
	uses := map[string]int64{}
	var files []string
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), journalExt) {
			continue
		}
		p := filepath.Join(s.usageDir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		files = append(files, p)
		parseJournal(b, func(when int64, h []byte) {
			k := hex.EncodeToString(h)
			if when > uses[k] {
				uses[k] = when
			}
		})
	}
	return uses, files, nil
}

// parseJournal calls fn for every hash of every intact record in b.
func parseJournal(b []byte, fn func(when int64, hash []byte)) {
	for len(b) >= journalHeader+4 {
		if string(b[:4]) != journalMagic {
			return
		}
		when := int64(binary.LittleEndian.Uint64(b[4:]))
		n := int(binary.LittleEndian.Uint32(b[12:]))
		end := journalHeader + 32*n
		if n < 0 || end+4 > len(b) || end < journalHeader {
			return
		}
		if crc32.Checksum(b[:end], castagnoli) != binary.LittleEndian.Uint32(b[end:]) {
			return
		}
		for i := journalHeader; i < end; i += 32 {
			fn(when, b[i:i+32])
		}
		b = b[end+4:]
	}
}

// foldJournals replaces the journal files read by one holding the last
// use of each key in keep, so journals stay proportional to the cache.
func (s *Disk) foldJournals(keep map[string]int64, read []string) error {
	type use struct {
		when int64
		hash [32]byte
	}
	all := make([]use, 0, len(keep))
	for k, when := range keep {
		var u use
		u.when = when
		hex.Decode(u.hash[:], []byte(k))
		all = append(all, u)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].when < all[j].when })
	var buf []byte
	for i := 0; i < len(all); {
		// One record per distinct time: keys of one RecordUse stay together.
		j := i
		var hashes [][32]byte
		for ; j < len(all) && all[j].when == all[i].when; j++ {
			hashes = append(hashes, all[j].hash)
		}
		buf = appendRecord(buf, all[i].when, hashes)
		i = j
	}
	if len(buf) > 0 {
		if err := s.writeAtomic(newJournalName(s.usageDir), buf, 0o644); err != nil {
			return err
		}
	}
	for _, p := range read {
		os.Remove(p)
	}
	s.mu.Lock()
	s.journal = "" // it may have been among those removed
	s.mu.Unlock()
	return nil
}

// Collected names the store's last collection ("" if none): it changes
// whenever GC removed entries, so a build snapshot made before it keys
// every action again rather than trust results that may be gone.
func (s *Disk) Collected() string { return s.readGCGen() }

// readGCGen returns the content of dir/gcgen ("" if none).
func (s *Disk) readGCGen() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "gcgen"))
	return string(b)
}

// newGCGen returns a value for dir/gcgen that no GC wrote before.
func newGCGen() string {
	var r [8]byte
	rand.Read(r[:])
	return hex.EncodeToString(r[:])
}

// bumpGCGen writes v (newGCGen) to dir/gcgen, marking that a GC removed
// entries, so that every Disk on this directory drops its memory layer
// at its next LockShared.
func (s *Disk) bumpGCGen(v string) error {
	if err := s.writeAtomic(filepath.Join(s.dir, "gcgen"), []byte(v), 0o644); err != nil {
		return err
	}
	s.mu.Lock()
	s.seenGCGen = v
	s.mu.Unlock()
	s.gen.Add(1)
	return nil
}

// syncGCGen invalidates the memory layer if another Disk ran GC.
func (s *Disk) syncGCGen() {
	v := s.readGCGen()
	s.mu.Lock()
	defer s.mu.Unlock()
	if v != s.seenGCGen {
		s.seenGCGen = v
		s.gen.Add(1)
	}
}
