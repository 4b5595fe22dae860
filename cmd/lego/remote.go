package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/cas/remote"
	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/executors"
	rexec "github.com/legobuild/lego/executors/remote"
)

// remoteFlags are Bazel's remote flags, as far as lego takes them.
type remoteFlags struct {
	cache, executor, instance string
	upload                    bool
	download                  string
	tlsCA                     string
	tokenFile, tokenEnv       string
	timeout                   time.Duration
	gpuClass                  string
}

func (r *remoteFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.cache, "remote_cache", "", "REAPI cache under the local one: grpc://host:port, or grpcs://host:port for TLS")
	fs.StringVar(&r.executor, "remote_executor", "", "REAPI execution service that runs every action (grpc:// or grpcs://); it is the remote cache too unless --remote_cache names another")
	fs.StringVar(&r.instance, "remote_instance_name", "", "REAPI instance name")
	fs.BoolVar(&r.upload, "remote_upload_local_results", true, "upload the results of actions run here to the remote cache")
	fs.StringVar(&r.download, "remote_download_outputs", "", "all (fetch every output of a remote hit) or toplevel (only the targets' outputs and what local actions need); default all, toplevel with --remote_executor")
	fs.StringVar(&r.tlsCA, "tls_certificate", "", "PEM file of the CAs to trust for grpcs:// (default: the system's)")
	fs.StringVar(&r.tokenFile, "remote_auth_token_file", "", "file holding a bearer token sent to the remote server")
	fs.StringVar(&r.tokenEnv, "remote_auth_token_env", "", "environment variable holding a bearer token sent to the remote server")
	fs.DurationVar(&r.timeout, "remote_timeout", 60*time.Second, "bound on each remote call (transfers of large blobs are bounded by progress instead)")
	fs.StringVar(&r.gpuClass, "remote_gpu_class", "", "GPU model class (e.g. H100) of remote workers, for GPU actions that name no gpu_model")
}

func (r *remoteFlags) dial(target string) (*remote.Client, error) {
	return remote.Dial(remote.Options{Target: target, Instance: r.instance, TLSCA: r.tlsCA,
		TokenFile: r.tokenFile, TokenEnv: r.tokenEnv, Timeout: r.timeout})
}

// remoteSetup is what the remote flags add to a build.
type remoteSetup struct {
	cache    *remote.Cache
	executor executors.Executor // nil: run here
	lazy     bool
	close    func()
}

// open connects to the servers the flags name. A cache that cannot be
// reached now is a warning (the build runs locally); an executor that
// cannot be reached is an error, since nothing could run.
func (r *remoteFlags) open(ctx context.Context, store *cas.Disk, warn func(string)) (*remoteSetup, error) {
	s := &remoteSetup{close: func() {}}
	switch r.download {
	case "":
		s.lazy = r.executor != ""
	case "all":
	case "toplevel":
		s.lazy = true
	default:
		return nil, fmt.Errorf("--remote_download_outputs=%s: want all or toplevel", r.download)
	}
	if r.cache != "" && r.executor != "" && r.cache != r.executor {
		// The executor writes outputs to its own CAS, where they are
		// fetched from; a second server would not have them.
		return nil, fmt.Errorf("--remote_cache=%s and --remote_executor=%s: the executor's server is its cache; give one of them, or the same address", r.cache, r.executor)
	}
	cacheTarget := r.cache
	if cacheTarget == "" {
		cacheTarget = r.executor
	}
	if cacheTarget == "" {
		if s.lazy {
			return nil, fmt.Errorf("--remote_download_outputs=toplevel needs --remote_cache or --remote_executor")
		}
		return s, nil
	}
	client, err := r.dial(cacheTarget)
	if err != nil {
		return nil, err
	}
	s.close = func() { client.Close() }
	s.cache = remote.NewCache(client, store, r.upload, warn)
	if r.executor == "" {
		if _, err := client.Capabilities(ctx); err != nil {
			s.cache.Disable(err)
		}
		return s, nil
	}
	caps, err := client.Capabilities(ctx)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("--remote_executor: %w", err)
	}
	if !caps.GetExecutionCapabilities().GetExecEnabled() {
		s.close()
		return nil, fmt.Errorf("--remote_executor=%s: the server does not execute actions (a cache only?)", r.executor)
	}
	s.executor = rexec.New(client, store)
	return s, nil
}

// warnf prints a remote warning on stderr.
func warnf(msg string) { fmt.Fprintln(os.Stderr, "WARNING: "+msg) }

// remoteNote is the summary line's account of remote work.
func remoteNote(s *engine.Summary) string {
	out := ""
	if s.RemoteHits > 0 {
		out += fmt.Sprintf(", %d remote cache hits", s.RemoteHits)
	}
	if s.RemoteRuns > 0 {
		out += fmt.Sprintf(", %d run remotely", s.RemoteRuns)
	}
	return out
}

// remoteGPUCheck fails a remote build whose GPU actions name no model
// class when --remote_gpu_class gives none either: the class is in the
// key, and lego cannot see the workers' GPUs.
func remoteGPUCheck(g *engine.Graph, targets []*engine.Target, class string) error {
	if class != "" {
		return nil
	}
	for _, a := range gpuActions(g, targets) {
		if a.Resources.GPUModel == "" {
			return fmt.Errorf("%s needs GPUs and names no gpu_model: with --remote_executor, pass --remote_gpu_class (e.g. H100)", a.Owner)
		}
	}
	return nil
}
