package cas

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"sync"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/protobuf/proto"
)

// GetActionResult returns the cached result for the action digest key, or
// (nil, Miss, nil) when there is none. An entry that does not parse is
// removed and reported absent.
func (s *Disk) GetActionResult(_ context.Context, key *repb.Digest) (*repb.ActionResult, Layer, error) {
	if err := check(key); err != nil {
		return nil, Miss, err
	}
	p := s.acPath(key.Hash)
	b, err := readSmall(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, Miss, nil
		}
		return nil, Miss, err
	}
	r := new(repb.ActionResult)
	if err := proto.Unmarshal(b, r); err != nil || !wellFormed(r) {
		os.Remove(p)
		return nil, Miss, nil
	}
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
	return s.writeAtomic(s.acPath(key.Hash), b, 0o644)
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
