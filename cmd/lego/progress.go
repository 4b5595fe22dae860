package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/legobuild/lego/engine"
)

// progress shows a live status on a terminal, or one line per finished
// action otherwise.
type progress struct {
	mu      sync.Mutex
	out     io.Writer
	buf     *bufio.Writer
	tty     bool
	none    bool
	total   int
	done    int
	cached  int
	ran     int
	running map[string]running // by Action
	// tallies counts the words of tally events by target label and word.
	tallies map[string]map[string]int
	quit    chan struct{}
	wg      sync.WaitGroup
	width   int
	flushed time.Time
}

func newProgress(f *os.File, mode string) *progress {
	p := &progress{out: f, running: map[string]running{}, quit: make(chan struct{}), width: 100}
	switch mode {
	case "tty":
		p.tty = true
	case "none":
		p.none = true
	case "lines":
	default:
		p.tty = term.IsTerminal(int(f.Fd()))
	}
	if p.tty {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 20 {
			p.width = w
		}
		p.wg.Add(1)
		go p.loop()
	} else {
		p.buf = bufio.NewWriterSize(f, 64<<10)
	}
	return p
}

// running is an action on the status line: its progress message or
// description, and when it started.
type running struct {
	name string
	t    time.Time
}

func (p *progress) Event(e *engine.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Type {
	case engine.EvBuildStarted:
		p.total = e.Total
	case engine.EvWarning:
		// Even with --progress=none: it is no progress.
		if p.tty {
			fmt.Fprintf(p.out, "\r\033[KWARNING: %s: %s\n", e.Label, e.Message)
		} else {
			fmt.Fprintf(p.buf, "WARNING: %s: %s\n", e.Label, e.Message)
			p.buf.Flush()
		}
	case engine.EvTally:
		// For the status line; lines mode leaves the counts to the
		// summary (Summary.Report).
		if p.tallies == nil {
			p.tallies = map[string]map[string]int{}
		}
		if p.tallies[e.Label] == nil {
			p.tallies[e.Label] = map[string]int{}
		}
		p.tallies[e.Label][e.Message]++
	case engine.EvActionStarted:
		name := e.Action
		if e.Progress != "" {
			name = e.Progress
		}
		p.running[e.Action] = running{name, e.Time}
	case engine.EvActionCached, engine.EvActionExecuted, engine.EvActionFailed:
		p.done++
		verb := "cached"
		switch e.Type {
		case engine.EvActionCached:
			p.cached++
		case engine.EvActionExecuted:
			p.ran++
			verb = fmt.Sprintf("ran %.2fs", e.Duration.Seconds())
		default:
			verb = "FAILED"
		}
		delete(p.running, e.Action)
		if !p.tty && !p.none {
			fmt.Fprintf(p.buf, "[%d/%d] %s %s\n", p.done, p.total, verb, e.Action)
			// Lines reach a log soon, without a write per line on a null build.
			if now := time.Now(); now.Sub(p.flushed) > 200*time.Millisecond {
				p.buf.Flush()
				p.flushed = now
			}
		}
	}
}

func (p *progress) loop() {
	defer p.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
			p.mu.Lock()
			p.draw()
			p.mu.Unlock()
		}
	}
}

func (p *progress) draw() {
	line := fmt.Sprintf("[%d/%d] %d cached, %d ran", p.done, p.total, p.cached, p.ran)
	// Tallies before the running actions, which the width cuts first.
	if len(p.tallies) > 0 {
		labels := make([]string, 0, len(p.tallies))
		for l := range p.tallies {
			labels = append(labels, l)
		}
		sort.Strings(labels)
		for i, l := range labels {
			labels[i] = l + ": " + engine.FormatTally(p.tallies[l])
		}
		line += " | " + strings.Join(labels, "; ")
	}
	var rs []running
	for _, r := range p.running {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].t.Before(rs[j].t) })
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%s %.1fs", r.name, time.Since(r.t).Seconds()))
	}
	if len(parts) > 0 {
		line += " | running: " + strings.Join(parts, "; ")
	}
	if len(line) > p.width-1 {
		line = line[:p.width-2] + "…"
	}
	fmt.Fprintf(p.out, "\r\033[K%s", line)
}

func (p *progress) stop() {
	if p.tty {
		close(p.quit)
		p.wg.Wait()
		fmt.Fprint(p.out, "\r\033[K")
		return
	}
	p.buf.Flush()
}
