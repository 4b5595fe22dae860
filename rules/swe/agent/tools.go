package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/legobuild/lego/executors"
	"github.com/legobuild/lego/rules/swe/llm"
)

// Tool names: exactly the paper's four.
const (
	ToolBash   = "execute_bash"
	ToolEditor = "str_replace_editor"
	ToolThink  = "think"
	ToolFinish = "finish"
)

// Limits of tool results.
const (
	maxOutput      = 16000 // characters of a tool result kept (head and tail)
	defaultTimeout = 120 * time.Second
	maxTimeout     = 30 * time.Minute
)

func tool(name, desc, params string) llm.Tool {
	var t llm.Tool
	t.Type = "function"
	t.Function.Name, t.Function.Description, t.Function.Parameters = name, desc, json.RawMessage(params)
	return t
}

// Tools are the schemas sent to the model.
var Tools = []llm.Tool{
	tool(ToolBash, "Run a bash command in the repository's environment and get its output and exit code. "+
		"Commands that run long are killed after timeout seconds.",
		`{"type": "object", "properties": {
  "command": {"type": "string", "description": "the bash command"},
  "timeout": {"type": "integer", "description": "seconds before the command is killed (default 120)"}},
 "required": ["command"]}`),
	tool(ToolEditor, "View, create and edit files. view shows a file with line numbers (view_range [start, end], end -1 for the end) or lists a directory; "+
		"create writes a new file; str_replace replaces old_str, which must occur exactly once, by new_str; insert puts new_str after line insert_line; undo_edit reverts the last edit of the file.",
		`{"type": "object", "properties": {
  "command": {"type": "string", "enum": ["view", "create", "str_replace", "insert", "undo_edit"]},
  "path": {"type": "string", "description": "absolute path of the file or directory"},
  "file_text": {"type": "string", "description": "create: the file's content"},
  "old_str": {"type": "string", "description": "str_replace: the text to replace"},
  "new_str": {"type": "string", "description": "str_replace and insert: the new text"},
  "insert_line": {"type": "integer", "description": "insert: the line after which new_str goes (0: at the top)"},
  "view_range": {"type": "array", "items": {"type": "integer"}, "description": "view: [start, end] lines, 1-based"}},
 "required": ["command", "path"]}`),
	tool(ToolThink, "Think about the problem; the thought is logged and changes nothing.",
		`{"type": "object", "properties": {"thought": {"type": "string"}}, "required": ["thought"]}`),
	tool(ToolFinish, "Say that the task is done and stop.",
		`{"type": "object", "properties": {"message": {"type": "string", "description": "a summary of what was done"}}}`),
}

// Result is what a tool call gave back.
type Result struct {
	Output      string
	Corrections []string // what was fixed in the call before it ran
	Finish      bool
}

// Tools runs tool calls in a session, keeping the editor's undo history.
type Toolbox struct {
	S       Session
	history map[string][]string // path -> contents before each edit
}

// NewToolbox runs tools in s.
func NewToolbox(s Session) *Toolbox { return &Toolbox{S: s, history: map[string][]string{}} }

// Call runs one tool call. A malformed call whose intent is clear is
// corrected (and the correction reported); otherwise the error is the
// result, for the model to read. A failure of the session itself (an
// executors.InfraError: the container broke) is no observation: Call
// returns it, and the rollout ends with it.
func (tb *Toolbox) Call(ctx context.Context, name, arguments string) (Result, error) {
	args := map[string]any{}
	if strings.TrimSpace(arguments) != "" {
		if err := json.Unmarshal([]byte(arguments), &args); err != nil {
			return Result{Output: fmt.Sprintf("ERROR: the arguments of %s are not a JSON object: %v", name, err)}, nil
		}
	}
	a := &callArgs{m: args}
	var out string
	var err error
	var finish bool
	switch name {
	case ToolBash:
		out, err = tb.bash(ctx, a)
	case ToolEditor:
		out, err = tb.editor(ctx, a)
	case ToolThink:
		out = "Your thought has been logged."
	case ToolFinish:
		out, finish = "The task is marked as done.", true
	default:
		err = fmt.Errorf("there is no tool %q; the tools are %s, %s, %s and %s", name, ToolBash, ToolEditor, ToolThink, ToolFinish)
	}
	var infra *executors.InfraError
	if errors.As(err, &infra) {
		return Result{}, err
	}
	if err != nil {
		out = "ERROR: " + err.Error()
	}
	return Result{Output: out, Corrections: a.fixes, Finish: finish}, nil
}

// callArgs reads a call's arguments, correcting what it clearly can.
type callArgs struct {
	m     map[string]any
	fixes []string
}

func (a *callArgs) str(k string) (string, bool) {
	v, ok := a.m[k]
	if !ok || v == nil {
		return "", false
	}
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		s := strconv.FormatFloat(x, 'f', -1, 64)
		a.fixes = append(a.fixes, fmt.Sprintf("%s: the number %s taken as the string %q", k, s, s))
		return s, true
	}
	return "", false
}

func (a *callArgs) need(k string) (string, error) {
	s, ok := a.str(k)
	if !ok {
		if _, present := a.m[k]; present {
			return "", fmt.Errorf("parameter %s must be a string", k)
		}
		return "", fmt.Errorf("parameter %s is required", k)
	}
	return s, nil
}

// int reads an integer, taking a numeric string ("12") as the number.
func (a *callArgs) int(k string) (int, bool, error) {
	v, ok := a.m[k]
	if !ok || v == nil {
		return 0, false, nil
	}
	n, fixed, err := toInt(v)
	if err != nil {
		return 0, true, fmt.Errorf("parameter %s: %v", k, err)
	}
	if fixed {
		a.fixes = append(a.fixes, fmt.Sprintf("%s: the string %q taken as the integer %d", k, v, n))
	}
	return n, true, nil
}

func toInt(v any) (n int, fixed bool, err error) {
	switch x := v.(type) {
	case float64:
		if x != float64(int(x)) {
			return 0, false, fmt.Errorf("%v is not an integer", x)
		}
		return int(x), false, nil
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			return 0, false, fmt.Errorf("%q is not an integer", x)
		}
		return n, true, nil
	}
	return 0, false, fmt.Errorf("%v is not an integer", v)
}

func (tb *Toolbox) bash(ctx context.Context, a *callArgs) (string, error) {
	cmd, err := a.need("command")
	if err != nil {
		return "", err
	}
	timeout := defaultTimeout
	if n, ok, err := a.int("timeout"); err != nil {
		return "", err
	} else if ok && n > 0 {
		timeout = min(time.Duration(n)*time.Second, maxTimeout)
	}
	// Not a login shell: the session's environment is the env's, and a
	// host's profile must not leak into a directory env's commands.
	out, code, err := tb.S.Run(ctx, []string{"bash", "-c", cmd}, nil, timeout)
	text := clip(string(out))
	switch {
	case errors.Is(err, ErrTimeout):
		return fmt.Sprintf("%s\n[the command was killed after %v]", text, timeout), nil
	case err != nil:
		return "", err
	}
	return fmt.Sprintf("%s\n[exit code %d]", text, code), nil
}

// clip keeps the head and the tail of a long output.
func clip(s string) string {
	if len(s) <= maxOutput {
		return s
	}
	return s[:maxOutput/2] + fmt.Sprintf("\n[... %d characters left out ...]\n", len(s)-maxOutput) + s[len(s)-maxOutput/2:]
}

func (tb *Toolbox) editor(ctx context.Context, a *callArgs) (string, error) {
	cmd, err := a.need("command")
	if err != nil {
		return "", err
	}
	p, err := a.need("path")
	if err != nil {
		return "", err
	}
	if !path.IsAbs(p) {
		abs := path.Join(tb.S.Workdir(), p)
		a.fixes = append(a.fixes, fmt.Sprintf("path: the relative path %q taken as %q", p, abs))
		p = abs
	}
	switch cmd {
	case "view":
		return tb.view(ctx, a, p)
	case "create":
		text, err := a.need("file_text")
		if err != nil {
			return "", err
		}
		if _, err := tb.read(ctx, p); err == nil {
			return "", fmt.Errorf("%s already exists; create does not overwrite files", p)
		}
		if err := tb.write(ctx, p, text); err != nil {
			return "", err
		}
		tb.history[p] = append(tb.history[p], "\x00absent")
		return "File created at " + p, nil
	case "str_replace":
		return tb.replace(ctx, a, p)
	case "insert":
		return tb.insert(ctx, a, p)
	case "undo_edit":
		h := tb.history[p]
		if len(h) == 0 {
			return "", fmt.Errorf("no edit of %s to undo", p)
		}
		prev := h[len(h)-1]
		tb.history[p] = h[:len(h)-1]
		if prev == "\x00absent" {
			if _, _, err := tb.S.Run(ctx, []string{"rm", "-f", "--", p}, nil, defaultTimeout); err != nil {
				return "", err
			}
			return "Undid the creation of " + p, nil
		}
		if err := tb.write(ctx, p, prev); err != nil {
			return "", err
		}
		return "Last edit of " + p + " undone:\n" + numbered(prev, 1, 0), nil
	}
	return "", fmt.Errorf("unknown command %q: use view, create, str_replace, insert or undo_edit", cmd)
}

func (tb *Toolbox) read(ctx context.Context, p string) (string, error) {
	out, code, err := tb.S.Run(ctx, []string{"cat", "--", p}, nil, defaultTimeout)
	if err != nil {
		return "", err
	}
	if code != 0 {
		return "", fmt.Errorf("%s", strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func (tb *Toolbox) write(ctx context.Context, p, text string) error {
	out, code, err := tb.S.Run(ctx, []string{"sh", "-c", `mkdir -p "$(dirname "$1")" && cat > "$1"`, "write", p}, []byte(text), defaultTimeout)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("writing %s: %s", p, strings.TrimSpace(string(out)))
	}
	return nil
}

func (tb *Toolbox) view(ctx context.Context, a *callArgs, p string) (string, error) {
	out, code, err := tb.S.Run(ctx, []string{"sh", "-c", `test -d "$1"`, "isdir", p}, nil, defaultTimeout)
	if err != nil {
		return "", err
	}
	if code == 0 {
		out, _, err = tb.S.Run(ctx, []string{"find", p, "-maxdepth", "2", "-not", "-path", "*/.*", "-not", "-path", "*/__pycache__*"}, nil, defaultTimeout)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Files and directories up to 2 levels deep in %s, hidden ones left out:\n%s", p, out), nil
	}
	text, err := tb.read(ctx, p)
	if err != nil {
		return "", err
	}
	n := strings.Count(text, "\n")
	if !strings.HasSuffix(text, "\n") && text != "" {
		n++
	}
	start, end := 1, 0
	if r, ok := a.m["view_range"]; ok && r != nil {
		start, end, err = viewRange(a, r, n)
		if err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("Here is %s with line numbers:\n%s", p, numbered(text, start, end)), nil
}

// viewRange reads [start, end], correcting numeric strings, a JSON text
// of the list, and ends past the file.
func viewRange(a *callArgs, r any, n int) (int, int, error) {
	if s, ok := r.(string); ok {
		var list []any
		if err := json.Unmarshal([]byte(s), &list); err != nil {
			return 0, 0, fmt.Errorf("view_range %q is not a list of two line numbers", s)
		}
		a.fixes = append(a.fixes, fmt.Sprintf("view_range: the string %q taken as a list", s))
		r = list
	}
	list, ok := r.([]any)
	if !ok || len(list) != 2 {
		return 0, 0, fmt.Errorf("view_range must be a list of two line numbers, [start, end]")
	}
	var v [2]int
	for i, x := range list {
		k, fixed, err := toInt(x)
		if err != nil {
			return 0, 0, fmt.Errorf("view_range: %v", err)
		}
		if fixed {
			a.fixes = append(a.fixes, fmt.Sprintf("view_range: the string %q taken as the integer %d", x, k))
		}
		v[i] = k
	}
	start, end := v[0], v[1]
	if start < 1 {
		a.fixes = append(a.fixes, fmt.Sprintf("view_range: start %d clipped to 1", start))
		start = 1
	}
	if start > n {
		return 0, 0, fmt.Errorf("view_range starts at line %d, but the file has %d lines", start, n)
	}
	if end > n {
		a.fixes = append(a.fixes, fmt.Sprintf("view_range: end %d clipped to the file's %d lines", end, n))
		end = n
	}
	if end != -1 && end < start {
		return 0, 0, fmt.Errorf("view_range ends (%d) before it starts (%d)", end, start)
	}
	if end == -1 {
		end = 0
	}
	return start, end, nil
}

// numbered shows lines start..end (1-based, end 0: to the end) as cat -n
// does.
func numbered(text string, start, end int) string {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if end == 0 || end > len(lines) {
		end = len(lines)
	}
	var b strings.Builder
	for i := start; i <= end; i++ {
		fmt.Fprintf(&b, "%6d\t%s\n", i, lines[i-1])
	}
	return b.String()
}

func (tb *Toolbox) replace(ctx context.Context, a *callArgs, p string) (string, error) {
	old, err := a.need("old_str")
	if err != nil {
		return "", err
	}
	repl, _ := a.str("new_str")
	text, err := tb.read(ctx, p)
	if err != nil {
		return "", err
	}
	switch n := strings.Count(text, old); {
	case old == "":
		return "", fmt.Errorf("old_str is empty")
	case n == 0:
		return "", fmt.Errorf("no replacement: old_str did not appear verbatim in %s", p)
	case n > 1:
		var at []string
		for i, off := 0, 0; i < n; i++ {
			j := strings.Index(text[off:], old) + off
			at = append(at, strconv.Itoa(strings.Count(text[:j], "\n")+1))
			off = j + len(old)
		}
		return "", fmt.Errorf("no replacement: old_str occurs %d times in %s (lines %s); make it unique", n, p, strings.Join(at, ", "))
	}
	i := strings.Index(text, old)
	updated := text[:i] + repl + text[i+len(old):]
	if err := tb.write(ctx, p, updated); err != nil {
		return "", err
	}
	tb.history[p] = append(tb.history[p], text)
	line := strings.Count(text[:i], "\n") + 1
	return fmt.Sprintf("The file %s has been edited. Around the edit:\n%s", p, snippet(updated, line, strings.Count(repl, "\n")+1)), nil
}

func (tb *Toolbox) insert(ctx context.Context, a *callArgs, p string) (string, error) {
	at, ok, err := a.int("insert_line")
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("parameter insert_line is required")
	}
	repl, err := a.need("new_str")
	if err != nil {
		return "", err
	}
	text, err := tb.read(ctx, p)
	if err != nil {
		return "", err
	}
	lines := strings.SplitAfter(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if at < 0 || at > len(lines) {
		return "", fmt.Errorf("insert_line %d is outside the file's lines 0..%d", at, len(lines))
	}
	if at > 0 && !strings.HasSuffix(lines[at-1], "\n") {
		lines[at-1] += "\n"
	}
	if !strings.HasSuffix(repl, "\n") {
		repl += "\n"
	}
	updated := strings.Join(lines[:at], "") + repl + strings.Join(lines[at:], "")
	if err := tb.write(ctx, p, updated); err != nil {
		return "", err
	}
	tb.history[p] = append(tb.history[p], text)
	return fmt.Sprintf("The file %s has been edited. Around the edit:\n%s", p, snippet(updated, at+1, strings.Count(repl, "\n"))), nil
}

// snippet shows the edited lines with four lines around them.
func snippet(text string, line, n int) string {
	total := strings.Count(strings.TrimSuffix(text, "\n"), "\n") + 1
	return numbered(text, max(1, line-4), min(total, line+n+3))
}
