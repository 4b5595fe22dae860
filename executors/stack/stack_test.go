package stack

import (
	"context"
	"strings"
	"testing"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

	"github.com/legobuild/lego/cas/remote"
	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/internal/testenv"
)

func TestBadOptions(t *testing.T) {
	ctx := context.Background()
	store := testenv.Store(t)
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Mode: "docker", Store: store}, "--executor=docker: want auto, local or containerd"},
		{Options{Mode: "auto", Store: store, GPUFallback: "gpu"}, "--gpu_fallback=gpu: want none or cpu"},
	} {
		if _, err := New(ctx, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.o, err, tc.want)
		}
	}
}

// A local stack reserves devices and runs everything here; its router
// refuses what --executor=local cannot run before trying.
func TestLocalStack(t *testing.T) {
	ctx := context.Background()
	s, err := New(ctx, Options{Mode: "local", Store: testenv.Store(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Caps.Reserve == nil || s.Caps.Remote != nil {
		t.Errorf("local stack: reserve %v, remote %v; want devices reserved, nothing remote", s.Caps.Reserve != nil, s.Caps.Remote != nil)
	}
	for prop, want := range map[string]string{
		executors.PropImage:   "runs in an image",
		executors.PropSession: "runs containers",
	} {
		value := "sha256:" + strings.Repeat("0", 64)
		if prop == executors.PropSession {
			value = "containerd"
		}
		req := &executors.Request{Action: &repb.Action{Platform: &repb.Platform{Properties: []*repb.Platform_Property{{Name: prop, Value: value}}}},
			Command: &repb.Command{Arguments: []string{"true"}}}
		if _, err := s.Execute(ctx, req); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s action under --executor=local: %v, want %q", prop, err, want)
		}
	}
}

// A remote stack runs everything remotely, and a GPU action that names no
// model needs the workers' class: it is in the key.
func TestRemoteStack(t *testing.T) {
	ctx := context.Background()
	client, err := remote.Dial(remote.Options{Target: "grpc://127.0.0.1:1"}) // never called
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	need := []Need{{Label: "//train:sft", Limits: executors.Limits{GPUs: 8}}}
	o := Options{Store: testenv.Store(t), Remote: client, GPUNeeds: need}
	if _, err := New(ctx, o); err == nil || !strings.Contains(err.Error(), "//train:sft needs GPUs and names no gpu_model") {
		t.Errorf("no --remote_gpu_class: %v", err)
	}
	o.RemoteGPUClass = "H100"
	s, err := New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Caps.Remote == nil || !s.Caps.Remote(&executors.Request{}) || s.Caps.Reserve != nil || s.GPUClass != "H100" {
		t.Errorf("remote stack: caps %+v, class %q", s.Caps, s.GPUClass)
	}
}
