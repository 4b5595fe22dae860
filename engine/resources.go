package engine

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultPath is the PATH every action gets unless it sets one; it is part
// of the key, so it is a constant, not the host's PATH.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ActionEnv is the environment of an action: PATH and
// PYTHONDONTWRITEBYTECODE=1 (Python would otherwise write .pyc files beside
// its inputs, which the sandbox reports as undeclared outputs), overridden
// by extra. With no extra it returns one shared map: actions never modify
// their Env, and 100k copies of it weigh on a null build.
func ActionEnv(extra map[string]string) map[string]string {
	if len(extra) == 0 {
		return defaultEnv
	}
	env := make(map[string]string, len(defaultEnv)+len(extra))
	for k, v := range defaultEnv {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

var defaultEnv = map[string]string{"PATH": DefaultPath, "PYTHONDONTWRITEBYTECODE": "1"}

// ParseResources reads a resources dict: cpu, memory, gpus, gpu_memory.
func ParseResources(m map[string]string) (Resources, error) {
	var r Resources
	for k, v := range m {
		var err error
		switch k {
		case "cpu":
			r.CPU, err = strconv.ParseFloat(v, 64)
			if err == nil && r.CPU <= 0 {
				err = fmt.Errorf("must be positive")
			}
		case "memory":
			r.Memory, err = ParseSize(v)
		case "gpus":
			r.GPUs, err = strconv.Atoi(v)
		case "gpu_memory":
			r.GPUMemory, err = ParseSize(v)
		case "gpu_model":
			r.GPUModel = v
		default:
			return r, fmt.Errorf("resources: unknown key %q (known: cpu, memory, gpus, gpu_memory, gpu_model)", k)
		}
		if err != nil {
			return r, fmt.Errorf("resources: %s=%q: %v", k, v, err)
		}
	}
	return r, nil
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1},
}

// ParseSize reads "512MiB", "4GiB", "10G", "1000" (bytes).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("bad size %q (want e.g. 512MiB, 4GiB)", s)
	}
	return int64(f * float64(mult)), nil
}

// GPUActions lists the actions of targets and their dependencies that
// need GPUs: the executor checks them before anything runs.
func GPUActions(g *Graph, targets []*Target) []*Action {
	seen := map[Label]bool{}
	var out []*Action
	var walk func(t *Target)
	walk = func(t *Target) {
		if t == nil || seen[t.Label] {
			return
		}
		seen[t.Label] = true
		for _, a := range t.Actions {
			if a.Resources.GPUs > 0 {
				out = append(out, a)
			}
		}
		for _, d := range t.Deps() {
			walk(g.Targets[d])
		}
	}
	for _, t := range targets {
		walk(t)
	}
	return out
}
