package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/executors/containerd"
	"github.com/legobuild/lego/executors/local"
)

// router sends actions that name an image to containerd and the others to
// the local executor (--executor=auto). containerd is dialled on first
// use, so builds without images never need it.
type router struct {
	mode  string // auto, local or containerd
	addr  string
	store *cas.Disk
	local *local.Executor

	once sync.Once
	ctr  *containerd.Executor
	err  error
}

func newRouter(ctx context.Context, mode, addr string, store *cas.Disk, lo local.Options) (*router, error) {
	switch mode {
	case "auto", "local", "containerd":
	default:
		return nil, fmt.Errorf("--executor=%s: want auto, local or containerd", mode)
	}
	r := &router{mode: mode, addr: addr, store: store, local: local.New(store, lo)}
	if mode == "containerd" {
		// Asked for by name: fail now rather than at the first image.
		if _, err := r.containerd(ctx); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *router) containerd(ctx context.Context) (*containerd.Executor, error) {
	r.once.Do(func() { r.ctr, r.err = containerd.New(ctx, r.store, containerd.Options{Address: r.addr}) })
	return r.ctr, r.err
}

func (r *router) Execute(ctx context.Context, req *executors.Request) (*repb.ActionResult, error) {
	if executors.Property(req, executors.PropSession) == "containerd" {
		// A host process that runs containers itself: it is told where
		// containerd and the store are (not part of the key).
		if r.mode == "local" {
			return nil, errors.New("the action runs containers, which --executor=local cannot do: use --executor=auto or --executor=containerd")
		}
		if _, err := r.containerd(ctx); err != nil {
			return nil, err
		}
		addr := r.addr
		if addr == "" {
			addr = containerd.DefaultAddress
		}
		req.Env = append(append([]string(nil), req.Env...), executors.EnvContainerd+"="+addr, executors.EnvCacheDir+"="+r.store.Dir(),
			executors.EnvOwner+"="+strconv.Itoa(os.Getpid()))
		return r.local.Execute(ctx, req)
	}
	if executors.Property(req, executors.PropImage) == "" {
		return r.local.Execute(ctx, req)
	}
	if r.mode == "local" {
		return nil, errors.New("the action runs in an image, which --executor=local cannot do: use --executor=auto or --executor=containerd")
	}
	c, err := r.containerd(ctx)
	if err != nil {
		return nil, err
	}
	return c.Execute(ctx, req)
}

func (r *router) Close() {
	if r.ctr != nil {
		r.ctr.Close()
	}
}
