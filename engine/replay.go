package engine

import (
	"context"
	"fmt"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
)

// Settled reports whether the prior snapshot vouches for every action of
// the build: no source or tool changed, every output is intact, and no
// key depends on this machine's GPUs. Such a build is replayed (Replay),
// without its graph.
func (p *Prior) Settled() bool {
	if len(p.srcChanged) > 0 || len(p.toolChanged) > 0 {
		return false
	}
	for i, a := range p.snap.acts {
		if a.known && (!p.intact[i] || a.gpus) {
			return false
		}
	}
	return true
}

// Replay is the build of a settled prior: every action taken as a cache
// hit, with the events, tallies, use records and history such a build
// leaves, and the snapshot written again where a fingerprint moved. It
// decodes, keys and looks up nothing.
func Replay(ctx context.Context, p *Prior, o Options) (*Summary, error) {
	if o.Listener == nil {
		o.Listener = Listeners(nil)
	}
	s := p.snap
	if !p.Replayable(o) {
		return nil, fmt.Errorf("replay: the snapshot was made for another store state or sandbox")
	}
	sum := &Summary{}
	remaining := map[string]int{}
	for _, a := range s.acts {
		if a.known {
			sum.Total++
			remaining[a.owner]++
		}
	}
	now := time.Now
	o.Listener.Event(&Event{Type: EvBuildStarted, Time: now(), Total: sum.Total})
	ok := true
	for _, l := range s.labels {
		if remaining[l.String()] == 0 {
			o.Listener.Event(&Event{Type: EvTargetStarted, Time: now(), Label: l.String()})
			o.Listener.Event(&Event{Type: EvTargetFinished, Time: now(), Label: l.String(), Success: &ok})
		}
	}
	started := map[string]bool{}
	var used []*repb.Digest
	for _, a := range s.acts {
		if !a.known {
			continue
		}
		if !started[a.owner] {
			started[a.owner] = true
			o.Listener.Event(&Event{Type: EvTargetStarted, Time: now(), Label: a.owner})
		}
		if !a.write {
			used = append(used, &repb.Digest{Hash: a.key, SizeBytes: a.keySize})
		}
		if a.tally != "" {
			if sum.Tallies == nil {
				sum.Tallies = map[string]map[string]int{}
			}
			if sum.Tallies[a.owner] == nil {
				sum.Tallies[a.owner] = map[string]int{}
			}
			sum.Tallies[a.owner][a.tally]++
			o.Listener.Event(&Event{Type: EvTally, Time: now(), Label: a.owner, Message: a.tally})
		}
		o.Listener.Event(&Event{Type: EvActionCached, Time: now(), Label: a.owner, Action: a.desc, Mnemonic: a.mnem, Key: a.key})
		sum.Cached++
		if remaining[a.owner]--; remaining[a.owner] == 0 {
			o.Listener.Event(&Event{Type: EvTargetFinished, Time: now(), Label: a.owner, Success: &ok})
		}
	}
	if err := o.Store.RecordUse(used); err != nil {
		sum.Errors = append(sum.Errors, fmt.Errorf("record cache use: %w", err))
	}
	if o.History != nil {
		if err := o.History.Save(); err != nil {
			sum.Errors = append(sum.Errors, fmt.Errorf("save build history: %w", err))
		}
	}
	if p.moved && o.Snapshot != nil {
		if err := writeSnapshot(o.Snapshot.Path, p.encode(o.Snapshot.Key)); err != nil {
			o.Listener.Event(&Event{Type: EvWarning, Time: now(), Message: "build snapshot not saved (the next build checks everything again): " + err.Error()})
		}
	}
	o.Listener.Event(&Event{Type: EvBuildFinished, Time: now(), Success: &ok, Total: sum.Total, Cached: sum.Cached, Tallies: sum.Tallies})
	return sum, ctx.Err()
}

// encode is the snapshot again with the fingerprints the check took.
func (p *Prior) encode(key SnapshotKey) []byte {
	s := p.snap
	now := func(recs []fileState, m map[string]*fileState) []fileState {
		out := make([]fileState, len(recs))
		for i, r := range recs {
			if f := m[r.path]; f != nil {
				out[i] = *f
			} else {
				out[i] = r
			}
		}
		return out
	}
	acts := make([]actState, len(s.acts))
	for i, a := range s.acts {
		acts[i] = a
		if a.known && p.fresh[i] != nil {
			acts[i].outs = p.fresh[i]
		}
	}
	return encodeSnapshot(key.hash(), s.gpuClass, s.sandbox, s.collected, p.reads, s.labels, nil, []byte(s.graph),
		now(s.sources, p.sources), now(s.tools, p.tools), acts)
}

// Replayable reports whether a settled prior may be replayed into a build
// with o's store and sandbox: the snapshot's store has not been collected
// since, and its keys are for this sandbox.
func (p *Prior) Replayable(o Options) bool {
	return p.snap.collected == o.Collected && p.snap.sandbox == o.Sandbox
}

// Targets is how many targets the build was asked for.
func (p *Prior) Targets() int { return len(p.snap.labels) }
