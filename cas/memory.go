package cas

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"github.com/dgraph-io/ristretto/v2"
	"google.golang.org/protobuf/proto"
)

const (
	// memBlobMax is the largest blob the memory layer keeps: protos
	// (Directory, Command, Tree) and small outputs are re-read often.
	memBlobMax = 64 << 10
	memACCost  = 64 << 20
	memBlobCos = 32 << 20
)

// Memory keeps small blobs and action results in memory over another
// store: a null build reads every action's result and input directories,
// and most of them again in the next phase. Writes go through to the
// store below.
//
// A held blob is served only while the store below, when Versioned, still
// has the same copy of it (one stat), and a held blob or result only
// while its Generation is unchanged: a GC of another process or a write
// through a hardlink is then seen, and the copy below read and verified
// again.
type Memory struct {
	Store
	ver Versioned // nil: the store below never changes under us

	acMem   *ristretto.Cache[string, *acEntry]
	blobMem *ristretto.Cache[string, *blobEntry]
}

type acEntry struct {
	gen uint64
	r   *repb.ActionResult
}

type blobEntry struct {
	gen uint64
	b   []byte
	v   Version
}

// NewMemory puts a memory layer over s. Close releases it.
func NewMemory(s Store) (*Memory, error) {
	m := &Memory{Store: s}
	m.ver, _ = s.(Versioned)
	var err error
	if m.acMem, err = ristretto.NewCache(&ristretto.Config[string, *acEntry]{
		NumCounters: 1 << 20, MaxCost: memACCost, BufferItems: 64, KeyToHash: hashKey,
	}); err != nil {
		return nil, err
	}
	if m.blobMem, err = ristretto.NewCache(&ristretto.Config[string, *blobEntry]{
		NumCounters: 1 << 18, MaxCost: memBlobCos, BufferItems: 64, KeyToHash: hashKey,
	}); err != nil {
		m.acMem.Close()
		return nil, err
	}
	return m, nil
}

// hashKey feeds ristretto the hex hash itself: it is already uniformly
// distributed, so parsing two 64-bit halves beats hashing the string.
func hashKey(k string) (uint64, uint64) {
	if len(k) < 32 {
		return 0, 0
	}
	a, _ := strconv.ParseUint(k[:16], 16, 64)
	b, _ := strconv.ParseUint(k[16:32], 16, 64)
	return a, b
}

// Close releases the memory; the store below stays open.
func (m *Memory) Close() {
	m.acMem.Close()
	m.blobMem.Close()
}

func (m *Memory) gen() uint64 {
	if m.ver == nil {
		return 0
	}
	return m.ver.Generation()
}

// Get returns the blob's content, verified against d.
func (m *Memory) Get(d *repb.Digest) ([]byte, error) {
	b, shared, err := m.get(d)
	if shared {
		// The memory layer keeps b; the caller gets its own copy.
		b = bytes.Clone(b)
	}
	return b, err
}

// GetProto reads the blob d and unmarshals it into m.
func (m *Memory) GetProto(d *repb.Digest, msg proto.Message) error {
	b, _, err := m.get(d)
	if err != nil {
		return err
	}
	// Unmarshal copies what it keeps, so a shared b is safe here.
	if err := proto.Unmarshal(b, msg); err != nil {
		return fmt.Errorf("blob %s: %w", Key(d), err)
	}
	return nil
}

// get returns the content of d; shared is true when b is also held in
// memory and must not be modified.
func (m *Memory) get(d *repb.Digest) (b []byte, shared bool, err error) {
	if d == nil || d.SizeBytes > memBlobMax || isEmpty(d) || check(d) != nil {
		b, err = m.Store.Get(d)
		return b, false, err
	}
	gen := m.gen()
	if e, ok := m.blobMem.Get(d.Hash); ok && e.gen == gen && int64(len(e.b)) == d.SizeBytes {
		if m.ver == nil {
			return e.b, true, nil
		}
		if v, ok := m.ver.BlobVersion(d); ok && v == e.v {
			return e.b, true, nil
		}
	}
	var v Version
	if m.ver != nil {
		b, v, err = m.ver.GetVersion(d)
	} else {
		b, err = m.Store.Get(d)
	}
	if err != nil {
		m.blobMem.Del(d.Hash)
		return nil, false, err
	}
	// As in FileCache, a file modified within racyWindow could change
	// again without moving its mtime, so it is not kept yet.
	if m.ver != nil && time.Since(time.Unix(0, v.mtime)) < racyWindow {
		return b, false, nil
	}
	m.blobMem.Set(d.Hash, &blobEntry{gen: gen, b: b, v: v}, int64(len(b)))
	return b, true, nil
}

// GetActionResult serves results from memory after their first read.
func (m *Memory) GetActionResult(ctx context.Context, key *repb.Digest) (*repb.ActionResult, Layer, error) {
	if err := check(key); err != nil {
		return nil, Miss, err
	}
	gen := m.gen()
	if e, ok := m.acMem.Get(key.Hash); ok && e.gen == gen {
		return e.r, InMemory, nil
	}
	r, l, err := m.Store.GetActionResult(ctx, key)
	if err != nil || r == nil {
		m.acMem.Del(key.Hash)
		return r, l, err
	}
	m.acMem.Set(key.Hash, &acEntry{gen: gen, r: r}, resultCost(r))
	return r, l, nil
}

// PutActionResult writes r below and keeps a copy, so that the caller may
// go on modifying r.
func (m *Memory) PutActionResult(ctx context.Context, key *repb.Digest, r *repb.ActionResult, made Origin) error {
	gen := m.gen()
	if err := m.Store.PutActionResult(ctx, key, r, made); err != nil {
		m.acMem.Del(key.Hash)
		return err
	}
	c := proto.Clone(r).(*repb.ActionResult)
	m.acMem.Set(key.Hash, &acEntry{gen: gen, r: c}, resultCost(c))
	return nil
}

// resultCost is about what r holds in memory, for the layer's bound:
// counted, not measured, since a null build stores every result it reads.
func resultCost(r *repb.ActionResult) int64 {
	n := 256 + 96*len(r.OutputFiles) + 160*len(r.OutputDirectories)
	for _, f := range r.OutputFiles {
		n += len(f.Path)
	}
	return int64(n)
}
