package remote

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

	"github.com/legobuild/lego/cas"
)

// Cache is the remote tier under a local store (memory, then disk, then
// this). What it hands out is verified by digest and written to the local
// store first. When the server cannot be reached it warns once and turns
// itself off, so an outage costs a build nothing but its cache hits.
type Cache struct {
	client *Client
	local  *cas.Disk
	upload bool
	warn   func(string)

	off    atomic.Bool
	warned sync.Once
	// repair holds the keys of results found with a corrupt blob: the
	// local rerun sends its blobs again even where the server says it has
	// them.
	repair sync.Map
}

// NewCache puts client under local. upload says whether results of
// actions run here are sent to the server (--remote_upload_local_results);
// warn reports outages and corrupt blobs to the user.
func NewCache(client *Client, local *cas.Disk, upload bool, warn func(string)) *Cache {
	if warn == nil {
		warn = func(string) {}
	}
	return &Cache{client: client, local: local, upload: upload, warn: warn}
}

// Client is the connection the cache uses.
func (c *Cache) Client() *Client { return c.client }

// Up reports whether the remote tier is still in use.
func (c *Cache) Up() bool { return !c.off.Load() }

// down turns the tier off after an outage, warning once.
func (c *Cache) down(err error) {
	c.off.Store(true)
	c.warned.Do(func() {
		c.warn(fmt.Sprintf("remote cache %s is unavailable, continuing with the local cache only: %v", c.client.target, err))
	})
}

// failed sorts a remote error: an outage turns the tier off; anything
// else is reported and the call counts as a miss.
func (c *Cache) failed(err error) {
	if IsOutage(err) {
		c.down(err)
		return
	}
	if c.Up() {
		c.warn(err.Error())
	}
}

// Lookup returns the remote result of the action key with its outputs'
// trees in the local store, or nil on a miss. With files, every output
// file is fetched and verified too; without (outputs fetched lazily), the
// server must still hold them all. A corrupt blob makes the result a miss,
// so that the action runs here and its upload replaces the bad copy.
func (c *Cache) Lookup(ctx context.Context, key *repb.Digest, files bool) *repb.ActionResult {
	if !c.Up() {
		return nil
	}
	r, err := c.client.GetActionResult(ctx, key)
	if err != nil {
		c.failed(err)
		return nil
	}
	if r == nil || r.ExitCode != 0 {
		return nil
	}
	var trees []*repb.Digest
	for _, d := range r.OutputDirectories {
		trees = append(trees, d.TreeDigest)
	}
	if err := c.client.Download(ctx, c.local, trees); err != nil {
		c.lookupFailed(key, err)
		return nil
	}
	blobs, err := c.outputBlobs(r)
	if err != nil {
		c.lookupFailed(key, err)
		return nil
	}
	if files {
		err = c.client.Download(ctx, c.local, blobs)
	} else {
		var missing []*repb.Digest
		if missing, err = c.client.FindMissing(ctx, dedupe(blobs)); err == nil && len(missing) > 0 {
			return nil
		}
	}
	if err != nil {
		c.lookupFailed(key, err)
		return nil
	}
	return r
}

func (c *Cache) lookupFailed(key *repb.Digest, err error) {
	if errors.Is(err, cas.ErrCorrupt) {
		c.repair.Store(key.Hash, true)
		c.warn(fmt.Sprintf("rejected a corrupt blob from the remote cache, running the action here: %v", err))
		return
	}
	if errors.Is(err, cas.ErrNotFound) {
		return // evicted between the lookup and the read: a miss
	}
	c.failed(err)
}

// Fetch brings blobs into the local store, verified. It is tried even
// after an outage turned lookups off: in a lazy build the blobs are on the
// server only, and one slow call must not fail every later fetch.
func (c *Cache) Fetch(ctx context.Context, ds []*repb.Digest) error {
	if err := c.client.Download(ctx, c.local, ds); err != nil {
		return fmt.Errorf("remote %s: %w", c.client.target, err)
	}
	return nil
}

// Store uploads the outputs and logs of a result made here and then the
// result itself, when uploading is on.
func (c *Cache) Store(ctx context.Context, key *repb.Digest, r *repb.ActionResult) {
	if !c.upload || !c.Up() {
		return
	}
	blobs, err := c.outputBlobs(r)
	if err != nil {
		c.failed(err)
		return
	}
	for _, d := range r.OutputDirectories {
		blobs = append(blobs, d.TreeDigest)
	}
	blobs = append(blobs, r.StdoutDigest, r.StderrDigest)
	if _, repair := c.repair.LoadAndDelete(key.Hash); repair {
		err = c.client.ForceUpload(ctx, c.local, blobs)
	} else {
		_, _, err = c.client.Upload(ctx, c.local, blobs)
	}
	if err == nil {
		err = c.client.UpdateActionResult(ctx, key, r)
	}
	if err != nil {
		c.failed(err)
	}
}

// outputBlobs lists the output files of r, those inside its output
// directories included; the trees must be in the local store.
func (c *Cache) outputBlobs(r *repb.ActionResult) ([]*repb.Digest, error) {
	var ds []*repb.Digest
	for _, f := range r.OutputFiles {
		ds = append(ds, f.Digest)
	}
	for _, d := range r.OutputDirectories {
		t := &repb.Tree{}
		if err := c.local.GetProto(d.TreeDigest, t); err != nil {
			return nil, fmt.Errorf("output directory %s: %w", d.Path, err)
		}
		ds = append(ds, TreeFiles(t)...)
	}
	return ds, nil
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

// Disable turns the tier off with the outage warning, e.g. when the
// server did not answer at the start of a build.
func (c *Cache) Disable(err error) { c.down(err) }
