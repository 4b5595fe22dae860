package cas

import (
	"context"
	"fmt"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/protobuf/proto"
)

// Store is the content-addressed store and action cache as a build sees
// it. Implementations stack, each answering what it can and asking the
// one below for the rest, as bazel-remote's cache layers and Buildbarn's
// BlobAccess do: Memory over Disk, or Memory over a remote tier
// (cas/remote.Tier) that keeps a Disk of its own.
//
// Blob methods read and write this machine's copy; a blob that only a
// remote layer holds is brought here by Fetch. Reads verify digests.
type Store interface {
	// Has reports whether the blob can be read here, or, in a store that
	// leaves outputs on a server (a lazy remote tier), that it is known
	// to be there and Fetch will bring it. A copy here is checked (Check).
	Has(d *repb.Digest) bool
	// Check reports whether the blob is here and sound, with executable
	// its executable copy too: nil, or an error wrapping ErrNotFound, or
	// ErrCorrupt when a bad copy was found and evicted. A copy whose file
	// is unchanged since it was last known good costs a stat; another is
	// hashed. A build checks the outputs of a cache hit before it links
	// them anywhere.
	Check(d *repb.Digest, executable bool) error
	// Get returns the blob, verified. Errors wrap ErrNotFound or ErrCorrupt.
	Get(d *repb.Digest) ([]byte, error)
	// GetProto reads the blob d and unmarshals it into m.
	GetProto(d *repb.Digest, m proto.Message) error
	// Put stores b and returns its digest.
	Put(b []byte) (*repb.Digest, error)
	// PutFile stores the content of the file at path, leaving it as is.
	PutFile(path string) (*repb.Digest, error)
	// BlobPath is the path of the stored blob (a 0555 copy when
	// executable), unhashed; the file must not be modified.
	BlobPath(d *repb.Digest, executable bool) (string, error)
	// Link materializes the blob at dst, as a hardlink where it can.
	Link(d *repb.Digest, executable bool, dst string) error
	// Fetch brings the blobs ds here from the layer that holds them; it
	// fails when none does.
	Fetch(ctx context.Context, ds []*repb.Digest) error

	// GetActionResult returns the cached result of the action key and the
	// layer that held it, or (nil, Miss, nil). The result is shared:
	// treat it as read-only. The output files of a Remote hit may be on
	// the server only (a lazy tier); reads and Fetch bring them.
	GetActionResult(ctx context.Context, key *repb.Digest) (*repb.ActionResult, Layer, error)
	// PutActionResult records r as the result of key in every layer that
	// keeps results. A remote tier uploads a result made Here when it was
	// opened to; one made Remotely is cached on its server already.
	PutActionResult(ctx context.Context, key *repb.Digest, r *repb.ActionResult, made Origin) error
	// RecordUse notes that the results of keys were used, for GC's
	// least-recently-used order.
	RecordUse(keys []*repb.Digest) error
}

// Local is a store on this machine's filesystem, which executors stage
// inputs from and ingest outputs into: a Disk, or a layer over one.
type Local interface {
	Store
	// TempDir creates a private directory on the store's filesystem.
	TempDir(prefix string) (string, error)
	// IngestFile moves the file at path into the store.
	IngestFile(path string) (*repb.Digest, error)
}

// Origin is where an action result being stored was made.
type Origin uint8

const (
	Here     Origin = iota // by an executor on this machine
	Remotely               // by a remote executor
)

// Layer is where a cached action result was found.
type Layer uint8

const (
	Miss Layer = iota
	InMemory
	OnDisk
	Remote
)

func (l Layer) String() string {
	switch l {
	case InMemory:
		return "memory"
	case OnDisk:
		return "disk"
	case Remote:
		return "remote"
	}
	return "miss"
}

// Versioned is a store whose blobs can change under a memory layer: a GC
// of another process removes them, a write through a hardlink modifies
// one. Memory asks it before it trusts what it holds.
type Versioned interface {
	// GetVersion is Get, with the Version of the copy it read.
	GetVersion(d *repb.Digest) ([]byte, Version, error)
	// BlobVersion identifies the stored copy of d without reading it
	// (false: there is none).
	BlobVersion(d *repb.Digest) (Version, bool)
	// Generation changes whenever entries may have been removed.
	Generation() uint64
}

// Version identifies one version of a stored file.
type Version struct {
	ino                uint64
	size, mtime, ctime int64
}

// missingError is Fetch's error when no layer holds some blobs.
func missingError(missing []*repb.Digest) error {
	return fmt.Errorf("%d blob(s) are neither here nor on a remote cache, e.g. %s", len(missing), Key(missing[0]))
}

// TreeFiles lists the digests of the files in t.
func TreeFiles(t *repb.Tree) []*repb.Digest {
	var ds []*repb.Digest
	for _, dir := range append([]*repb.Directory{t.Root}, t.Children...) {
		for _, f := range dir.GetFiles() {
			ds = append(ds, f.Digest)
		}
	}
	return ds
}
