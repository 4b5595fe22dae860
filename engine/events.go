package engine

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// Event is one thing that happened during a build. It is both what the
// progress display reads and what --build_event_json_file writes, one per line.
type Event struct {
	Type     string        `json:"type"`
	Time     time.Time     `json:"time"`
	Label    string        `json:"label,omitempty"`
	Action   string        `json:"action,omitempty"`
	Mnemonic string        `json:"mnemonic,omitempty"`
	Key      string        `json:"key,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	Success  *bool         `json:"success,omitempty"`
	Error    string        `json:"error,omitempty"`
	// FailureClass is why an action_failed action gave no result: one of
	// executors.Classes (endpoint, runtime, oom, harness, timeout, action).
	FailureClass string `json:"failure_class,omitempty"`
	// Remote marks an action_cached hit of the remote cache, and an
	// action_started/action_executed run on a remote executor.
	Remote bool `json:"remote,omitempty"`
	// Progress is the action's progress message (action_started).
	Progress string `json:"progress,omitempty"`
	// Message is a warning's text (warning, about the target Label), or
	// a tally's word (tally: one Action.Tally action of Label finished
	// with it, ran or cached).
	Message string `json:"message,omitempty"`
	// action_executed of a GPU action: the devices (UUIDs), GPU-seconds
	// and peak GPU memory in bytes.
	GPUs          []string `json:"gpus,omitempty"`
	GPUSeconds    float64  `json:"gpu_seconds,omitempty"`
	GPUPeakMemory int64    `json:"gpu_peak_memory_bytes,omitempty"`
	// build_started/build_finished
	Total    int `json:"total,omitempty"`
	Executed int `json:"executed,omitempty"`
	Cached   int `json:"cached,omitempty"`
	Failed   int `json:"failed,omitempty"`
	// FailedBy counts the failed actions by FailureClass.
	FailedBy map[string]int `json:"failed_by,omitempty"`
	Skipped  int            `json:"skipped,omitempty"`
	// Tallies (build_finished) counts the tally words by target label
	// and word, as Summary.Tallies.
	Tallies map[string]map[string]int `json:"tallies,omitempty"`
}

// Event types.
const (
	EvBuildStarted   = "build_started"
	EvTargetStarted  = "target_started"
	EvTargetFinished = "target_finished"
	EvActionStarted  = "action_started" // execution begins (after a cache miss)
	EvActionCached   = "action_cached"
	EvActionExecuted = "action_executed"
	EvActionFailed   = "action_failed"
	EvBuildFinished  = "build_finished"
	EvWarning        = "warning" // something the user should know, e.g. a corrupt cache entry
	EvTally          = "tally"   // an Action.Tally action's word (Message), ran or cached
)

// Listener receives events; it is called from many goroutines.
type Listener interface {
	Event(e *Event)
}

// Listeners fans events out.
type Listeners []Listener

func (ls Listeners) Event(e *Event) {
	for _, l := range ls {
		l.Event(e)
	}
}

// EventFile is a Listener writing one JSON event per line
// (--build_event_json_file).
type EventFile struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
	e  *json.Encoder
}

// CreateEventFile creates path for the events of a build.
func CreateEventFile(path string) (*EventFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--build_event_json_file: %w", err)
	}
	w := bufio.NewWriter(f)
	return &EventFile{f: f, w: w, e: json.NewEncoder(w)}, nil
}

// Event implements Listener.
func (ef *EventFile) Event(e *Event) {
	ef.mu.Lock()
	ef.e.Encode(e)
	// Flushed per event: a killed build still leaves the events it had.
	ef.w.Flush()
	ef.mu.Unlock()
}

// Close flushes and closes the file.
func (ef *EventFile) Close() error {
	ef.w.Flush()
	return ef.f.Close()
}
