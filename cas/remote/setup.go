package remote

import (
	"context"
	"fmt"

	"github.com/legobuild/lego/cas"
)

// Config is what Bazel's remote flags say, as far as lego takes them.
type Config struct {
	Cache, Executor string  // addresses: grpc://host:port or grpcs://host:port
	Dial            Options // all but Target
	// Upload sends the results of actions run here to the cache.
	Upload bool
	// Download is all or toplevel; "" = toplevel with an executor, all
	// with a cache alone.
	Download string
}

// Setup is what the remote flags add to a build.
type Setup struct {
	// Tier is the remote layer over the local Disk (nil: none).
	Tier *Tier
	// Executor is the connection to the execution service (nil: actions
	// run here).
	Executor *Client
	// Lazy leaves outputs on the server: only those asked for are fetched.
	Lazy  bool
	close func()
}

// Close closes the connection.
func (s *Setup) Close() {
	if s.close != nil {
		s.close()
	}
}

// Open connects to the servers c names. A cache that cannot be reached
// now is a warning (the build runs locally); an executor that cannot be
// reached is an error, since nothing could run. ctx is the build's: the
// tier's blob reads fetch under it.
func Open(ctx context.Context, c Config, local *cas.Disk, warn func(string)) (*Setup, error) {
	s := &Setup{}
	switch c.Download {
	case "":
		s.Lazy = c.Executor != ""
	case "all":
	case "toplevel":
		s.Lazy = true
	default:
		return nil, fmt.Errorf("--remote_download_outputs=%s: want all or toplevel", c.Download)
	}
	if c.Cache != "" && c.Executor != "" && c.Cache != c.Executor {
		// The executor writes outputs to its own CAS, where they are
		// fetched from; a second server would not have them.
		return nil, fmt.Errorf("--remote_cache=%s and --remote_executor=%s: the executor's server is its cache; give one of them, or the same address", c.Cache, c.Executor)
	}
	target := c.Cache
	if target == "" {
		target = c.Executor
	}
	if target == "" {
		if s.Lazy {
			return nil, fmt.Errorf("--remote_download_outputs=toplevel needs --remote_cache or --remote_executor")
		}
		return s, nil
	}
	o := c.Dial
	o.Target = target
	client, err := Dial(o)
	if err != nil {
		return nil, err
	}
	s.close = func() { client.Close() }
	s.Tier = NewTier(client, local, TierOptions{Upload: c.Upload, Lazy: s.Lazy, Warn: warn, Context: ctx})
	if c.Executor == "" {
		if _, err := client.Capabilities(ctx); err != nil {
			s.Tier.Disable(err)
		}
		return s, nil
	}
	caps, err := client.Capabilities(ctx)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("--remote_executor: %w", err)
	}
	if !caps.GetExecutionCapabilities().GetExecEnabled() {
		s.Close()
		return nil, fmt.Errorf("--remote_executor=%s: the server does not execute actions (a cache only?)", c.Executor)
	}
	s.Executor = client
	return s, nil
}
