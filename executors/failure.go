package executors

import (
	"errors"
	"strings"
)

// Failure classes: why an action gave no result. An action's output is
// cached only when it is the action's own answer; a failure of any class
// is never cached, and the classes tell the build summary (and the user
// deciding whether to just build again) what went wrong.
const (
	// ClassEndpoint: a model endpoint answered 429 or 5xx, or did not
	// answer, on every try.
	ClassEndpoint = "endpoint"
	// ClassRuntime: the container runtime could not create, start or
	// wait on the action's container.
	ClassRuntime = "runtime"
	// ClassOOM: the action was killed for exceeding its memory limit.
	ClassOOM = "oom"
	// ClassHarness: a task's tests could not start (the env's test
	// command not found, no pytest in it), so no test outcome exists.
	ClassHarness = "harness"
	// ClassTimeout: the action ran past Action.Timeout (ErrTimeout).
	ClassTimeout = "timeout"
	// ClassAction: the action's own failure: a non-zero exit, a broken
	// sandbox rule, a missing input. Rerunning it unchanged fails again.
	ClassAction = "action"
)

// Classes lists the failure classes in the order summaries show them.
var Classes = []string{ClassEndpoint, ClassRuntime, ClassOOM, ClassHarness, ClassTimeout, ClassAction}

// InfraError is a failure of the infrastructure an action depends on (an
// endpoint, the container runtime, the machine's memory, the test
// harness) rather than of the action itself: the same action may well
// succeed on the next build. Executors return it (wrapped as they like),
// and a host process reports one with InfraExit and InfraLine.
type InfraError struct {
	Class string // one of the Class constants
	Err   error
}

func (e *InfraError) Error() string { return e.Err.Error() }
func (e *InfraError) Unwrap() error { return e.Err }

// Infra wraps err as an infrastructure failure of class; nil stays nil,
// and an error that already has a class keeps it (the innermost cause
// knows best: an endpoint's failure inside a harness run is an endpoint's).
func Infra(class string, err error) error {
	if err == nil {
		return nil
	}
	var ie *InfraError
	if errors.As(err, &ie) {
		return err
	}
	return &InfraError{Class: class, Err: err}
}

// ClassOf is the failure class of an action's error: the InfraError it
// wraps, a timeout, or else the action's own failure.
func ClassOf(err error) string {
	var ie *InfraError
	switch {
	case errors.As(err, &ie):
		return ie.Class
	case errors.Is(err, ErrTimeout):
		return ClassTimeout
	}
	return ClassAction
}

// How a host process (a `lego tool`, lego's test harness) tells lego that
// it failed for an infrastructure cause: it writes one line
//
//	lego-infra-error: CLASS: message
//
// to stderr (InfraLine) and exits with InfraExit, 75, sysexits.h's
// EX_TEMPFAIL ("temporary failure; the user is invited to retry"). Both
// are needed: a program of a user's that exits 75 for its own reasons is
// still an action failure. The line travels in the action's stderr, which
// every executor stores (local, containers, remote), so no executor needs
// to know the convention; the engine reads it from the failed action's
// stderr (InfraOf). Such an action fails like any non-zero exit and its
// result is never cached.
const (
	InfraExit   = 75
	infraPrefix = "lego-infra-error: "
)

// InfraLine is the stderr line reporting e (without the newline); an
// error that is no InfraError has none.
func InfraLine(err error) (string, bool) {
	var ie *InfraError
	if !errors.As(err, &ie) || !knownClass(ie.Class) || ie.Class == ClassAction {
		return "", false
	}
	// One line: the message's newlines would end the marker early.
	msg := strings.Join(strings.Fields(err.Error()), " ")
	return infraPrefix + ie.Class + ": " + msg, true
}

// InfraOf reads the infrastructure failure a process reported by exit
// code and stderr (its last lines), or nil when it reported none. The
// last marker line wins.
func InfraOf(exitCode int32, stderr string) *InfraError {
	if exitCode != InfraExit {
		return nil
	}
	lines := strings.Split(stderr, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		rest, ok := strings.CutPrefix(strings.TrimSpace(lines[i]), infraPrefix)
		if !ok {
			continue
		}
		class, msg, _ := strings.Cut(rest, ": ")
		if !knownClass(class) || class == ClassAction {
			continue
		}
		return &InfraError{Class: class, Err: errors.New(msg)}
	}
	return nil
}

func knownClass(c string) bool {
	for _, k := range Classes {
		if k == c {
			return true
		}
	}
	return false
}

// A process lego runs for its own rules (a `lego tool`) tells lego of
// something the user should see even though it succeeded (a dataset in
// which nothing could be masked, say) with stderr lines
//
//	lego-warning: message
//
// which the engine shows as warnings on the action's target (WarningsOf).
const warnPrefix = "lego-warning: "

// WarnLine is the stderr line carrying a warning (without the newline).
func WarnLine(msg string) string { return warnPrefix + strings.Join(strings.Fields(msg), " ") }

// WarningsOf reads the warnings in an action's stderr (its last lines).
func WarningsOf(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if m, ok := strings.CutPrefix(l, warnPrefix); ok {
			out = append(out, m)
		}
	}
	return out
}

// A process whose action is marked Tally (engine.Action.Tally: one of
// many alike, a task instance's judge, say) ends its stdout with one line
//
//	lego-tally: WORD
//
// naming its outcome ("kept", "dropped"); the engine counts the words per
// target, cache hits included, for the status line and the summary.
// Stdout, not stderr: the word is the action's answer, and a tool's
// diagnostics may end stderr after it.
const tallyPrefix = "lego-tally: "

// TallyLine is the stdout line carrying word (without the newline).
func TallyLine(word string) string {
	return tallyPrefix + strings.Join(strings.Fields(word), " ")
}

// TallyOf reads the word of the tally line stdout ends with (trailing
// blank lines aside), or "" when its last line is none.
func TallyOf(stdout string) string {
	stdout = strings.TrimRight(stdout, " \t\r\n")
	last := stdout[strings.LastIndexByte(stdout, '\n')+1:]
	w, ok := strings.CutPrefix(strings.TrimSpace(last), tallyPrefix)
	if !ok {
		return ""
	}
	return strings.TrimSpace(w)
}
