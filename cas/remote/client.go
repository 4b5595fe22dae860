// Package remote speaks the Bazel Remote Execution API v2 over gRPC: the
// CAS (FindMissingBlobs, batch and ByteStream transfers), the action cache
// and, for executors/remote, Execute. It works with any REAPI server
// (bazel-remote, Buildbarn, BuildBuddy, NativeLink): lego's action keys are
// REAPI Action digests already.
package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"google.golang.org/genproto/googleapis/bytestream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// Options say where the server is and how to reach it.
type Options struct {
	// Target is grpc://host:port (plaintext) or grpcs://host:port (TLS); a
	// bare host:port means TLS, as in Bazel.
	Target string
	// Instance is the REAPI instance name ("" for the default instance).
	Instance string
	// TLSCA is a PEM file of CAs to trust for grpcs (default: the system's).
	TLSCA string
	// TokenFile and TokenEnv name where a bearer token is read from (at
	// most one); it is sent as "authorization: Bearer <token>".
	TokenFile, TokenEnv string
	// Timeout bounds each unary call (default 60 s); streams are bounded
	// only by progress, so a multi-GB blob is not cut off.
	Timeout time.Duration
}

// Client is a connection to one REAPI server and instance.
type Client struct {
	target   string
	instance string
	timeout  time.Duration
	conn     *grpc.ClientConn
	cas      repb.ContentAddressableStorageClient
	ac       repb.ActionCacheClient
	exec     repb.ExecutionClient
	caps     repb.CapabilitiesClient
	bs       bytestream.ByteStreamClient
	// maxBatch is the largest total of a batch call; bigger blobs stream.
	maxBatch int64
}

// grpc's default limit on a received message.
const defaultMaxMsg = 4 << 20

// Dial connects to o.Target. It does not wait for the server: the first
// call reports an unreachable one.
func Dial(o Options) (*Client, error) {
	addr, secure, err := parseTarget(o.Target)
	if err != nil {
		return nil, err
	}
	var creds credentials.TransportCredentials = insecure.NewCredentials()
	if secure {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.TLSCA != "" {
			pem, err := os.ReadFile(o.TLSCA)
			if err != nil {
				return nil, fmt.Errorf("--remote_tls_ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--remote_tls_ca %s: no PEM certificate in it", o.TLSCA)
			}
			cfg.RootCAs = pool
		}
		creds = credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20)),
		// Pings while a stream is open find a half-open connection, which
		// would otherwise hang a long transfer or Execute for ever. Servers
		// refuse pings more often than every 5 minutes by default.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 5*time.Minute + 10*time.Second, Timeout: time.Minute}),
	}
	tok, err := readToken(o.TokenFile, o.TokenEnv)
	if err != nil {
		return nil, err
	}
	if tok != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: tok}))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("remote %s: %w", o.Target, err)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	return &Client{target: o.Target, instance: o.Instance, timeout: timeout, conn: conn,
		cas: repb.NewContentAddressableStorageClient(conn), ac: repb.NewActionCacheClient(conn),
		exec: repb.NewExecutionClient(conn), caps: repb.NewCapabilitiesClient(conn),
		bs: bytestream.NewByteStreamClient(conn), maxBatch: defaultMaxMsg - 64<<10}, nil
}

func parseTarget(t string) (addr string, secure bool, err error) {
	if t == "" {
		return "", false, errors.New("remote: empty address")
	}
	if !strings.Contains(t, "://") {
		return t, true, nil
	}
	u, err := url.Parse(t)
	if err != nil {
		return "", false, fmt.Errorf("remote address %q: %w", t, err)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", false, fmt.Errorf("remote address %q: want grpc://host:port or grpcs://host:port", t)
	}
	switch u.Scheme {
	case "grpc":
		return u.Host, false, nil
	case "grpcs":
		return u.Host, true, nil
	}
	return "", false, fmt.Errorf("remote address %q: scheme %q is not grpc or grpcs", t, u.Scheme)
}

// readToken reads the bearer token from a file or an environment variable.
func readToken(file, env string) (string, error) {
	switch {
	case file != "" && env != "":
		return "", errors.New("--remote_token_file and --remote_token_env: give one")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--remote_token_file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("--remote_token_file %s is empty", file)
		}
		return tok, nil
	case env != "":
		tok := strings.TrimSpace(os.Getenv(env))
		if tok == "" {
			return "", fmt.Errorf("--remote_token_env: $%s is not set", env)
		}
		return tok, nil
	}
	return "", nil
}

// bearer adds the token to every call. It is allowed on plaintext
// connections too (a loopback proxy or a private network); the user chose
// grpc:// over grpcs://.
type bearer struct{ token string }

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return false }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Target is the address the client was dialled with.
func (c *Client) Target() string { return c.target }

// Instance is the REAPI instance name.
func (c *Client) Instance() string { return c.instance }

func (c *Client) unary(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// Capabilities asks the server what it supports, checks that it takes
// sha256 digests, and adopts its batch size limit.
func (c *Client) Capabilities(ctx context.Context) (*repb.ServerCapabilities, error) {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	caps, err := c.caps.GetCapabilities(ctx, &repb.GetCapabilitiesRequest{InstanceName: c.instance})
	if err != nil {
		return nil, fmt.Errorf("remote %s: GetCapabilities: %w", c.target, err)
	}
	if cc := caps.CacheCapabilities; cc != nil {
		ok := false
		for _, f := range cc.DigestFunctions {
			ok = ok || f == repb.DigestFunction_SHA256
		}
		if !ok && len(cc.DigestFunctions) > 0 {
			return nil, fmt.Errorf("remote %s: server does not accept sha256 digests (it offers %v)", c.target, cc.DigestFunctions)
		}
		if m := cc.MaxBatchTotalSizeBytes; m > 0 && m < c.maxBatch {
			c.maxBatch = m
		}
	}
	return caps, nil
}

// GetActionResult returns the cached result of the action key, or nil
// when the server has none.
func (c *Client) GetActionResult(ctx context.Context, key *repb.Digest) (*repb.ActionResult, error) {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	r, err := c.ac.GetActionResult(ctx, &repb.GetActionResultRequest{InstanceName: c.instance, ActionDigest: key})
	if status.Code(err) == codes.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("GetActionResult: %w", err)
	}
	return r, nil
}

// UpdateActionResult stores r as the result of the action key. The blobs
// it names must be uploaded first.
func (c *Client) UpdateActionResult(ctx context.Context, key *repb.Digest, r *repb.ActionResult) error {
	ctx, cancel := c.unary(ctx)
	defer cancel()
	_, err := c.ac.UpdateActionResult(ctx, &repb.UpdateActionResultRequest{InstanceName: c.instance, ActionDigest: key, ActionResult: r})
	if err != nil {
		return fmt.Errorf("UpdateActionResult: %w", err)
	}
	return nil
}

// FindMissing returns those of ds the server does not have.
func (c *Client) FindMissing(ctx context.Context, ds []*repb.Digest) ([]*repb.Digest, error) {
	var missing []*repb.Digest
	// Chunks keep each request well under the message size limit.
	const chunk = 10000
	for i := 0; i < len(ds); i += chunk {
		part := ds[i:min(i+chunk, len(ds))]
		cctx, cancel := c.unary(ctx)
		r, err := c.cas.FindMissingBlobs(cctx, &repb.FindMissingBlobsRequest{InstanceName: c.instance, BlobDigests: part,
			DigestFunction: repb.DigestFunction_SHA256})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("FindMissingBlobs: %w", err)
		}
		missing = append(missing, r.MissingBlobDigests...)
	}
	return missing, nil
}
