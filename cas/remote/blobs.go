package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
	"google.golang.org/genproto/googleapis/bytestream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/legobuild/lego/cas"
)

const (
	// chunkSize is the ByteStream message payload. Each Send marshals a
	// fresh message, so bigger chunks mean more garbage in flight: with
	// 1 MiB chunks a 2 GiB upload peaked at 185 MiB RSS, with 256 KiB at
	// 33 MiB.
	chunkSize = 256 << 10
	// streams bounds concurrent transfers.
	streams = 8
	// retries is how often a broken ByteStream transfer resumes.
	retries = 3
)

// IsOutage tells errors that mean the server cannot be used now
// (unreachable, overloaded, timing out, refusing our credentials), as
// opposed to a missing or corrupt blob.
func IsOutage(err error) bool {
	if err == nil || errors.Is(err, cas.ErrCorrupt) || errors.Is(err, cas.ErrNotFound) {
		return false
	}
	switch status.Code(err) {
	case codes.NotFound, codes.InvalidArgument, codes.FailedPrecondition, codes.Canceled:
		return false
	}
	return !errors.Is(err, context.Canceled)
}

func dedupe(ds []*repb.Digest) []*repb.Digest {
	seen := make(map[string]bool, len(ds))
	var out []*repb.Digest
	for _, d := range ds {
		// The empty blob is implicitly everywhere.
		if d == nil || d.SizeBytes == 0 || seen[d.Hash] {
			continue
		}
		seen[d.Hash] = true
		out = append(out, d)
	}
	return out
}

// batchable tells whether d goes in a batch call: its bytes plus the
// per-entry overhead fit the server's batch limit with room to spare.
func (c *Client) batchable(d *repb.Digest) bool {
	return d.SizeBytes+1024 <= c.maxBatch/2
}

// Upload makes sure the server has the blobs ds, reading them from store.
// It returns how many blobs and bytes were sent.
func (c *Client) Upload(ctx context.Context, store *cas.Disk, ds []*repb.Digest) (blobs int, size int64, err error) {
	return c.UploadWith(ctx, store, nil, ds)
}

// UploadWith is Upload where the blobs in mem (keyed by hash: encoded
// messages that were never stored, such as an action's Directories) are
// taken from memory and the others from store.
func (c *Client) UploadWith(ctx context.Context, store *cas.Disk, mem map[string][]byte, ds []*repb.Digest) (blobs int, size int64, err error) {
	missing, err := c.FindMissing(ctx, dedupe(ds))
	if err != nil {
		return 0, 0, err
	}
	return c.uploadAll(ctx, store, mem, missing)
}

// ForceUpload sends ds whether or not the server claims to have them: the
// way to replace a copy that was found corrupt.
func (c *Client) ForceUpload(ctx context.Context, store *cas.Disk, ds []*repb.Digest) error {
	_, _, err := c.uploadAll(ctx, store, nil, dedupe(ds))
	return err
}

func (c *Client) uploadAll(ctx context.Context, store *cas.Disk, mem map[string][]byte, ds []*repb.Digest) (int, int64, error) {
	var total int64
	for _, d := range ds {
		total += d.SizeBytes
	}
	err := c.transfer(ctx, ds,
		func(ctx context.Context, b []*repb.Digest) error { return c.batchUpdate(ctx, store, mem, b) },
		func(ctx context.Context, d *repb.Digest) error { return c.writeStream(ctx, store, mem, d) })
	if err != nil {
		return 0, 0, err
	}
	return len(ds), total, nil
}

// transfer moves ds concurrently: small blobs in batches that fit the
// server's limit, the others one stream each.
func (c *Client) transfer(ctx context.Context, ds []*repb.Digest,
	batch func(context.Context, []*repb.Digest) error, stream func(context.Context, *repb.Digest) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(streams)
	var cur []*repb.Digest
	var size int64
	flush := func() {
		if len(cur) > 0 {
			b := cur
			cur, size = nil, 0
			g.Go(func() error { return batch(gctx, b) })
		}
	}
	for _, d := range ds {
		if !c.batchable(d) {
			g.Go(func() error { return stream(gctx, d) })
			continue
		}
		if size+d.SizeBytes+1024 > c.maxBatch/2 {
			flush()
		}
		cur = append(cur, d)
		size += d.SizeBytes + 1024
	}
	flush()
	return g.Wait()
}

func (c *Client) batchUpdate(ctx context.Context, store *cas.Disk, mem map[string][]byte, ds []*repb.Digest) error {
	req := &repb.BatchUpdateBlobsRequest{InstanceName: c.instance, DigestFunction: repb.DigestFunction_SHA256}
	for _, d := range ds {
		b, ok := mem[d.Hash]
		if !ok {
			var err error
			if b, err = store.Get(d); err != nil {
				return fmt.Errorf("upload %s: %w", cas.Key(d), err)
			}
		}
		req.Requests = append(req.Requests, &repb.BatchUpdateBlobsRequest_Request{Digest: d, Data: b})
	}
	ctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.cas.BatchUpdateBlobs(ctx, req)
	if err != nil {
		return fmt.Errorf("BatchUpdateBlobs: %w", err)
	}
	for _, r := range resp.Responses {
		if s := status.FromProto(r.Status); s.Code() != codes.OK {
			return fmt.Errorf("BatchUpdateBlobs %s: %w", cas.Key(r.Digest), s.Err())
		}
	}
	return nil
}

// writeStream uploads one blob through ByteStream.Write from its file,
// one chunk in memory at a time. A broken stream resumes from the offset
// the server reports it has committed.
func (c *Client) writeStream(ctx context.Context, store *cas.Disk, mem map[string][]byte, d *repb.Digest) error {
	var src io.ReaderAt
	if b, ok := mem[d.Hash]; ok {
		src = bytes.NewReader(b)
	} else {
		path, err := store.BlobPath(d, false)
		if err != nil {
			return fmt.Errorf("upload %s: %w", cas.Key(d), err)
		}
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("upload %s: %w", cas.Key(d), err)
		}
		defer f.Close()
		src = f
	}
	newName := func() string {
		name := fmt.Sprintf("uploads/%s/blobs/%s/%d", uuid.NewString(), d.Hash, d.SizeBytes)
		if c.instance != "" {
			name = c.instance + "/" + name
		}
		return name
	}
	name := newName()
	var offset int64
	for attempt := 0; ; attempt++ {
		done, err := c.writeFrom(ctx, src, name, d.SizeBytes, offset)
		if err == nil && done {
			return nil
		}
		if attempt >= retries || !IsOutage(err) {
			return fmt.Errorf("ByteStream.Write %s: %w", cas.Key(d), err)
		}
		qctx, cancel := c.unary(ctx)
		st, qerr := c.bs.QueryWriteStatus(qctx, &bytestream.QueryWriteStatusRequest{ResourceName: name})
		cancel()
		switch {
		case qerr != nil:
			// Start over under a new name rather than guess what the
			// server kept of the old one.
			name, offset = newName(), 0
		case st.Complete:
			return nil
		default:
			offset = st.CommittedSize
		}
	}
}

// writeFrom sends f from offset to size; done is true when the server
// has the whole blob.
func (c *Client) writeFrom(ctx context.Context, f io.ReaderAt, name string, size, offset int64) (done bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := c.bs.Write(ctx)
	if err != nil {
		return false, err
	}
	buf := make([]byte, chunkSize)
	first := true
	for {
		n, rerr := f.ReadAt(buf[:min(int64(len(buf)), size-offset)], offset)
		if rerr != nil && rerr != io.EOF {
			return false, rerr
		}
		if n == 0 && offset < size {
			return false, fmt.Errorf("blob file ends at %d of %d bytes: %w", offset, size, io.ErrUnexpectedEOF)
		}
		last := offset+int64(n) >= size
		req := &bytestream.WriteRequest{WriteOffset: offset, FinishWrite: last, Data: buf[:n]}
		if first {
			req.ResourceName = name
			first = false
		}
		if err := w.Send(req); err != nil {
			if err == io.EOF {
				// The server ended the stream early: it has the blob
				// already, or says why in the response.
				break
			}
			return false, err
		}
		offset += int64(n)
		if last {
			break
		}
	}
	resp, err := w.CloseAndRecv()
	if err != nil {
		return false, err
	}
	if resp.CommittedSize != size && resp.CommittedSize != -1 {
		return false, status.Errorf(codes.DataLoss, "server committed %d of %d bytes", resp.CommittedSize, size)
	}
	return true, nil
}

// Download fetches into store those of ds it does not have, verifying
// every blob against its digest: a blob the server serves corrupt is
// rejected with an error wrapping cas.ErrCorrupt and not stored.
func (c *Client) Download(ctx context.Context, store *cas.Disk, ds []*repb.Digest) error {
	var need []*repb.Digest
	for _, d := range dedupe(ds) {
		if !store.Has(d) {
			need = append(need, d)
		}
	}
	return c.transfer(ctx, need,
		func(ctx context.Context, b []*repb.Digest) error { return c.batchRead(ctx, store, b) },
		func(ctx context.Context, d *repb.Digest) error { return c.readStream(ctx, store, d) })
}

func (c *Client) batchRead(ctx context.Context, store *cas.Disk, ds []*repb.Digest) error {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.cas.BatchReadBlobs(ctx, &repb.BatchReadBlobsRequest{InstanceName: c.instance, Digests: ds,
		DigestFunction: repb.DigestFunction_SHA256})
	if err != nil {
		return fmt.Errorf("BatchReadBlobs: %w", err)
	}
	answered := make(map[string]bool, len(resp.Responses))
	for _, r := range resp.Responses {
		answered[r.GetDigest().GetHash()] = true
	}
	for _, d := range ds {
		if !answered[d.Hash] {
			return fmt.Errorf("BatchReadBlobs: %w", status.Errorf(codes.Internal, "no response for %s", cas.Key(d)))
		}
	}
	for _, r := range resp.Responses {
		if s := status.FromProto(r.Status); s.Code() != codes.OK {
			if s.Code() == codes.NotFound {
				return fmt.Errorf("remote %s: %w: %s", c.target, cas.ErrNotFound, cas.Key(r.Digest))
			}
			return fmt.Errorf("BatchReadBlobs %s: %w", cas.Key(r.Digest), s.Err())
		}
		if got := cas.DigestOf(r.Data); got.Hash != r.Digest.GetHash() || got.SizeBytes != r.Digest.GetSizeBytes() {
			return fmt.Errorf("remote %s: %w: %s: served %d bytes hashing to %s", c.target, cas.ErrCorrupt, cas.Key(r.Digest), got.SizeBytes, got.Hash)
		}
		if _, err := store.Put(r.Data); err != nil {
			return err
		}
	}
	return nil
}

// readStream downloads one blob through ByteStream.Read straight into the
// store, verified on the way.
func (c *Client) readStream(ctx context.Context, store *cas.Disk, d *repb.Digest) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	name := fmt.Sprintf("blobs/%s/%d", d.Hash, d.SizeBytes)
	if c.instance != "" {
		name = c.instance + "/" + name
	}
	r := &streamReader{ctx: ctx, bs: c.bs, name: name}
	err := store.PutStream(d, r)
	if errors.Is(err, cas.ErrCorrupt) {
		return fmt.Errorf("remote %s: %w", c.target, err)
	}
	if err != nil {
		return fmt.Errorf("ByteStream.Read %s: %w", cas.Key(d), err)
	}
	return nil
}

// streamReader reads a ByteStream resource, reopening the stream at the
// offset reached when it breaks.
type streamReader struct {
	ctx      context.Context
	bs       bytestream.ByteStreamClient
	name     string
	stream   bytestream.ByteStream_ReadClient
	offset   int64
	pending  []byte
	failures int
}

func (r *streamReader) Read(p []byte) (int, error) {
	for len(r.pending) == 0 {
		if r.stream == nil {
			s, err := r.bs.Read(r.ctx, &bytestream.ReadRequest{ResourceName: r.name, ReadOffset: r.offset})
			if err != nil {
				return 0, err
			}
			r.stream = s
		}
		resp, err := r.stream.Recv()
		if err == io.EOF {
			return 0, io.EOF
		}
		if err != nil {
			r.stream = nil
			if status.Code(err) == codes.NotFound {
				return 0, fmt.Errorf("%w: %s", cas.ErrNotFound, r.name)
			}
			if r.failures++; r.failures > retries || !IsOutage(err) {
				return 0, err
			}
			continue
		}
		r.pending = resp.Data
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	r.offset += int64(n)
	return n, nil
}
