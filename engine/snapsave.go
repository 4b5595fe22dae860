package engine

import (
	"path/filepath"
	"sort"
	"sync"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

	"github.com/legobuild/lego/cas"
)

// usePrior takes n's action as up to date from the prior snapshot when
// fromPrior allows, as a cache hit would: counted cached, its tally word
// counted again, its key's use recorded.
func (b *builder) usePrior(n *node) bool {
	outs, ok := b.fromPrior(n)
	if !ok {
		return false
	}
	a := n.a
	st := &b.o.Prior.snap.acts[a.id]
	b.targetStarted(a.Owner)
	n.outs, n.prior = outs, true
	n.key = &repb.Digest{Hash: st.key, SizeBytes: st.keySize}
	n.state = b.o.Prior.fresh[a.id]
	if !a.IsWrite {
		b.mu.Lock()
		b.used = append(b.used, n.key)
		b.mu.Unlock()
	}
	b.count(n, st.tally)
	b.o.Listener.Event(&Event{Type: EvActionCached, Time: time.Now(), Label: a.Owner.String(),
		Action: a.Describe(), Mnemonic: a.Mnemonic, Key: st.key})
	return true
}

// recordOutputs fingerprints n's outputs as just materialized in lego-out,
// for the snapshot. A file that cannot be seen leaves n's state unknown.
func (b *builder) recordOutputs(n *node) {
	if b.o.Snapshot == nil || b.o.Lazy {
		return
	}
	state := make([]outState, 0, len(n.a.Outputs))
	for _, o := range n.a.Outputs {
		art := n.outs[o.Path]
		if art == nil {
			return
		}
		dst := filepath.Join(b.g.Root, filepath.FromSlash(o.Path))
		s := outState{path: o.Path, hash: art.digest.Hash, size: art.digest.SizeBytes, exec: art.exec}
		if art.tree == nil {
			f, ok := fingerprint(dst, fileState{hash: s.hash, size: s.size, exec: s.exec})
			if !ok {
				return
			}
			s.fp, s.racy = f.fp, f.racy
		} else {
			s.tree = true
			files, err := treeFiles(art.tree)
			if err != nil {
				return
			}
			for _, tf := range files {
				f, ok := fingerprint(filepath.Join(dst, filepath.FromSlash(tf.path)),
					fileState{path: tf.path, hash: tf.digest.Hash, size: tf.digest.SizeBytes, exec: tf.exec})
				if !ok {
					return
				}
				s.entries = append(s.entries, f)
			}
		}
		state = append(state, s)
	}
	n.state = state
}

// fingerprint adds the fingerprint of the file at path to f, which
// describes its bytes as just written.
func fingerprint(path string, f fileState) (fileState, bool) {
	t := time.Now()
	fp, err := cas.Stat(path)
	if err != nil || !fp.Regular() || fp.Size != f.size {
		return f, false
	}
	f.fp, f.racy = fp, fp.Racy(t)
	return f, true
}

// fileState is what this build knows of the source or tool at path: its
// digest and fingerprint if it was digested, else the prior check's.
func (b *builder) fileState(m *sync.Map, path string, p *Prior, tool bool) (fileState, bool) {
	if v, ok := m.Load(path); ok {
		if s := v.(*sourceOnce); s.err == nil && s.state.hash != "" {
			return s.state, true
		}
	}
	if p == nil {
		return fileState{}, false
	}
	prior := p.sources
	if tool {
		prior = p.tools
	}
	if st, ok := prior[path]; ok {
		return *st, true
	}
	return fileState{}, false
}

// records lists what was read, sorted.
func (r *Reads) records() []readRec {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]readRec, 0, len(r.files)+len(r.dirs))
	for p, e := range r.files {
		out = append(out, readRec{path: p, readEntry: e})
	}
	for p, e := range r.dirs {
		out = append(out, readRec{path: p, dir: true, readEntry: e})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].path != out[j].path {
			return out[i].path < out[j].path
		}
		return !out[i].dir
	})
	return out
}

// saveSnapshot writes what this build knows for the next one; nothing
// when the prior snapshot already says all of it.
func (b *builder) saveSnapshot() error {
	spec, p := b.o.Snapshot, b.o.Prior
	if p != nil && !p.moved && !b.keyAll && b.g.restored {
		all := true
		for _, n := range b.order {
			all = all && n.prior
		}
		if all {
			return nil
		}
	}
	reads := spec.Reads.records()
	var graph []byte
	if b.g.restored {
		if p == nil {
			return nil // nothing says what analysis read
		}
		reads, graph = p.reads, []byte(p.snap.graph)
	}
	var sources, tools []fileState
	seenSrc, seenTool := map[string]bool{}, map[string]bool{}
	for _, n := range b.order {
		for _, f := range n.a.Inputs {
			if f.producer != nil || seenSrc[f.Path] {
				continue
			}
			seenSrc[f.Path] = true
			if st, ok := b.fileState(&b.sources, f.Path, p, false); ok {
				sources = append(sources, st)
			}
		}
		if n.a.Image == nil {
			for _, t := range n.a.Tools {
				if seenTool[t] {
					continue
				}
				seenTool[t] = true
				if st, ok := b.fileState(&b.tools, t, p, true); ok {
					tools = append(tools, st)
				}
			}
		}
	}
	acts := make([]actState, len(b.g.Actions))
	for i, a := range b.g.Actions {
		n := b.nodes[a]
		if n == nil || !n.done || n.failed || n.key == nil || n.state == nil {
			continue
		}
		acts[i] = actState{known: true, owner: a.Owner.String(), mnem: a.Mnemonic, desc: a.Describe(), write: a.IsWrite,
			gpus: a.Resources.GPUs > 0 && a.Resources.GPUModel == "",
			key:  n.key.Hash, keySize: n.key.SizeBytes, tally: n.word, outs: n.state}
	}
	sort.Slice(sources, func(i, j int) bool { return sources[i].path < sources[j].path })
	key := spec.Key.hash()
	return writeSnapshot(spec.Path, encodeSnapshot(key, b.o.GPUClass, b.o.Sandbox, b.o.Collected, reads, spec.Labels, b.g, graph, sources, tools, acts))
}
