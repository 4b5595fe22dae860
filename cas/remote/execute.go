package remote

import (
	"context"
	"fmt"
	"io"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Execute runs the action whose digest is action (its Command, input
// root and files must be uploaded) and waits for the server's response.
// A stream that breaks before the operation is done is resumed with
// WaitExecution; an operation the server forgot is an error.
func (c *Client) Execute(ctx context.Context, action *repb.Digest, skipCache bool) (*repb.ExecuteResponse, error) {
	stream, err := c.exec.Execute(ctx, &repb.ExecuteRequest{InstanceName: c.instance, ActionDigest: action,
		SkipCacheLookup: skipCache, DigestFunction: repb.DigestFunction_SHA256})
	if err != nil {
		return nil, fmt.Errorf("Execute: %w", err)
	}
	name := ""
	for attempt := 0; ; {
		op, got, err := lastOperation(stream, &name)
		if err == nil && op.Done {
			return executeResponse(op)
		}
		if err == nil {
			err = status.Error(codes.Unavailable, "stream ended before the operation was done")
		}
		if got {
			attempt = 0 // a proxy recycling long streams is not a failure
		}
		if !IsOutage(err) && status.Code(err) != codes.NotFound || attempt >= retries {
			return nil, fmt.Errorf("Execute: %w", err)
		}
		attempt++
		if name != "" && status.Code(err) != codes.NotFound {
			stream, err = c.exec.WaitExecution(ctx, &repb.WaitExecutionRequest{Name: name})
		} else {
			// The server forgot the operation (a restart): ask again; the
			// action is the same, so at worst it runs twice.
			name = ""
			stream, err = c.exec.Execute(ctx, &repb.ExecuteRequest{InstanceName: c.instance, ActionDigest: action,
				SkipCacheLookup: skipCache, DigestFunction: repb.DigestFunction_SHA256})
		}
		if err != nil {
			return nil, fmt.Errorf("Execute %s: %w", name, err)
		}
	}
}

// lastOperation reads the stream until an operation is done or the
// stream ends, recording the operation's name; got says whether any
// message arrived.
func lastOperation(stream interface {
	Recv() (*longrunningpb.Operation, error)
}, name *string) (last *longrunningpb.Operation, got bool, err error) {
	for {
		op, err := stream.Recv()
		if err == io.EOF {
			if last == nil {
				return nil, got, status.Error(codes.Unavailable, "empty operation stream")
			}
			return last, got, nil
		}
		if err != nil {
			return nil, got, err
		}
		got = true
		if op.Name != "" {
			*name = op.Name
		}
		last = op
		if op.Done {
			return op, got, nil
		}
	}
}

func executeResponse(op *longrunningpb.Operation) (*repb.ExecuteResponse, error) {
	if e := op.GetError(); e != nil {
		return nil, fmt.Errorf("Execute: operation %s failed: %w", op.Name, status.FromProto(e).Err())
	}
	resp := &repb.ExecuteResponse{}
	if op.GetResponse() == nil {
		return nil, fmt.Errorf("Execute: operation %s is done with no response", op.Name)
	}
	if err := op.GetResponse().UnmarshalTo(resp); err != nil {
		return nil, fmt.Errorf("Execute: operation %s: %w", op.Name, err)
	}
	return resp, nil
}
