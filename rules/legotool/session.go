package legotool

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/engine"
	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/executors/containerd"
)

// Both ends of a session action: a host action that runs containers of
// its own (an agent's rollout: one long-lived container, commands exec'd
// into it). The rule marks the action (RunsContainers); the executor
// tells the tool, outside the key, where containerd and the store are;
// the tool opens its containers there (Containers).

// RunsContainers marks a as a session action on containerd.
func RunsContainers(a *engine.Action) {
	a.Platform = map[string]string{executors.PropSession: "containerd"}
}

// Containers returns, in a session action's tool, a function opening a
// fresh container of an image per call: manifest is the image's manifest
// file (engine.ImageManifest), workdir where commands run.
func Containers(ctx context.Context, manifest, workdir string) (func() (*containerd.Session, error), error) {
	b, err := os.ReadFile(manifest)
	if err != nil {
		return nil, err
	}
	var m engine.ImageManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", manifest, err)
	}
	addr, cacheDir := os.Getenv(executors.EnvContainerd), os.Getenv(executors.EnvCacheDir)
	if addr == "" || cacheDir == "" {
		return nil, fmt.Errorf("%s and %s are not set: this tool runs as a session action, which lego starts", executors.EnvContainerd, executors.EnvCacheDir)
	}
	store, err := cas.Open(cacheDir)
	if err != nil {
		return nil, err
	}
	return func() (*containerd.Session, error) {
		return containerd.OpenSession(ctx, containerd.SessionOptions{Address: addr, Store: store, Manifest: m.Digest, Size: m.Size, Workdir: workdir})
	}, nil
}
