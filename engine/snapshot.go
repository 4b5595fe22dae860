package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/legobuild/lego/cas"
)

// A build snapshot is what a build leaves so that the next one can prove
// cheaply that nothing changed: the fingerprints and digests of what
// loading and analysis read (Reads), the analysed action graph, and for
// every action its key, its outputs' digests and the fingerprints of their
// copies in lego-out, with the sources and tools it read. The next build
// with the same key stats all of that; where everything matches it runs
// nothing, where some sources changed it keys and runs only the actions
// whose inputs changed (Prior), and where a read changed it loads and
// analyses afresh. A snapshot is a cache, never a source of truth: each
// claim in it is checked against the files before it is used, a damaged
// one fails its checksum and is ignored, and one made by another lego
// binary or for other flags has another key and is never read.

// SnapshotKey is what a snapshot was made for: the workspace, the
// patterns built, the flags and environment that change what loading,
// analysis or the keys see, and the lego binary itself.
type SnapshotKey struct {
	Root     string
	Patterns []string
	Flags    []string
	Binary   cas.Fingerprint
}

func (k SnapshotKey) hash() string {
	e := &snapEnc{strs: map[string]uint64{}}
	e.str(k.Root)
	e.strings(k.Patterns)
	e.strings(k.Flags)
	e.fp(k.Binary)
	sum := sha256.Sum256(e.b)
	return hex.EncodeToString(sum[:])
}

// SnapshotPath is the file of key's snapshot under a workspace's state
// directory: one per key, so builds with other flags keep theirs.
func SnapshotPath(stateDir string, key SnapshotKey) string {
	return filepath.Join(stateDir, snapshotDir, key.hash()[:32])
}

const (
	snapshotDir   = "snapshots"
	snapshotMagic = "LGSN1\n\x00\x00"
	// snapshotsKept is how many snapshots (flag sets) a workspace keeps.
	snapshotsKept = 4
)

// fileState is a source or tool as a build used it.
type fileState struct {
	path string
	hash string
	size int64
	exec bool
	fp   cas.Fingerprint
	racy bool
}

// outState is an action's output as its last build left it in lego-out:
// a file, or a directory whose files are listed.
type outState struct {
	path    string
	hash    string // the file's, or the directory's Tree's
	size    int64
	exec    bool
	tree    bool
	fp      cas.Fingerprint
	racy    bool
	entries []fileState // a directory's files: path relative to it
}

// actState is what the last build knew of one action, with what a build
// that replays it needs to say (its owner, mnemonic and description).
type actState struct {
	known   bool
	owner   string
	mnem    string
	desc    string
	write   bool
	gpus    bool // keyed with the machine's GPU class
	key     string
	keySize int64
	tally   string
	outs    []outState
}

// readRec is one thing loading or analysis read.
type readRec struct {
	path string
	dir  bool
	readEntry
}

// Snapshot is a decoded snapshot file.
type Snapshot struct {
	key               string
	root              string
	graph             string // the graph section as read, decoded by Graph
	gpuClass, sandbox string
	collected         string
	reads             []readRec
	labels            []Label
	g                 *Graph
	sources, tools    []fileState
	acts              []actState // by action id
}

// ReadSnapshot reads the snapshot for key at path. A missing, damaged or
// foreign file gives nil and the reason, never an error: it only costs a
// full build.
func ReadSnapshot(path string, key SnapshotKey, root string) (*Snapshot, string) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, "no snapshot"
		}
		return nil, err.Error()
	}
	if len(b) < len(snapshotMagic)+4 || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return nil, "not a snapshot of this format"
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, "snapshot damaged (checksum)"
	}
	d := &snapDec{s: string(body[len(snapshotMagic):])}
	s := &Snapshot{}
	if s.key = d.str(); s.key != key.hash() {
		return nil, "snapshot of another key"
	}
	s.graph, s.root = d.raw(), root
	d.strs = nil
	s.decode(d, root)
	if d.bad || len(d.s) != 0 {
		return nil, "snapshot damaged (structure)"
	}
	return s, ""
}

// Graph is the analysed graph the snapshot holds and the targets built,
// decoded on first use: a build that replays the snapshot needs none of
// it. A graph that does not decode gives nil.
func (s *Snapshot) Graph() (*Graph, []*Target) {
	if s.g == nil {
		g := decodeGraph(s.graph, s.root)
		if g == nil || len(g.Actions) != len(s.acts) {
			return nil, nil
		}
		s.g = g
	}
	ts := make([]*Target, len(s.labels))
	for i, l := range s.labels {
		if ts[i] = s.g.Targets[l]; ts[i] == nil {
			return nil, nil
		}
	}
	return s.g, ts
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeSnapshot writes a snapshot of the graph g built for labels.
func encodeSnapshot(key, gpuClass, sandbox, collected string, reads []readRec, labels []Label, g *Graph, graph []byte,
	sources, tools []fileState, acts []actState) []byte {
	e := &snapEnc{b: []byte(snapshotMagic), strs: map[string]uint64{}}
	e.str(key)
	// The graph first, with strings of its own, so that a build from a
	// restored graph writes the bytes it read rather than encode it again.
	if graph == nil {
		graph = encodeGraph(g, labels)
	}
	e.bytes(graph)
	e.strs = map[string]uint64{}
	e.str(gpuClass)
	e.str(sandbox)
	e.str(collected)
	e.uint(uint64(len(reads)))
	for _, r := range reads {
		e.raw(r.path)
		e.bool(r.dir)
		e.fp(r.fp)
		e.bool(r.racy)
		e.raw(r.hash)
	}
	e.uint(uint64(len(labels)))
	for _, l := range labels {
		e.str(l.String())
	}
	for _, fs := range [][]fileState{sources, tools} {
		e.uint(uint64(len(fs)))
		for i := range fs {
			e.fileState(&fs[i])
		}
	}
	e.uint(uint64(len(acts)))
	for _, a := range acts {
		e.bool(a.known)
		if !a.known {
			continue
		}
		e.str(a.owner)
		e.str(a.mnem)
		e.raw(a.desc)
		e.bool(a.write)
		e.bool(a.gpus)
		e.raw(a.key)
		e.int(a.keySize)
		e.str(a.tally)
		e.uint(uint64(len(a.outs)))
		for _, o := range a.outs {
			e.raw(o.path)
			e.raw(o.hash)
			e.int(o.size)
			e.bool(o.exec)
			e.bool(o.tree)
			e.fp(o.fp)
			e.bool(o.racy)
			e.uint(uint64(len(o.entries)))
			for i := range o.entries {
				e.fileState(&o.entries[i])
			}
		}
	}
	return binary.LittleEndian.AppendUint32(e.b, crc32.Checksum(e.b, castagnoli))
}

func (e *snapEnc) fileState(f *fileState) {
	e.raw(f.path)
	e.raw(f.hash)
	e.int(f.size)
	e.bool(f.exec)
	e.fp(f.fp)
	e.bool(f.racy)
}

func (d *snapDec) fileState() fileState {
	return fileState{path: d.raw(), hash: d.raw(), size: d.int(), exec: d.bool(), fp: d.fp(), racy: d.bool()}
}

func (s *Snapshot) decode(d *snapDec, root string) {
	s.gpuClass = d.str()
	s.sandbox = d.str()
	s.collected = d.str()
	s.reads = make([]readRec, d.count())
	for i := range s.reads {
		r := &s.reads[i]
		r.path = d.raw()
		r.dir = d.bool()
		r.fp = d.fp()
		r.racy = d.bool()
		r.hash = d.raw()
	}
	s.labels = make([]Label, d.count())
	for i := range s.labels {
		s.labels[i] = d.label()
	}
	for _, fs := range []*[]fileState{&s.sources, &s.tools} {
		*fs = make([]fileState, d.count())
		for i := range *fs {
			(*fs)[i] = d.fileState()
		}
	}
	s.acts = make([]actState, d.count())
	for i := range s.acts {
		a := &s.acts[i]
		if a.known = d.bool(); !a.known {
			continue
		}
		a.owner = d.str()
		a.mnem = d.str()
		a.desc = d.raw()
		a.write = d.bool()
		a.gpus = d.bool()
		a.key = d.raw()
		a.keySize = d.int()
		a.tally = d.str()
		a.outs = make([]outState, d.count())
		for j := range a.outs {
			o := &a.outs[j]
			o.path = d.raw()
			o.hash = d.raw()
			o.size = d.int()
			o.exec = d.bool()
			o.tree = d.bool()
			o.fp = d.fp()
			o.racy = d.bool()
			if n := d.count(); n > 0 {
				o.entries = make([]fileState, n)
				for k := range o.entries {
					o.entries[k] = d.fileState()
				}
			}
		}
	}
}

// writeSnapshot replaces the snapshot at path atomically and removes the
// workspace's oldest ones beyond snapshotsKept.
func writeSnapshot(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp.%d", path, os.Getpid())
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	type old struct {
		name  string
		mtime int64
	}
	var olds []old
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp.") {
			continue // another build's, being written
		}
		if fi, err := e.Info(); err == nil {
			olds = append(olds, old{e.Name(), fi.ModTime().UnixNano()})
		}
	}
	sort.Slice(olds, func(i, j int) bool { return olds[i].mtime > olds[j].mtime })
	for i := snapshotsKept; i < len(olds); i++ {
		os.Remove(filepath.Join(dir, olds[i].name))
	}
	return nil
}
