package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

	"github.com/legobuild/lego/cas"
)

// Prior is a snapshot checked against the workspace as it is now: which
// sources and tools changed, and which actions' outputs in lego-out are
// still what they left there. A build given one (Options.Prior) takes an
// action whose inputs all have the digests they had, and whose outputs
// are intact, as up to date without keying it.
type Prior struct {
	snap        *Snapshot
	sources     map[string]*fileState // exec path -> as it is now
	srcChanged  map[string]bool
	tools       map[string]*fileState
	toolChanged map[string]bool
	outs        map[string]*outState // output exec path -> as recorded
	intact      []bool               // by action id
	fresh       [][]outState         // by action id: outputs with their fingerprints now
	reads       []readRec            // with their fingerprints now
	// moved is set when some fingerprint differed from the snapshot's,
	// or was racy: a new snapshot is worth writing even if nothing ran.
	// Moved names the first such file, for LEGO_DEBUG_SNAPSHOT.
	moved bool
	Moved string
}

// Check stats what the snapshot recorded, hashing only what a stat
// cannot vouch for, in parallel. It returns nil when a read of loading or
// analysis changed (the graph must be analysed afresh) or a source or
// tool is gone (a build from scratch says why).
func (s *Snapshot) Check(files *cas.FileCache) *Prior {
	p := &Prior{snap: s, reads: append([]readRec(nil), s.reads...)}
	var mu sync.Mutex
	failed := false
	fail := func() {
		mu.Lock()
		failed = true
		mu.Unlock()
	}
	moved := func(path string) {
		mu.Lock()
		if !p.moved {
			p.moved, p.Moved = true, path
		}
		mu.Unlock()
	}
	parallel(len(p.reads), func(i int) {
		r := &p.reads[i]
		fp, err := cas.Stat(r.path)
		if err == nil && fp == r.fp && !r.racy {
			return
		}
		var now readEntry
		if err == nil {
			if r.dir {
				now, err = readDirEntry(r.path)
			} else {
				now, err = readFileEntry(r.path)
			}
		}
		if err != nil || now.hash != r.hash {
			fail()
			return
		}
		r.readEntry = now
		moved(r.path)
	})
	if failed {
		return nil
	}
	check := func(recs []fileState, abs func(string) string) (map[string]*fileState, map[string]bool) {
		now := make([]fileState, len(recs))
		changed := make([]bool, len(recs))
		parallel(len(recs), func(i int) {
			rec := &recs[i]
			now[i] = *rec
			path := abs(rec.path)
			fp, err := cas.Stat(path)
			if err == nil && fp == rec.fp && !rec.racy {
				return
			}
			moved(path)
			t := time.Now()
			d, fp, err := files.DigestFingerprint(path)
			if err != nil {
				fail()
				return
			}
			now[i] = fileState{path: rec.path, hash: d.Hash, size: d.SizeBytes, exec: fp.Executable(), fp: fp, racy: fp.Racy(t) || fp.Ino == 0}
			changed[i] = d.Hash != rec.hash || d.SizeBytes != rec.size || fp.Executable() != rec.exec
		})
		m := make(map[string]*fileState, len(recs))
		ch := map[string]bool{}
		for i := range now {
			m[now[i].path] = &now[i]
			if changed[i] {
				ch[now[i].path] = true
			}
		}
		return m, ch
	}
	p.sources, p.srcChanged = check(s.sources, func(rel string) string { return filepath.Join(s.root, filepath.FromSlash(rel)) })
	p.tools, p.toolChanged = check(s.tools, func(abs string) string { return abs })
	if failed {
		return nil
	}
	for path := range p.srcChanged {
		if p.sources[path].exec != srcRec(s, path).exec {
			return nil // analysis saw the execute bit
		}
	}
	p.outs = map[string]*outState{}
	p.intact = make([]bool, len(s.acts))
	p.fresh = make([][]outState, len(s.acts))
	for i := range s.acts {
		for j := range s.acts[i].outs {
			o := &s.acts[i].outs[j]
			p.outs[o.path] = o
		}
	}
	parallel(len(s.acts), func(i int) {
		a := &s.acts[i]
		if !a.known {
			return
		}
		fresh := make([]outState, len(a.outs))
		for j := range a.outs {
			var ok, mv bool
			fresh[j], ok, mv = checkOutput(s.root, &a.outs[j])
			if mv || !ok {
				moved(a.outs[j].path)
			}
			if !ok {
				return
			}
		}
		p.intact[i], p.fresh[i] = true, fresh
	})
	return p
}

// srcRec is the snapshot's record of the source at path.
func srcRec(s *Snapshot, path string) *fileState {
	i := sort.Search(len(s.sources), func(i int) bool { return s.sources[i].path >= path })
	if i < len(s.sources) && s.sources[i].path == path {
		return &s.sources[i]
	}
	return &fileState{}
}

// checkOutput reports whether the output o recorded is still in lego-out
// as it was, with its fingerprints now; moved when any differed.
func checkOutput(root string, o *outState) (now outState, ok, moved bool) {
	now = *o
	path := filepath.Join(root, filepath.FromSlash(o.path))
	if !o.tree {
		f, ok, mv := checkFile(path, fileState{hash: o.hash, size: o.size, exec: o.exec, fp: o.fp, racy: o.racy})
		now.fp, now.racy = f.fp, f.racy
		return now, ok, mv
	}
	// A directory: exactly the files recorded, each as it was.
	want := make(map[string]int, len(o.entries))
	dirs := map[string]bool{".": true}
	for i, e := range o.entries {
		want[e.path] = i
		for d := filepath.Dir(e.path); d != "."; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	now.entries = append([]fileState(nil), o.entries...)
	seen := 0
	err := filepath.WalkDir(path, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(path, p)
		if e.IsDir() {
			if !dirs[rel] {
				return errStale
			}
			return nil
		}
		i, ok := want[rel]
		if !ok {
			return errStale
		}
		f, ok, mv := checkFile(p, o.entries[i])
		if !ok {
			return errStale
		}
		moved = moved || mv
		now.entries[i].fp, now.entries[i].racy = f.fp, f.racy
		seen++
		return nil
	})
	return now, err == nil && seen == len(o.entries), moved
}

// checkFile reports whether the file at path is the one rec describes: by
// its fingerprint, or else by its bytes.
func checkFile(path string, rec fileState) (now fileState, ok, moved bool) {
	now = rec
	fp, err := cas.Stat(path)
	if err != nil || !fp.Regular() {
		return now, false, true
	}
	if fp == rec.fp && !rec.racy {
		return now, true, false
	}
	t := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return now, false, true
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	after, serr := cas.Stat(path)
	if err != nil || serr != nil || hex.EncodeToString(h.Sum(nil)) != rec.hash || n != rec.size || fp.Executable() != rec.exec {
		return now, false, true
	}
	now.fp, now.racy = fp, fp.Racy(t) || after != fp
	return now, true, true
}

// parallel calls fn(0..n-1) on a few goroutines: the stats are CPU work in
// the kernel, which every core can do.
func parallel(n int, fn func(i int)) {
	workers := min(n, 2*runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, min(n, (w+1)*chunk)
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// fromPrior returns the outputs n's action left last time when they are
// still what it would make: every input has the digest it had, no tool
// changed, and its outputs in lego-out are intact.
func (b *builder) fromPrior(n *node) (map[string]*artifact, bool) {
	p := b.o.Prior
	a := n.a
	if p == nil || a.id >= len(p.intact) || !p.intact[a.id] {
		return nil, false
	}
	for _, f := range a.Inputs {
		if f.producer == nil {
			if _, ok := p.sources[f.Path]; !ok || p.srcChanged[f.Path] {
				return nil, false
			}
			continue
		}
		rec := p.outs[f.Path]
		art := producedInput(n, f)
		if rec == nil || art == nil || art.digest.Hash != rec.hash || art.digest.SizeBytes != rec.size || art.exec != rec.exec {
			return nil, false
		}
	}
	for _, t := range a.Tools {
		if _, ok := p.tools[t]; a.Image == nil && (!ok || p.toolChanged[t]) {
			return nil, false // an image action runs none of the host's tools
		}
	}
	st := &p.snap.acts[a.id]
	outs := make(map[string]*artifact, len(st.outs))
	for _, o := range st.outs {
		art := &artifact{digest: &repb.Digest{Hash: o.hash, SizeBytes: o.size}, exec: o.exec}
		if o.tree {
			// Dependents key on the Tree; the store has it, or the
			// action is built again.
			t := &repb.Tree{}
			if err := b.o.Store.GetProto(art.digest, t); err != nil {
				return nil, false
			}
			art.tree = t
		}
		outs[o.path] = art
	}
	return outs, true
}

// producedInput is the artifact a dependency of n built for f, or nil.
func producedInput(n *node, f *File) *artifact {
	for _, d := range n.deps {
		if d.a == f.producer {
			return d.outs[f.Path]
		}
	}
	return nil
}
