package cas

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"sync"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/protobuf/proto"
)

// An action-cache entry is
//
//	0x00 "LA1" | crc32c of the rest, u32 | ActionResult, deterministic
//
// so that an entry cut short, grown or with a flipped bit is a miss: a
// protobuf parses many damaged byte strings. The leading zero byte is no
// protobuf tag, which tells these from the bare ActionResults of stores
// written before, still read and rewritten on first use.
const acMagic = "\x00LA1"

func encodeAC(b []byte) []byte {
	out := make([]byte, 0, len(acMagic)+4+len(b))
	out = append(out, acMagic...)
	out = binary.LittleEndian.AppendUint32(out, crc32.Checksum(b, castagnoli))
	return append(out, b...)
}

// decodeAC parses an entry; ok is false for a damaged one. A bare
// ActionResult (legacy) is taken only when it is exactly what lego wrote
// for it: its deterministic encoding, every digest well formed.
func decodeAC(b []byte) (r *repb.ActionResult, legacy, ok bool) {
	r = new(repb.ActionResult)
	if len(b) == 0 {
		return nil, false, false // lego never wrote one: executors always store stdout
	}
	if b[0] == acMagic[0] {
		body := b[min(len(b), len(acMagic)+4):]
		if len(b) < len(acMagic)+4 || string(b[:len(acMagic)]) != acMagic ||
			crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(acMagic):]) {
			return nil, false, false
		}
		if proto.Unmarshal(body, r) != nil || !wellFormed(r) {
			return nil, false, false
		}
		return r, false, true
	}
	if proto.Unmarshal(b, r) != nil || !wellFormed(r) {
		return nil, true, false
	}
	again, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil || !bytes.Equal(again, b) {
		return nil, true, false
	}
	return r, true, true
}

// acBody returns the deterministic ActionResult of an entry decodeAC took.
func acBody(b []byte, legacy bool) []byte {
	if legacy {
		return b
	}
	return b[len(acMagic)+4:]
}

// GetActionResult returns the cached result for the action digest key, or
// (nil, Miss, nil) when there is none: from the index (acindex.go) when it
// has it, else from the entry's file. A damaged entry is removed and
// reported absent; an entry in the older format is rewritten.
func (s *Disk) GetActionResult(_ context.Context, key *repb.Digest) (*repb.ActionResult, Layer, error) {
	if err := check(key); err != nil {
		return nil, Miss, err
	}
	k := sumOf(key.Hash)
	if r := s.indexed(&k); r != nil {
		return r, OnDisk, nil
	}
	p := s.acPath(key.Hash)
	b, err := readSmall(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, Miss, nil
		}
		return nil, Miss, err
	}
	r, legacy, ok := decodeAC(b)
	if !ok {
		os.Remove(p)
		return nil, Miss, nil
	}
	if legacy {
		s.writeAtomic(p, encodeAC(b), 0o644) // a failure leaves the old entry, still good
	}
	// Indexed, so that the next build need not open the file: a store an
	// older lego wrote, or one whose records were lost, fills in as used.
	// A concurrent Put of another result for key may land in the index
	// before this one: both are results of the action, and a GC, which
	// keeps the blobs of the file's alone, rewrites the index from the
	// files (ignoring it from before it removes anything).
	s.index(&k, acBody(b, legacy))
	return r, OnDisk, nil
}

// PutActionResult records r as the result of the action key, replacing
// any previous entry.
func (s *Disk) PutActionResult(_ context.Context, key *repb.Digest, r *repb.ActionResult, _ Origin) error {
	if err := check(key); err != nil {
		return err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		return err
	}
	if err := s.writeAtomic(s.acPath(key.Hash), encodeAC(b), 0o644); err != nil {
		return err
	}
	// After the file: an indexed result always has one for GC to go by.
	k := sumOf(key.Hash)
	s.index(&k, b)
	return nil
}

// wellFormed rejects results whose digests are malformed: protobuf parses
// many garbage byte strings, but not into valid sha256 digests.
func wellFormed(r *repb.ActionResult) bool {
	ok := true
	forEachDigest(r, func(d *repb.Digest) {
		if check(d) != nil {
			ok = false
		}
	})
	return ok
}

// forEachDigest calls fn for every blob digest r names directly (output
// files, trees, output directory roots, stdout, stderr).
func forEachDigest(r *repb.ActionResult, fn func(*repb.Digest)) {
	for _, f := range r.OutputFiles {
		if f.Digest != nil {
			fn(f.Digest)
		}
	}
	for _, d := range r.OutputDirectories {
		if d.TreeDigest != nil {
			fn(d.TreeDigest)
		}
		if d.RootDirectoryDigest != nil {
			fn(d.RootDirectoryDigest)
		}
	}
	if r.StdoutDigest != nil {
		fn(r.StdoutDigest)
	}
	if r.StderrDigest != nil {
		fn(r.StderrDigest)
	}
}

// readSmall reads a file expected to be small (an action-cache entry) with
// open, read and close only: a null build reads one per action, and
// os.ReadFile's extra fstat and EOF read are a third of its syscalls.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	n, err := f.Read(buf)
	if err != nil && err != io.EOF {
		return nil, err
	}
	if n < len(buf) {
		// A regular file reads short only at its end.
		return append([]byte(nil), buf[:n]...), nil
	}
	rest, err := io.ReadAll(f)
	return append(append([]byte(nil), buf...), rest...), err
}

var readBufs = sync.Pool{New: func() any { b := make([]byte, 4096); return &b }}
