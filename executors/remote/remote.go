// Package remote runs actions on a Remote Execution API v2 service
// (--remote_executor): it uploads what the server lacks of an action's
// input root, calls Execute, and fetches back only the output trees (and
// a failure's logs). Output files stay on the server until something
// local needs them.
package remote

import (
	"context"
	"errors"
	"fmt"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/cas/remote"
	"github.com/legobuild/lego/executors"
)

// Executor sends every action to one REAPI server.
type Executor struct {
	client *remote.Client
	store  *cas.Disk
}

// New returns an executor that runs actions through client, reading
// inputs from and writing output trees to store.
func New(client *remote.Client, store *cas.Disk) *Executor {
	return &Executor{client: client, store: store}
}

var marshal = proto.MarshalOptions{Deterministic: true}

// Execute runs req on the server. The action's platform properties (the
// image digest, the GPU class and count) travel in the Action message;
// the server's workers match on them.
func (e *Executor) Execute(ctx context.Context, req *executors.Request) (*repb.ActionResult, error) {
	if len(req.Env) > 0 {
		// Secret values are never part of a key or a message, and REAPI
		// has no other way to pass them.
		return nil, errors.New("the action takes secrets from the environment, which are never sent to a remote executor: build it without --remote_executor")
	}
	mem := map[string][]byte{}
	var blobs []*repb.Digest
	add := func(m proto.Message) (*repb.Digest, error) {
		b, err := marshal.Marshal(m)
		if err != nil {
			return nil, err
		}
		d := cas.DigestOf(b)
		mem[d.Hash] = b
		blobs = append(blobs, d)
		return d, nil
	}
	if _, err := add(req.Command); err != nil {
		return nil, err
	}
	actionDigest, err := add(req.Action)
	if err != nil {
		return nil, err
	}
	if err := e.inputRoot(req, req.Action.InputRootDigest, add, &blobs, map[string]bool{}); err != nil {
		return nil, err
	}
	if _, _, err := e.client.UploadWith(ctx, e.store, mem, blobs); err != nil {
		return nil, fmt.Errorf("upload inputs to %s: %w", e.client.Target(), err)
	}
	resp, err := e.client.Execute(ctx, actionDigest, false)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("remote executor %s: %w", e.client.Target(), err)
	}
	res := resp.GetResult()
	if st := status.FromProto(resp.Status); st.Code() != codes.OK {
		err := fmt.Errorf("remote executor %s: %w", e.client.Target(), st.Err())
		if st.Code() == codes.DeadlineExceeded {
			err = fmt.Errorf("%w: %v", executors.ErrTimeout, err)
		}
		if res != nil {
			e.fetchLogs(ctx, res)
		}
		return res, err
	}
	if res == nil {
		return nil, fmt.Errorf("remote executor %s: no result", e.client.Target())
	}
	var trees []*repb.Digest
	for _, d := range res.OutputDirectories {
		trees = append(trees, d.TreeDigest)
	}
	if err := e.client.Download(ctx, e.store, trees); err != nil {
		return nil, fmt.Errorf("fetch output trees: %w", err)
	}
	if res.ExitCode != 0 {
		e.fetchLogs(ctx, res)
	}
	return res, nil
}

// inputRoot records the Directory d and everything under it.
func (e *Executor) inputRoot(req *executors.Request, d *repb.Digest, add func(proto.Message) (*repb.Digest, error), files *[]*repb.Digest, seen map[string]bool) error {
	k := cas.Key(d)
	if seen[k] {
		return nil
	}
	seen[k] = true
	dir := req.Dirs[k]
	if dir == nil {
		dir = &repb.Directory{}
		if err := e.store.GetProto(d, dir); err != nil {
			return fmt.Errorf("input directory %s: %w", k, err)
		}
	}
	if _, err := add(dir); err != nil {
		return err
	}
	for _, f := range dir.Files {
		*files = append(*files, f.Digest)
	}
	for _, sub := range dir.Directories {
		if err := e.inputRoot(req, sub.Digest, add, files, seen); err != nil {
			return err
		}
	}
	return nil
}

// fetchLogs brings a failed action's stdout and stderr here, for the
// failure report; a log that cannot be fetched is left out of it.
func (e *Executor) fetchLogs(ctx context.Context, res *repb.ActionResult) {
	_ = e.client.Download(ctx, e.store, []*repb.Digest{res.StdoutDigest, res.StderrDigest})
}
