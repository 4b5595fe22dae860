package engine

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/legobuild/lego/executors"
)

// Summary is what a build did.
type Summary struct {
	Total    int
	Executed int
	Cached   int
	// RemoteHits counts the cached actions whose result came from the
	// remote cache; RemoteRuns the executed ones that ran remotely.
	RemoteHits int
	RemoteRuns int
	Failed     int
	// FailedBy counts the failed actions per failure class
	// (executors.Classes): an endpoint's or the runtime's failure is no
	// result of the action, and building again may well succeed.
	FailedBy map[string]int
	Skipped  int
	// Ran lists the executed actions (Action.Describe), sorted.
	Ran    []string
	Errors []error
	// GPUSeconds sums the GPU time of executed actions per target label.
	GPUSeconds map[string]float64
	// Tallies counts the words of Action.Tally actions, executed or
	// cached, per target label and word: {"//tasks:real": {"kept": 40}}.
	Tallies map[string]map[string]int
}

// Report prints the build's GPU-hours per target and its summary line,
// for a build of targets that took elapsed.
func (s *Summary) Report(w io.Writer, targets int, elapsed time.Duration) {
	printGPUHours(w, s.GPUSeconds)
	printTallies(w, s.Tallies)
	fmt.Fprintf(w, "INFO: %d targets, %d actions: %d executed, %d cached%s%s%s; %.2fs\n",
		targets, s.Total, s.Executed, s.Cached, remoteNote(s), failedNote(s), allCached(s), elapsed.Seconds())
}

// remoteNote is the summary line's account of remote work.
func remoteNote(s *Summary) string {
	out := ""
	if s.RemoteHits > 0 {
		out += fmt.Sprintf(", %d remote cache hits", s.RemoteHits)
	}
	if s.RemoteRuns > 0 {
		out += fmt.Sprintf(", %d run remotely", s.RemoteRuns)
	}
	return out
}

// printTallies prints a line per target with tallies, in label order.
func printTallies(w io.Writer, tallies map[string]map[string]int) {
	labels := make([]string, 0, len(tallies))
	for l := range tallies {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, l := range labels {
		fmt.Fprintf(w, "INFO: %s: %s\n", l, FormatTally(tallies[l]))
	}
}

// FormatTally renders a target's tally as "7 dropped, 40 kept", its words
// in sorted order, which stays put while the counts change.
func FormatTally(words map[string]int) string {
	ws := make([]string, 0, len(words))
	for w := range words {
		ws = append(ws, w)
	}
	sort.Strings(ws)
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = fmt.Sprintf("%d %s", words[w], w)
	}
	return strings.Join(parts, ", ")
}

// printGPUHours prints the GPU-hours of the build per target.
func printGPUHours(w io.Writer, secs map[string]float64) {
	if len(secs) == 0 {
		return
	}
	labels := make([]string, 0, len(secs))
	total := 0.0
	for l, s := range secs {
		labels = append(labels, l)
		total += s
	}
	sort.Strings(labels)
	fmt.Fprintf(w, "INFO: GPU-hours: %.4f in all\n", total/3600)
	for _, l := range labels {
		fmt.Fprintf(w, "INFO:   %s %.4f\n", l, secs[l]/3600)
	}
}

func failedNote(s *Summary) string {
	out := ""
	if s.Failed > 0 {
		out += fmt.Sprintf(", %d failed", s.Failed)
		if by := countClasses(s.FailedBy); by != "" {
			out += " (" + by + ")"
		}
	}
	if s.Skipped > 0 {
		out += fmt.Sprintf(", %d not run", s.Skipped)
	}
	return out
}

// countClasses renders failure counts by class as "1 endpoint, 1 oom",
// in the order of executors.Classes.
func countClasses(counts map[string]int) string {
	var parts []string
	for _, c := range executors.Classes {
		if n := counts[c]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, c))
		}
	}
	return strings.Join(parts, ", ")
}

func allCached(s *Summary) string {
	if s.Total > 0 && s.Cached == s.Total {
		return fmt.Sprintf(" (all %d cached)", s.Total)
	}
	return ""
}
