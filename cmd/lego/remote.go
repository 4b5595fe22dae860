package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/legobuild/lego/cas/remote"
)

// remoteFlags are Bazel's remote flags, as far as lego takes them.
type remoteFlags struct {
	remote.Config
	gpuClass string
}

func (r *remoteFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.Cache, "remote_cache", "", "REAPI cache under the local one: grpc://host:port, or grpcs://host:port for TLS")
	fs.StringVar(&r.Executor, "remote_executor", "", "REAPI execution service that runs every action (grpc:// or grpcs://); it is the remote cache too unless --remote_cache names another")
	fs.StringVar(&r.Dial.Instance, "remote_instance_name", "", "REAPI instance name")
	fs.BoolVar(&r.Upload, "remote_upload_local_results", true, "upload the results of actions run here to the remote cache")
	fs.StringVar(&r.Download, "remote_download_outputs", "", "all (fetch every output of a remote hit) or toplevel (only the targets' outputs and what local actions need); default all, toplevel with --remote_executor")
	fs.StringVar(&r.Dial.TLSCA, "tls_certificate", "", "PEM file of the CAs to trust for grpcs:// (default: the system's)")
	fs.StringVar(&r.Dial.TokenFile, "remote_auth_token_file", "", "file holding a bearer token sent to the remote server")
	fs.StringVar(&r.Dial.TokenEnv, "remote_auth_token_env", "", "environment variable holding a bearer token sent to the remote server")
	fs.DurationVar(&r.Dial.Timeout, "remote_timeout", 60*time.Second, "bound on each remote call (transfers of large blobs are bounded by progress instead)")
	fs.StringVar(&r.gpuClass, "remote_gpu_class", "", "GPU model class (e.g. H100) of remote workers, for GPU actions that name no gpu_model")
}

// warnf prints a remote warning on stderr.
func warnf(msg string) { fmt.Fprintln(os.Stderr, "WARNING: "+msg) }
