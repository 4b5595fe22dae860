package engine

import (
	"fmt"
	"strings"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"

	"github.com/legobuild/lego/executors"
)

// failure reports a non-zero exit; store holds the logs. A process that
// reported an infrastructure failure (executors.InfraExit and its stderr
// line) gets an error of that class.
func failure(store executors.BlobGetter, a *Action, res *repb.ActionResult) error {
	err := fmt.Errorf("%s failed with exit code %d\n  command: %s%s", a.Describe(), res.ExitCode, shellQuote(a.Args), stderrTail(store, res))
	if res.ExitCode != executors.InfraExit {
		return err
	}
	tail, _ := executors.Tail(store, res.StderrDigest, 50)
	if ie := executors.InfraOf(res.ExitCode, tail); ie != nil {
		return &executors.InfraError{Class: ie.Class,
			Err: fmt.Errorf("%s failed (%s: %v)\n  command: %s%s", a.Describe(), ie.Class, ie.Err, shellQuote(a.Args), stderrTail(store, res))}
	}
	return err
}

// stderrTail is the last 50 lines of an action's stderr, indented, or "".
func stderrTail(store executors.BlobGetter, res *repb.ActionResult) string {
	if res == nil {
		return ""
	}
	tail, err := executors.Tail(store, res.StderrDigest, 50)
	if err != nil || tail == "" {
		return ""
	}
	return "\n  stderr (last 50 lines):\n    " + strings.ReplaceAll(tail, "\n", "\n    ")
}

func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`;&|<>()*?[]{}!#~") {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}
