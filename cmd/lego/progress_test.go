package main

import (
	"bufio"
	"strings"
	"testing"
	"time"

	"github.com/legobuild/lego/engine"
)

// progressEvents feeds p a build of three judges of //tasks:real (one
// ran, two cached) and one of //tasks:dev.
func progressEvents(p *progress) {
	now := time.Now()
	p.Event(&engine.Event{Type: engine.EvBuildStarted, Time: now, Total: 5})
	for i, word := range []string{"kept", "dropped", "kept"} {
		p.Event(&engine.Event{Type: engine.EvTally, Time: now, Label: "//tasks:real", Message: word})
		ty := engine.EvActionCached
		if i == 0 {
			ty = engine.EvActionExecuted
		}
		p.Event(&engine.Event{Type: ty, Time: now, Label: "//tasks:real", Action: "//tasks:real Judge " + word, Duration: time.Second})
	}
	p.Event(&engine.Event{Type: engine.EvTally, Time: now, Label: "//tasks:dev", Message: "kept"})
	p.Event(&engine.Event{Type: engine.EvActionStarted, Time: now, Label: "//tasks:dev", Action: "//tasks:dev Judge x"})
}

// The live line counts the tally words of each target, cache hits too,
// ahead of the running actions; lines mode shows none.
func TestProgressTallies(t *testing.T) {
	var out strings.Builder
	p := &progress{out: &out, tty: true, running: map[string]running{}, width: 200}
	progressEvents(p)
	p.draw()
	want := "[3/5] 2 cached, 1 ran | //tasks:dev: 1 kept; //tasks:real: 1 dropped, 2 kept | running: //tasks:dev Judge x "
	if !strings.Contains(out.String(), want) {
		t.Errorf("status line %q, want it to hold %q", out.String(), want)
	}

	// Lines mode prints a line per finished action and nothing per
	// tally: the summary's lines (Summary.Report) give the counts.
	out.Reset()
	p = &progress{out: &out, buf: bufio.NewWriter(&out), running: map[string]running{}}
	progressEvents(p)
	p.stop()
	want = "[1/5] ran 1.00s //tasks:real Judge kept\n[2/5] cached //tasks:real Judge dropped\n[3/5] cached //tasks:real Judge kept\n"
	if out.String() != want {
		t.Errorf("lines %q, want %q", out.String(), want)
	}
}
