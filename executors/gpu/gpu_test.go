package gpu

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

	"github.com/legobuild/lego/cas"
	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/executors/local"
	"github.com/legobuild/lego/internal/testenv"
)

// node is go-nvml's mock DGX H100 server with n GPUs, told its topology:
// GPUs in one group are NVLinked pairwise (4 links each), others meet at
// the system level. memUsed is what each device's processes use.
type node struct {
	*server.Server
	memUsed sync.Map // UUID -> uint64
}

func newNode(t testing.TB, n int, groups ...[]int) *node {
	t.Helper()
	nd := &node{Server: dgxh100.NewWithGPUs(gpus.Multiple(n, gpus.H100_SXM5_80GB)...)}
	group := make([]int, n)
	for g, members := range groups {
		for _, m := range members {
			group[m] = g + 1
		}
	}
	bus := func(i int) string { return fmt.Sprintf("0000:%02x:00.0", 0x10+i) }
	for i, h := range nd.Devices {
		d := h.(*server.Device)
		var peers []int
		for j := range n {
			if j != i && group[i] != 0 && group[i] == group[j] {
				peers = append(peers, j)
			}
		}
		const perPeer = 4
		d.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) {
			var p nvml.PciInfo
			for k, c := range bus(i) {
				p.BusId[k] = int8(c)
			}
			return p, nvml.SUCCESS
		}
		d.GetNvLinkStateFunc = func(link int) (nvml.EnableState, nvml.Return) {
			if link < perPeer*len(peers) {
				return nvml.FEATURE_ENABLED, nvml.SUCCESS
			}
			return nvml.FEATURE_DISABLED, nvml.SUCCESS
		}
		d.GetNvLinkRemotePciInfoFunc = func(link int) (nvml.PciInfo, nvml.Return) {
			var p nvml.PciInfo
			for k, c := range bus(peers[link/perPeer]) {
				p.BusId[k] = int8(c)
			}
			return p, nvml.SUCCESS
		}
		d.GetTopologyCommonAncestorFunc = func(other nvml.Device) (nvml.GpuTopologyLevel, nvml.Return) {
			o := other.(*server.Device)
			if group[i] != 0 && group[i] == group[o.Index] {
				return nvml.TOPOLOGY_NODE, nvml.SUCCESS
			}
			return nvml.TOPOLOGY_SYSTEM, nvml.SUCCESS
		}
		d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
			if v, ok := nd.memUsed.Load(d.UUID); ok {
				return []nvml.ProcessInfo{{Pid: 4242, UsedGpuMemory: v.(uint64)}}, nvml.SUCCESS
			}
			return nil, nvml.SUCCESS
		}
	}
	return nd
}

func open(t testing.TB, nd *node) *NVML {
	t.Helper()
	nv, err := Open(nd)
	if err != nil {
		t.Fatal(err)
	}
	return nv
}

// dgx8 is an 8-GPU node whose GPUs form two NVLink islands of four.
func dgx8(t testing.TB) *node { return newNode(t, 8, []int{0, 1, 2, 3}, []int{4, 5, 6, 7}) }

func TestInventory(t *testing.T) {
	inv := open(t, dgx8(t)).Inventory
	if len(inv.Devices) != 8 {
		t.Fatalf("%d devices", len(inv.Devices))
	}
	seen := map[string]bool{}
	for _, d := range inv.Devices {
		if d.Model != "H100" || d.MemoryTotal < 80<<30 || d.UUID == "" || seen[d.UUID] || d.MIG {
			t.Errorf("device %+v", d)
		}
		seen[d.UUID] = true
	}
	if inv.Links(0, 1) != 4 || inv.Links(4, 7) != 4 || inv.Links(0, 4) != 0 {
		t.Errorf("links 0-1 %d, 4-7 %d, 0-4 %d", inv.Links(0, 1), inv.Links(4, 7), inv.Links(0, 4))
	}
	if c, err := inv.Class(); c != "H100" || err != nil {
		t.Errorf("class %q, %v", c, err)
	}
}

func TestModelClass(t *testing.T) {
	for name, want := range map[string]string{
		"NVIDIA H100 80GB HBM3":   "H100",
		"NVIDIA H100-SXM5-80GB":   "H100",
		"NVIDIA A100-SXM4-40GB":   "A100",
		"Tesla V100-SXM2-16GB":    "V100",
		"NVIDIA GeForce RTX 4090": "RTX4090",
		"NVIDIA H200":             "H200",
	} {
		if got := ModelClass(name); got != want {
			t.Errorf("ModelClass(%q) = %q, want %q", name, got, want)
		}
	}
}

// connected tells whether every pair of devs has NVLinks.
func connected(inv *Inventory, devs []Device) bool {
	for _, a := range devs {
		for _, b := range devs {
			if a.Index != b.Index && inv.Links(a.Index, b.Index) == 0 {
				return false
			}
		}
	}
	return true
}

func TestNVLinkConnectedSets(t *testing.T) {
	nv := open(t, dgx8(t))
	a := NewAllocator(nv.Inventory)
	ctx := context.Background()
	one, rel1, err := a.Acquire(ctx, Job{GPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	// With one GPU of an island taken, a 4-GPU job gets the other island
	// and a 2-GPU job a linked pair; the first job left its island's other
	// three GPUs together.
	four, rel4, err := a.Acquire(ctx, Job{GPUs: 4})
	if err != nil {
		t.Fatal(err)
	}
	if !connected(nv.Inventory, four) {
		t.Errorf("4-GPU job got %v, not an NVLink island", indexes(four))
	}
	two, rel2, err := a.Acquire(ctx, Job{GPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !connected(nv.Inventory, two) {
		t.Errorf("2-GPU job got %v, not NVLinked", indexes(two))
	}
	all := append(append(append([]Device(nil), one...), four...), two...)
	if n := len(uniq(all)); n != 7 || a.InUse() != 7 {
		t.Errorf("7 GPUs granted, %d distinct, %d in use", n, a.InUse())
	}
	rel1()
	rel2()
	rel4()
	if a.InUse() != 0 {
		t.Errorf("%d in use after release", a.InUse())
	}
}

func indexes(devs []Device) []int {
	var out []int
	for _, d := range devs {
		out = append(out, d.Index)
	}
	return out
}

func uniq(devs []Device) map[string]bool {
	m := map[string]bool{}
	for _, d := range devs {
		m[d.UUID] = true
	}
	return m
}

func TestImpossibleJobsFailAtOnce(t *testing.T) {
	a := NewAllocator(open(t, newNode(t, 2, []int{0, 1})).Inventory)
	for _, j := range []Job{{GPUs: 4}, {GPUs: 1, Model: "A100"}, {GPUs: 1, Memory: 200 << 30}} {
		if _, _, err := a.Acquire(context.Background(), j); err == nil || !strings.Contains(err.Error(), "this machine has") {
			t.Errorf("%+v: %v", j, err)
		}
	}
}

// Random mixes of jobs on the 8-GPU and the 2-GPU node: no device is ever
// held twice, every job ends (no deadlock), nothing stays allocated.
func TestRandomMixesNeverOverAllocate(t *testing.T) {
	for _, nd := range []*node{dgx8(t), newNode(t, 2, []int{0, 1})} {
		inv := open(t, nd).Inventory
		for seed := range int64(20) {
			rng := rand.New(rand.NewSource(seed))
			a := NewAllocator(inv)
			holders := make([]atomic.Int32, len(inv.Devices))
			var bad atomic.Int32
			var wg sync.WaitGroup
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			for range 40 {
				n := []int{1, 1, 1, 2, 2, 4, 8}[rng.Intn(7)]
				hold := time.Duration(rng.Intn(3000)) * time.Microsecond
				var est time.Duration
				if rng.Intn(2) == 0 {
					est = hold
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					devs, release, err := a.Acquire(ctx, Job{GPUs: n, Estimate: est})
					if err != nil {
						if n <= len(inv.Devices) {
							t.Errorf("seed %d: %d-GPU job: %v", seed, n, err)
						}
						return
					}
					for _, d := range devs {
						if holders[d.Index].Add(1) != 1 {
							bad.Add(1)
						}
					}
					time.Sleep(hold)
					for _, d := range devs {
						holders[d.Index].Add(-1)
					}
					release()
				}()
			}
			wg.Wait()
			if ctx.Err() != nil {
				t.Fatalf("seed %d: jobs still waiting after 20s: deadlock", seed)
			}
			cancel()
			if bad.Load() != 0 {
				t.Fatalf("seed %d: a device was held by two jobs at once", seed)
			}
			if a.InUse() != 0 {
				t.Fatalf("seed %d: %d devices still allocated", seed, a.InUse())
			}
		}
	}
}

// An 8-GPU job queued behind a stream of 1-GPU jobs starts once the jobs
// that were running when it arrived end: none that came later delays it.
func TestBigJobIsNotStarved(t *testing.T) {
	for _, known := range []bool{true, false} {
		s := newSched(open(t, dgx8(t)).Inventory)
		t0 := time.Unix(1000, 0)
		now := t0
		const dur = 10 * time.Second
		var running []*job
		submitSmall := func() {
			est := time.Duration(0)
			if known {
				est = dur
			}
			if _, err := s.submit(Job{GPUs: 1, Estimate: est}); err != nil {
				t.Fatal(err)
			}
		}
		for range 8 {
			submitSmall()
		}
		running = append(running, s.step(now)...)
		now = now.Add(5 * time.Second)
		big, err := s.submit(Job{GPUs: 8, Estimate: dur})
		if err != nil {
			t.Fatal(err)
		}
		arrived := now
		// A new 1-GPU job arrives every second; jobs end after dur.
		for now.Before(t0.Add(10 * time.Minute)) {
			submitSmall()
			var still []*job
			for _, r := range running {
				if !now.Before(r.start.Add(dur)) {
					s.finish(r)
				} else {
					still = append(still, r)
				}
			}
			running = append(still, s.step(now)...)
			if big.devs != nil {
				break
			}
			now = now.Add(time.Second)
		}
		if big.devs == nil {
			t.Fatalf("known=%v: the 8-GPU job never started", known)
		}
		if wait := big.start.Sub(arrived); wait > dur {
			t.Errorf("known=%v: the 8-GPU job waited %v behind jobs of %v", known, wait, dur)
		}
	}
}

func newStore(t testing.TB) *cas.Disk { return testenv.Store(t) }

func shellRequest(t testing.TB, s *cas.Disk, script string, gpus int) *executors.Request {
	t.Helper()
	root, dirs, err := testenv.InputRoot(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	cmd := &repb.Command{Arguments: []string{"/bin/sh", "-c", script}, OutputPaths: []string{"out"},
		EnvironmentVariables: []*repb.Command_EnvironmentVariable{{Name: "PATH", Value: "/usr/bin:/bin"}}}
	cd, err := s.PutProto(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return &executors.Request{Action: &repb.Action{CommandDigest: cd, InputRootDigest: root}, Command: cmd, Dirs: dirs,
		Limits: executors.Limits{GPUs: gpus}}
}

// The process sees its devices by UUID; the result carries GPU-seconds and
// the peak memory NVML reported; failed and cancelled actions free their
// devices.
func TestExecutorPassesDevicesAndRecordsUsage(t *testing.T) {
	nd := dgx8(t)
	nv := open(t, nd)
	s := newStore(t)
	e := New(local.New(s, local.Options{}), nv, nil, FallbackNone)
	e.poll = 10 * time.Millisecond
	for _, d := range nv.Inventory.Devices {
		nd.memUsed.Store(d.UUID, uint64(3<<30))
	}
	res, err := e.Execute(context.Background(), shellRequest(t, s, `echo "$CUDA_VISIBLE_DEVICES $NVIDIA_VISIBLE_DEVICES" > out; sleep 0.1`, 2))
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("%v %v", res, err)
	}
	b, err := s.Get(res.OutputFiles[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	u, ok := executors.GPUUsageOf(res)
	if !ok {
		t.Fatal("no GPU usage in the result")
	}
	list := strings.Join(u.Devices, ",")
	if len(u.Devices) != 2 || string(b) != list+" "+list+"\n" || !strings.HasPrefix(list, "GPU-") {
		t.Errorf("process saw %q, usage devices %v", b, u.Devices)
	}
	if u.GPUSeconds < 0.2 || u.PeakMemory != 6<<30 {
		t.Errorf("usage %+v, want >= 0.2 GPU-seconds and 6 GiB peak", u)
	}

	res, err = e.Execute(context.Background(), shellRequest(t, s, "exit 1", 8))
	if err != nil || res.ExitCode != 1 || e.Allocator().InUse() != 0 {
		t.Errorf("failed action: %v %v, %d GPUs still in use", res, err, e.Allocator().InUse())
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for e.Allocator().InUse() == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	if _, err := e.Execute(ctx, shellRequest(t, s, "sleep 30", 4)); err == nil {
		t.Error("cancelled action succeeded")
	}
	if e.Allocator().InUse() != 0 {
		t.Errorf("%d GPUs in use after a cancelled action", e.Allocator().InUse())
	}
}

func TestNoGPUFailsBeforeStartingOrFallsBack(t *testing.T) {
	s := newStore(t)
	inner := local.New(s, local.Options{})
	why := fmt.Errorf("NVML: %v", nvml.ErrorString(nvml.ERROR_LIBRARY_NOT_FOUND))
	e := New(inner, nil, why, FallbackNone)
	err := e.Check("//train:sft", executors.Limits{GPUs: 1})
	if err == nil || !strings.Contains(err.Error(), "--gpu_fallback=cpu") || !strings.Contains(err.Error(), "//train:sft") {
		t.Errorf("check: %v", err)
	}
	marker := filepath.Join(t.TempDir(), "ran")
	if _, err := e.Execute(context.Background(), shellRequest(t, s, "touch "+marker+"; echo > out", 1)); err == nil {
		t.Error("a GPU action ran with no GPU")
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the action started before failing")
	}
	fb := New(inner, nil, why, FallbackCPU)
	if c, _ := fb.Class(); c != "cpu" {
		t.Errorf("fallback class %q", c)
	}
	res, err := fb.Execute(context.Background(), shellRequest(t, s, `echo "[$CUDA_VISIBLE_DEVICES]" > out`, 1))
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("fallback: %v %v", res, err)
	}
	if b, _ := s.Get(res.OutputFiles[0].Digest); string(b) != "[]\n" {
		t.Errorf("fallback process saw devices %q", b)
	}
}

// The engine reserves devices before admitting an action for CPU; Execute
// then runs on those devices without asking again.
func TestReserveThenExecute(t *testing.T) {
	nv := open(t, dgx8(t))
	s := newStore(t)
	e := New(local.New(s, local.Options{}), nv, nil, FallbackNone)
	req := shellRequest(t, s, `echo "$CUDA_VISIBLE_DEVICES" > out`, 8)
	release, err := e.Reserve(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Devices) != 8 || e.Allocator().InUse() != 8 {
		t.Fatalf("reserved %v, %d in use", req.Devices, e.Allocator().InUse())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := e.Execute(ctx, req)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("execute on reserved devices: %v %v", res, err)
	}
	if b, _ := s.Get(res.OutputFiles[0].Digest); string(b) != strings.Join(req.Devices, ",")+"\n" {
		t.Errorf("process saw %q", b)
	}
	release()
	if e.Allocator().InUse() != 0 {
		t.Errorf("%d in use after release", e.Allocator().InUse())
	}
}
