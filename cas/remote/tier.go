package remote

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/protobuf/proto"

	"github.com/legobuild/lego/cas"
)

// Tier is the remote layer of a store: this machine's Disk over an REAPI
// server. It answers from the Disk first and asks the server for the
// rest; what it hands out is verified by digest and written to the Disk
// first. When the server cannot be reached it warns once and turns itself
// off, so an outage costs a build nothing but its cache hits.
//
// In a lazy tier ("build without the bytes") a remote hit brings only
// its output trees: its files stay on the server until a read (Get,
// GetProto, BlobPath, Link) or Fetch needs them here.
type Tier struct {
	*cas.Disk
	client *Client
	o      TierOptions
	// lookups bounds the lookups on the network, which wait on the server
	// and not on this machine.
	lookups chan struct{}

	off    atomic.Bool
	warned sync.Once
	// repair holds the keys of results found with a corrupt blob: the
	// local rerun sends its blobs again even where the server says it has
	// them.
	repair sync.Map
}

// TierOptions configure a Tier.
type TierOptions struct {
	// Upload sends the results of actions run here to the server
	// (--remote_upload_local_results).
	Upload bool
	// Lazy leaves the files of remote hits on the server.
	Lazy bool
	// Warn reports outages and corrupt blobs to the user.
	Warn func(string)
	// Context bounds the fetches that blob reads make, which take none of
	// their own: the build's.
	Context context.Context
}

// NewTier puts local over client.
func NewTier(client *Client, local *cas.Disk, o TierOptions) *Tier {
	if o.Warn == nil {
		o.Warn = func(string) {}
	}
	if o.Context == nil {
		o.Context = context.Background()
	}
	return &Tier{Disk: local, client: client, o: o, lookups: make(chan struct{}, 8)}
}

// Up reports whether the remote tier is still in use.
func (t *Tier) Up() bool { return !t.off.Load() }

// Disable turns the tier off with the outage warning, e.g. when the
// server did not answer at the start of a build.
func (t *Tier) Disable(err error) { t.down(err) }

// down turns the tier off after an outage, warning once.
func (t *Tier) down(err error) {
	t.off.Store(true)
	t.warned.Do(func() {
		t.o.Warn(fmt.Sprintf("remote cache %s is unavailable, continuing with the local cache only: %v", t.client.target, err))
	})
}

// failed sorts a remote error: an outage turns the tier off; anything
// else is reported and the call counts as a miss.
func (t *Tier) failed(err error) {
	if IsOutage(err) {
		t.down(err)
		return
	}
	if t.Up() {
		t.o.Warn(err.Error())
	}
}

// Get reads a blob, fetching it first when only the server has it.
func (t *Tier) Get(d *repb.Digest) ([]byte, error) {
	if err := t.need(d); err != nil {
		return nil, err
	}
	return t.Disk.Get(d)
}

// GetVersion is Get for a memory layer above.
func (t *Tier) GetVersion(d *repb.Digest) ([]byte, cas.Version, error) {
	if err := t.need(d); err != nil {
		return nil, cas.Version{}, err
	}
	return t.Disk.GetVersion(d)
}

// GetProto reads a message, fetching it first when only the server has it.
func (t *Tier) GetProto(d *repb.Digest, m proto.Message) error {
	if err := t.need(d); err != nil {
		return err
	}
	return t.Disk.GetProto(d, m)
}

// BlobPath is the local path of a blob, fetched first when only the
// server has it.
func (t *Tier) BlobPath(d *repb.Digest, executable bool) (string, error) {
	if err := t.need(d); err != nil {
		return "", err
	}
	return t.Disk.BlobPath(d, executable)
}

// Link materializes a blob, fetched first when only the server has it.
func (t *Tier) Link(d *repb.Digest, executable bool, dst string) error {
	if err := t.need(d); err != nil {
		return err
	}
	return t.Disk.Link(d, executable, dst)
}

// need fetches d when it is not here (a lazy hit's file, or the output of
// a remote run). A copy here is not hashed again: reads hash what they
// read, and a build checks its hits (Check) before it links them.
func (t *Tier) need(d *repb.Digest) error {
	if d == nil {
		return nil
	}
	if _, err := t.Disk.BlobPath(d, false); err == nil {
		return nil
	}
	return t.Fetch(t.o.Context, []*repb.Digest{d})
}

// Fetch brings blobs here, verified. It is tried even after an outage
// turned lookups off: in a lazy build the blobs are on the server only,
// and one slow call must not fail every later fetch.
func (t *Tier) Fetch(ctx context.Context, ds []*repb.Digest) error {
	if err := t.client.Download(ctx, t.Disk, ds); err != nil {
		return fmt.Errorf("remote %s: %w", t.client.target, err)
	}
	return nil
}

// GetActionResult answers from the Disk when the result and all its
// outputs are here, and asks the server otherwise. A remote hit has its
// output trees written here; in a tier that is not lazy its files too,
// and the result itself, so that the next build hits here. A corrupt blob
// makes the result a miss, so that the action runs here and its upload
// replaces the bad copy.
func (t *Tier) GetActionResult(ctx context.Context, key *repb.Digest) (*repb.ActionResult, cas.Layer, error) {
	// A local entry that cannot be read is a local miss: the server may
	// still have the result.
	if r, l, err := t.Disk.GetActionResult(ctx, key); err == nil && r != nil && t.local(r) {
		return r, l, nil
	}
	select {
	case t.lookups <- struct{}{}:
	case <-ctx.Done():
		return nil, cas.Miss, ctx.Err()
	}
	r := t.lookup(ctx, key)
	<-t.lookups
	if r == nil {
		return nil, cas.Miss, nil
	}
	if !t.o.Lazy {
		if err := t.Disk.PutActionResult(ctx, key, r, cas.Remotely); err != nil {
			return nil, cas.Miss, err
		}
	}
	return r, cas.Remote, nil
}

// local reports whether every output of r is on the Disk.
func (t *Tier) local(r *repb.ActionResult) bool {
	blobs, err := t.outputBlobs(r)
	if err != nil {
		return false
	}
	for _, d := range blobs {
		if !t.Disk.Has(d) {
			return false
		}
	}
	return true
}

// lookup returns the server's result for key, with its trees here and
// its files here or (lazy) known to be on the server, or nil.
func (t *Tier) lookup(ctx context.Context, key *repb.Digest) *repb.ActionResult {
	if !t.Up() {
		return nil
	}
	r, err := t.client.GetActionResult(ctx, key)
	if err != nil {
		t.failed(err)
		return nil
	}
	if r == nil || r.ExitCode != 0 {
		return nil
	}
	var trees []*repb.Digest
	for _, d := range r.OutputDirectories {
		trees = append(trees, d.TreeDigest)
	}
	if err := t.client.Download(ctx, t.Disk, trees); err != nil {
		t.lookupFailed(key, err)
		return nil
	}
	blobs, err := t.outputBlobs(r)
	if err != nil {
		t.lookupFailed(key, err)
		return nil
	}
	if !t.o.Lazy {
		err = t.client.Download(ctx, t.Disk, blobs)
	} else {
		var missing []*repb.Digest
		if missing, err = t.client.FindMissing(ctx, dedupe(blobs)); err == nil && len(missing) > 0 {
			return nil
		}
	}
	if err != nil {
		t.lookupFailed(key, err)
		return nil
	}
	return r
}

func (t *Tier) lookupFailed(key *repb.Digest, err error) {
	if errors.Is(err, cas.ErrCorrupt) {
		t.repair.Store(key.Hash, true)
		t.o.Warn(fmt.Sprintf("rejected a corrupt blob from the remote cache, running the action here: %v", err))
		return
	}
	if errors.Is(err, cas.ErrNotFound) {
		return // evicted between the lookup and the read: a miss
	}
	t.failed(err)
}

// PutActionResult records r on the Disk, then, for a result made here
// when uploading is on, sends its outputs and logs to the server and the
// result itself. Upload failures are warnings: the build goes on.
func (t *Tier) PutActionResult(ctx context.Context, key *repb.Digest, r *repb.ActionResult, made cas.Origin) error {
	if err := t.Disk.PutActionResult(ctx, key, r, made); err != nil {
		return err
	}
	if made != cas.Here || !t.o.Upload || !t.Up() {
		return nil
	}
	blobs, err := t.outputBlobs(r)
	if err != nil {
		t.failed(err)
		return nil
	}
	for _, d := range r.OutputDirectories {
		blobs = append(blobs, d.TreeDigest)
	}
	blobs = append(blobs, r.StdoutDigest, r.StderrDigest)
	if _, repair := t.repair.LoadAndDelete(key.Hash); repair {
		err = t.client.ForceUpload(ctx, t.Disk, blobs)
	} else {
		_, _, err = t.client.Upload(ctx, t.Disk, blobs)
	}
	if err == nil {
		err = t.client.UpdateActionResult(ctx, key, r)
	}
	if err != nil {
		t.failed(err)
	}
	return nil
}

// outputBlobs lists the output files of r, those inside its output
// directories included; the trees must be on the Disk.
func (t *Tier) outputBlobs(r *repb.ActionResult) ([]*repb.Digest, error) {
	var ds []*repb.Digest
	for _, f := range r.OutputFiles {
		ds = append(ds, f.Digest)
	}
	for _, d := range r.OutputDirectories {
		tr := &repb.Tree{}
		if err := t.Disk.GetProto(d.TreeDigest, tr); err != nil {
			return nil, fmt.Errorf("output directory %s: %w", d.Path, err)
		}
		ds = append(ds, cas.TreeFiles(tr)...)
	}
	return ds, nil
}
