// Package gpu gives actions exclusive GPUs: an inventory read through NVML
// (go-nvml), an allocator that packs GPU actions onto the devices without
// over-allocating or starving big jobs, and an executor that wraps the one
// running the process (local or containerd), passing the chosen devices by
// UUID and recording GPU-seconds and peak memory.
//
// Binaries linking go-nvml must be linked lazily
// (-ldflags=-extldflags=-Wl,-z,lazy): on a machine without the NVIDIA
// driver, Init then reports the library missing instead of the process
// dying at start-up.
package gpu

import (
	"fmt"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Device is one GPU.
type Device struct {
	Index       int
	UUID        string
	Name        string // as NVML says, e.g. "NVIDIA H100 80GB HBM3"
	Model       string // model class, e.g. "H100"
	MemoryTotal uint64 // bytes
	MemoryFree  uint64 // bytes, when read
	MIG         bool   // MIG mode on: not allocated whole
	BusID       string
}

// Inventory is the GPUs of a machine and how they are connected.
type Inventory struct {
	Devices []Device
	// links[i][j] is the number of NVLinks between devices i and j;
	// level[i][j] their nearest common ancestor (nvml.GpuTopologyLevel,
	// lower is closer; -1 unknown).
	links [][]int
	level [][]int
}

// NewInventory makes an inventory of devices with no known topology
// (links and levels are set with Link and Level).
func NewInventory(devs []Device) *Inventory {
	inv := &Inventory{Devices: devs}
	n := len(devs)
	inv.links = make([][]int, n)
	inv.level = make([][]int, n)
	for i := range n {
		inv.links[i] = make([]int, n)
		inv.level[i] = make([]int, n)
		for j := range n {
			inv.level[i][j] = -1
		}
	}
	return inv
}

// Links returns the number of NVLinks between devices i and j.
func (inv *Inventory) Links(i, j int) int { return inv.links[i][j] }

// distance orders pairs of devices: NVLink first (more links closer),
// then by the topology level of their common ancestor.
func (inv *Inventory) distance(i, j int) int {
	if i == j {
		return 0
	}
	if l := inv.links[i][j]; l > 0 {
		return 10 - min(l, 9) // 1..9
	}
	if lv := inv.level[i][j]; lv >= 0 {
		return 100 + lv
	}
	return 1000
}

// Read reads the inventory through lib, which must be initialized.
func Read(lib nvml.Interface) (*Inventory, error) {
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("NVML: counting devices: %v", nvml.ErrorString(ret))
	}
	handles := make([]nvml.Device, n)
	devs := make([]Device, n)
	for i := range n {
		h, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("NVML: device %d: %v", i, nvml.ErrorString(ret))
		}
		handles[i] = h
		d := Device{Index: i}
		if d.UUID, ret = h.GetUUID(); ret != nvml.SUCCESS {
			return nil, fmt.Errorf("NVML: UUID of device %d: %v", i, nvml.ErrorString(ret))
		}
		d.Name, _ = h.GetName()
		d.Model = ModelClass(d.Name)
		if mem, ret := h.GetMemoryInfo(); ret == nvml.SUCCESS {
			d.MemoryTotal, d.MemoryFree = mem.Total, mem.Free
		}
		if cur, _, ret := h.GetMigMode(); ret == nvml.SUCCESS {
			d.MIG = cur == nvml.DEVICE_MIG_ENABLE
		}
		if pci, ret := h.GetPciInfo(); ret == nvml.SUCCESS {
			d.BusID = busID(pci)
		}
		devs[i] = d
	}
	inv := NewInventory(devs)
	byBus := map[string]int{}
	for i, d := range devs {
		if d.BusID != "" {
			byBus[strings.ToLower(d.BusID)] = i
		}
	}
	// switched[i] are the NVSwitches device i has links to: NVML names
	// the switch, not the GPU, at the far end of such a link, and GPUs on
	// one switch are NVLink-connected.
	switched := make([]map[string]int, n)
	for i, h := range handles {
		switched[i] = map[string]int{}
		for l := range nvml.NVLINK_MAX_LINKS {
			state, ret := h.GetNvLinkState(l)
			if ret != nvml.SUCCESS || state != nvml.FEATURE_ENABLED {
				continue
			}
			pci, ret := h.GetNvLinkRemotePciInfo(l)
			if ret != nvml.SUCCESS {
				continue
			}
			remote := strings.ToLower(busID(pci))
			if j, ok := byBus[remote]; ok {
				if j != i {
					inv.links[i][j]++
				}
			} else if remote != "" {
				switched[i][remote]++
			}
		}
		for j := range handles {
			if j == i {
				continue
			}
			if lv, ret := h.GetTopologyCommonAncestor(handles[j]); ret == nvml.SUCCESS {
				inv.level[i][j] = int(lv)
			}
		}
	}
	for i := range n {
		for j := range n {
			for sw, c := range switched[i] {
				if i != j && switched[j][sw] > 0 {
					inv.links[i][j] += min(c, switched[j][sw])
				}
			}
		}
	}
	return inv, nil
}

// busID renders the PCI bus id NVML stores as a NUL-padded C string.
func busID(p nvml.PciInfo) string {
	b := make([]byte, 0, len(p.BusId))
	for _, c := range p.BusId {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

// ModelClass is the model a GPU name denotes, without vendor, form factor
// or memory size: "NVIDIA H100 80GB HBM3" and "NVIDIA H100-SXM5-80GB" are
// both "H100", "NVIDIA GeForce RTX 4090" is "RTX4090".
func ModelClass(name string) string {
	var words []string
	for _, w := range strings.Fields(name) {
		switch strings.ToUpper(w) {
		case "NVIDIA", "TESLA", "GEFORCE", "QUADRO":
			continue
		}
		words = append(words, w)
	}
	if len(words) == 0 {
		return ""
	}
	first, _, _ := strings.Cut(words[0], "-")
	if u := strings.ToUpper(first); (u == "RTX" || u == "GTX") && len(words) > 1 {
		second, _, _ := strings.Cut(words[1], "-")
		return u + strings.ToUpper(second)
	}
	return strings.ToUpper(first)
}

// Class is the model class every device shares, "" for none, or an error
// naming the models when they differ (an action must then say which).
func (inv *Inventory) Class() (string, error) {
	class := ""
	for _, d := range inv.Devices {
		if class == "" {
			class = d.Model
		} else if d.Model != class {
			return "", fmt.Errorf("this machine has GPUs of several models (%s and %s): set gpu_model in the action's resources", class, d.Model)
		}
	}
	return class, nil
}
