package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/legobuild/lego/engine"
)

// executed reads what lego's last build in the workspace ws ran, from
// its history (lego-out/.lego/last_build.json, what `lego explain` reads):
// the labels of the actions, with how long each ran. An event file would
// say the same, at the cost of writing an event per action.
func executed(ws string) (map[string]time.Duration, error) {
	recs, err := engine.LastBuild(filepath.Join(ws, engine.OutDir, ".lego"))
	if err != nil {
		return nil, err
	}
	ran := map[string]time.Duration{}
	for _, r := range recs {
		// One action per genrule: a label twice would be a second action.
		if _, ok := ran[r.Label]; ok {
			return nil, fmt.Errorf("%s ran twice", r.Label)
		}
		ran[r.Label] = r.Duration
	}
	return ran, nil
}

// outputs reads every node's output from the workspace's lego-out.
func (g *Graph) outputs(ws string) ([]string, error) {
	outs := make([]string, len(g.nodes))
	for i := range g.nodes {
		b, err := os.ReadFile(filepath.Join(ws, g.nodes[i].out()))
		if err != nil {
			return nil, err
		}
		outs[i] = string(b)
	}
	return outs, nil
}

// mustRun is what a build after editing file has to run, given every
// output before and after it: the targets reading file, and those one of
// whose direct deps' outputs changed. Nothing else: an unchanged output
// stops the change (change pruning).
func (g *Graph) mustRun(file string, before, after []string) map[string]bool {
	want := map[string]bool{}
	for i := range g.nodes {
		nd := &g.nodes[i]
		if nd.reads(file) {
			want[nd.label()] = true
		}
		for _, d := range nd.deps {
			if before[d] != after[d] {
				want[nd.label()] = true
			}
		}
	}
	return want
}

// sameSet fails with what ran that needed not, and what needed to run and
// did not.
func sameSet(ran map[string]time.Duration, want map[string]bool) error {
	var extra, missing []string
	for l := range ran {
		if !want[l] {
			extra = append(extra, l)
		}
	}
	for l := range want {
		if _, ok := ran[l]; !ok {
			missing = append(missing, l)
		}
	}
	if len(extra) == 0 && len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("ran %d actions, expected %d: %d needlessly (%s), %d missing (%s)",
		len(ran), len(want), len(extra), some(extra), len(missing), some(missing))
}

// some lists the first few labels, sorted.
func some(labels []string) string {
	sort.Strings(labels)
	if len(labels) > 10 {
		labels = append(labels[:10:10], "...")
	}
	return strings.Join(labels, " ")
}
