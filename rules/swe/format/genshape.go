package format

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"strings"
)

// GenShapes are the shapes traj-generate writes: lego's own (Generate) and
// three published ones (GenerateShape).
var GenShapes = []string{"lego", "openhands", "sweagent", "chatml"}

// GenerateShape writes n trajectories of a published shape as JSON Lines: "openhands" (the messages shape as
// OpenHands exports it: explicit nulls on every message, multi-part content on about half the messages, a
// ~4 KB `tools` list per record, long observations of 1–20 KB, arguments as JSON strings), "sweagent"
// (SWE-agent .traj objects with history + trajectory + info, one per line), "chatml" (SWE-smith: tool
// output as user messages "OBSERVATION:\n..."). 10–100 assistant turns, errors (the shapes.md texts) and
// test/reproduction runs along the way, resolution falling with length, ~60 KB+ per record. Same seed,
// same bytes. "lego" is Generate.
func GenerateShape(w io.Writer, shape string, n int, seed int64) error {
	var write func(g *shapeGen, i int) any
	switch shape {
	case "lego":
		return Generate(w, n, seed)
	case "openhands":
		write = (*shapeGen).openhands
	case "sweagent":
		write = (*shapeGen).sweagent
	case "chatml":
		write = (*shapeGen).chatml
	default:
		return fmt.Errorf("unknown trajectory shape %q (want %s)", shape, strings.Join(GenShapes, ", "))
	}
	g := newShapeGen(seed)
	bw := bufio.NewWriterSize(w, 1<<20)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false) // as Python's json.dumps writes <, > and &
	for i := range n {
		if err := enc.Encode(write(g, i)); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// shapeGen draws the steps of a run. Text is cut from two corpora made
// once per seed (prose and code), which keeps generation at the speed of
// the JSON encoder rather than of the random number generator.
type shapeGen struct {
	rng   *rand.Rand
	prose string
	code  string
	tools json.RawMessage
}

func newShapeGen(seed int64) *shapeGen {
	rng := rand.New(rand.NewSource(seed))
	words := strings.Fields("the function returns value when input list parser config module raises test case " +
		"file path line index buffer token request response handler cache field model query result check update fix " +
		"self data items keys name default options state")
	var p, c strings.Builder
	for p.Len() < 256<<10 {
		p.WriteString(words[rng.Intn(len(words))])
		p.WriteByte(" \n"[b2i(rng.Intn(12) == 0)])
	}
	for ln := 1; c.Len() < 256<<10; ln++ {
		fmt.Fprintf(&c, "%6d\t%s%s = %s(%s, %s)\n", ln, strings.Repeat("    ", rng.Intn(3)), words[rng.Intn(len(words))],
			words[rng.Intn(len(words))], words[rng.Intn(len(words))], words[rng.Intn(len(words))])
	}
	tools, err := json.Marshal(openHandsTools)
	if err != nil {
		panic(err) // a fixed value: cannot fail
	}
	return &shapeGen{rng: rng, prose: p.String(), code: c.String(), tools: tools}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// cut returns about n bytes of src starting at a line.
func (g *shapeGen) cut(src string, n int) string {
	off := g.rng.Intn(len(src) - n - 1)
	if i := strings.IndexByte(src[off:], '\n'); i >= 0 && off+i+1+n <= len(src) {
		off += i + 1
	}
	return src[off : off+n]
}

func (g *shapeGen) prosen(n int) string { return g.cut(g.prose, n) }

// obsSize draws an observation's length: 1 to 20 KB, most of them short.
func (g *shapeGen) obsSize() int {
	r := g.rng.Float64()
	return 1024 + int(19*1024*r*r*r)
}

// step is one assistant turn in neutral form; each shape renders it.
type step struct {
	thought string
	tool    string         // OpenHands tool name
	args    map[string]any // its arguments
	cmd     string         // the command as SWE-agent writes it
	obs     string         // OpenHands' observation
	sweObs  string         // SWE-agent's observation (no exit codes)
	noFence bool           // SWE-agent: the model wrote no command (a format error)
}

const (
	exit0 = "\n[The command completed with exit code 0.]"
	exit1 = "\n[The command completed with exit code 1.]"
)

// step draws turn k of a run of turns on file.
func (g *shapeGen) step(k, turns int, repo, file string) step {
	r := g.rng
	path := "/workspace/" + repo + "/" + file
	th := g.prosen(100 + r.Intn(300))
	sh := func(cmd, out, sweOut string) step {
		return step{thought: th, tool: "execute_bash", args: map[string]any{"command": cmd}, cmd: cmd, obs: out, sweObs: sweOut}
	}
	switch x := r.Intn(100); {
	case k == turns-1:
		return step{thought: th, tool: "finish", args: map[string]any{"message": g.prosen(120), "task_completed": "true"}, cmd: "submit",
			sweObs: "diff --git a/" + file + " b/" + file + "\n--- a/" + file + "\n+++ b/" + file + "\n@@ -1 +1 @@\n-old\n+new\n"}
	case x < 25: // a clean view
		text := g.cut(g.code, g.obsSize())
		return step{thought: th, tool: "str_replace_editor", args: map[string]any{"command": "view", "path": path}, cmd: "open " + file,
			obs: "Here's the result of running `cat -n` on " + path + ":\n" + text, sweObs: "[File: /" + repo + "/" + file + "]\n" + text}
	case x < 45: // a clean ls / grep
		out := g.prosen(g.obsSize())
		return sh(fmt.Sprintf("grep -rn %s src/", strings.Fields(th)[0]), out+exit0, out)
	case x < 52: // an editor error
		s := step{thought: th, tool: "str_replace_editor", args: map[string]any{"command": "view", "path": path, "view_range": []int{1, 500}},
			obs: "ERROR:\nInvalid `view_range` parameter: [1, 500]. Its second element `500` should be smaller than the number of lines in the file: `42`."}
		switch r.Intn(3) {
		case 1:
			dir := path[:strings.LastIndexByte(path, '/')]
			s.args = map[string]any{"command": "view", "path": dir, "view_range": []int{1, 50}}
			s.obs = "ERROR:\nThe `view_range` parameter is not allowed when `path` points to a directory."
		case 2:
			s.args = map[string]any{"command": "str_replace", "path": path, "old_str": "x", "new_str": "y"}
			s.obs = "ERROR:\nNo replacement was performed, old_str `x` did not appear verbatim in " + path + "."
		}
		// SWE-agent's own: a broken edit, or an answer without a command.
		if r.Intn(2) == 0 {
			s.cmd = "edit 12:14\n" + g.cut(g.code, 200) + "end_of_edit"
			s.sweObs = "Your proposed edit has introduced new syntax error(s). Please read this error message carefully and then retry editing the file.\n\n" +
				"ERRORS:\n- E999 IndentationError: unexpected indent\n\nThis is how your edit would have looked if applied\n" + g.cut(g.code, 1500) +
				"Your changes have NOT been applied. Please fix your edit command and try again."
		} else {
			s.noFence = true
			s.sweObs = "Your output was not formatted correctly. You must always include one discussion and one command as part of your response. " +
				"Make sure you do not have multiple discussion/command tags.\nPlease make sure your output precisely matches the following format:\n" +
				"DISCUSSION\nDiscuss here with yourself about what your planning and what you're going to do in this step.\n\n```\ncommand(s) that you're going to run\n```"
		}
		return s
	case x < 56:
		out := "bash: rg: command not found"
		return sh("rg -n "+strings.Fields(th)[0]+" src/", out+"\n[The command completed with exit code 127.]", out)
	case x < 63: // a failing reproduction: exempted
		out := g.prosen(g.obsSize()) + "\nTraceback (most recent call last):\n  File \"/workspace/reproduce_issue.py\", line 7, in <module>\n    check()\nAssertionError"
		return sh("python /workspace/reproduce_issue.py", out+exit1, out)
	case x < 71: // a failing test run: exempted
		out := g.prosen(g.obsSize()) + "\nFAILED tests/test_core.py::test_case - AssertionError\n1 failed, 12 passed in 0.84s"
		tb := "\nTraceback (most recent call last):\n  File \"/" + repo + "/tests/test_core.py\", line 31, in test_case\nAssertionError"
		return sh("python -m pytest tests/test_core.py -q --tb=native", out+exit1, out+tb)
	case x < 76: // a passing test run
		out := g.prosen(g.obsSize()) + "\n13 passed in 0.91s"
		return sh("python -m pytest tests/test_core.py -q", out+exit0, out)
	case x < 80: // a program that fails outside reproduction or tests
		out := "Traceback (most recent call last):\n  File \"<string>\", line 1, in <module>\nImportError: cannot import name 'helper'"
		return sh("python -c \"import "+strings.TrimSuffix(strings.ReplaceAll(file, "/", "."), ".py")+"\"", out+exit1, out)
	case x < 82:
		out := "\n[The command timed out after 120 seconds. You may wait longer to see additional output by sending empty command '', send other commands to interact with the current process, or send keys to interrupt/kill the command.]"
		return sh("pip install -e .", out, "Command timed out after 120 seconds")
	case x < 95: // a successful edit
		old, nw := g.cut(g.code, 80), g.cut(g.code, 90)
		out := "The file " + path + " has been edited. Here's the result of running `cat -n` on a snippet of " + path + ":\n" + g.cut(g.code, 600) +
			"Review the changes and make sure they are as expected. Edit the file again if necessary."
		return step{thought: th, tool: "str_replace_editor", args: map[string]any{"command": "str_replace", "path": path, "old_str": old, "new_str": nw},
			cmd: "edit 20:21\n" + nw + "end_of_edit", obs: out,
			sweObs: "[File: /" + repo + "/" + file + "]\n" + g.cut(g.code, 600) + "File updated. Please review the changes and make sure they are correct."}
	default:
		t := g.prosen(200)
		return step{thought: th, tool: "think", args: map[string]any{"thought": t}, cmd: "echo " + strings.Fields(t)[0],
			obs: "Your thought has been logged.", sweObs: strings.Fields(t)[0]}
	}
}

// run draws a run's frame: its id, repo, file, turns and resolution.
func (g *shapeGen) run(i int) (id, repo, file string, turns int, resolved bool) {
	r := g.rng
	turns = 10 + r.Intn(91)
	// Longer runs resolve less often.
	resolved = r.Float64() < 1.1-float64(turns)/100
	return fmt.Sprintf("org%d__repo%d-%d", i%97, i%31, i), fmt.Sprintf("org%d__repo%d", i%97, i%31),
		fmt.Sprintf("src/pkg%d/module%d.py", r.Intn(50), r.Intn(20)), turns, resolved
}

// The openhands shape.

type ohPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type ohCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function"`
}

type ohMessage struct {
	Role       string   `json:"role"`
	Content    any      `json:"content"` // a string or []ohPart
	ToolCalls  []ohCall `json:"tool_calls"`
	ToolCallID *string  `json:"tool_call_id"`
	Name       *string  `json:"name"`
}

type ohRecord struct {
	InstanceID string          `json:"instance_id"`
	Resolved   bool            `json:"resolved"`
	Messages   []ohMessage     `json:"messages"`
	Tools      json.RawMessage `json:"tools"`
}

// content is s as a string or, on about half the messages, as one text part.
func (g *shapeGen) content(s string) any {
	if g.rng.Intn(2) == 0 {
		return []ohPart{{Type: "text", Text: s}}
	}
	return s
}

func (g *shapeGen) openhands(i int) any {
	id, repo, file, turns, resolved := g.run(i)
	rec := ohRecord{InstanceID: id, Resolved: resolved, Tools: g.tools, Messages: []ohMessage{
		{Role: "system", Content: g.content("You are OpenHands agent, a helpful AI assistant that can interact with a computer to solve tasks.\n" + g.prosen(1500))},
		{Role: "user", Content: g.content("<uploaded_files>\n/workspace/" + repo + "\n</uploaded_files>\n<issue_description>\n" + g.prosen(1200) + "\n</issue_description>")},
	}}
	for k := range turns {
		s := g.step(k, turns, repo, file)
		args, err := json.Marshal(s.args)
		if err != nil {
			panic(err) // strings, ints and lists: cannot fail
		}
		callID, name := fmt.Sprintf("toolu_%02d_%d", k, i), s.tool
		rec.Messages = append(rec.Messages, ohMessage{Role: "assistant", Content: g.content(s.thought),
			ToolCalls: []ohCall{{ID: callID, Type: "function", Function: FunctionCall{Name: s.tool, Arguments: string(args)}}}})
		if s.tool != "finish" { // OpenHands ends the conversation at finish: no result follows
			rec.Messages = append(rec.Messages, ohMessage{Role: "tool", Content: g.content(s.obs), ToolCallID: &callID, Name: &name})
		}
	}
	return &rec
}

// The sweagent shape.

type sweStep struct {
	Action        string  `json:"action"`
	Observation   string  `json:"observation"`
	Response      string  `json:"response"`
	Thought       string  `json:"thought"`
	ExecutionTime float64 `json:"execution_time"`
	State         string  `json:"state"`
}

type sweMessage struct {
	Role        string `json:"role"`
	Content     string `json:"content"`
	Agent       string `json:"agent"`
	MessageType string `json:"message_type"`
	Thought     string `json:"thought,omitempty"`
	Action      string `json:"action,omitempty"`
}

type sweInfo struct {
	Submission string         `json:"submission"`
	ExitStatus string         `json:"exit_status"`
	Resolved   bool           `json:"resolved"`
	ModelStats map[string]any `json:"model_stats"`
}

type sweRecord struct {
	Environment string       `json:"environment"`
	Trajectory  []sweStep    `json:"trajectory"`
	History     []sweMessage `json:"history"`
	Info        sweInfo      `json:"info"`
	InstanceID  string       `json:"instance_id"`
}

// sweTurn renders a step as SWE-agent's response, action and observation
// (with the prompt SWE-agent appends).
func sweTurn(s step, repo, file string) (resp, action, obs string) {
	if s.noFence {
		return s.thought, "", s.sweObs
	}
	return s.thought + "\n\n```\n" + s.cmd + "\n```", s.cmd + "\n",
		s.sweObs + "\n(Open file: /" + repo + "/" + file + ")\n(Current directory: /" + repo + ")\nbash-$"
}

func (g *shapeGen) sweagent(i int) any {
	id, repo, file, turns, resolved := g.run(i)
	rec := sweRecord{Environment: "swe_main", InstanceID: id, History: []sweMessage{
		{Role: "system", Content: "SETTING: You are an autonomous programmer, and you're working directly in the command line with a special interface.\n" + g.prosen(2500),
			Agent: "main", MessageType: "system_prompt"},
		{Role: "user", Content: "We're currently solving the following issue within our repository. Here's the issue text:\nISSUE:\n" + g.prosen(1200),
			Agent: "main", MessageType: "observation"},
	}}
	state := `{"open_file": "/` + repo + "/" + file + `", "working_dir": "/` + repo + `"}`
	for k := range turns {
		s := g.step(k, turns, repo, file)
		resp, action, obs := sweTurn(s, repo, file)
		if k == turns-1 {
			rec.Info.Submission = s.sweObs
		}
		rec.Trajectory = append(rec.Trajectory, sweStep{Action: action, Observation: s.sweObs, Response: resp, Thought: s.thought,
			ExecutionTime: float64(g.rng.Intn(3000)) / 1000, State: state})
		rec.History = append(rec.History,
			sweMessage{Role: "assistant", Content: resp, Agent: "main", MessageType: "action", Thought: s.thought, Action: action},
			sweMessage{Role: "user", Content: obs, Agent: "main", MessageType: "observation"})
	}
	rec.Info.ExitStatus, rec.Info.Resolved = "submitted", resolved
	rec.Info.ModelStats = map[string]any{"api_calls": turns, "instance_cost": float64(turns) / 40, "tokens_sent": 3000 * turns, "tokens_received": 150 * turns}
	return &rec
}

// The chatml shape.

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatRecord struct {
	Messages   []chatMessage `json:"messages"`
	InstanceID string        `json:"instance_id"`
	Resolved   bool          `json:"resolved"`
	Model      string        `json:"model"`
	TrajID     string        `json:"traj_id"`
	Patch      string        `json:"patch"`
}

func (g *shapeGen) chatml(i int) any {
	id, repo, file, turns, resolved := g.run(i)
	rec := chatRecord{InstanceID: id, Resolved: resolved, Model: "claude-3-7-sonnet-20250219", TrajID: fmt.Sprintf("%s.%08x", id, g.rng.Uint32()),
		Messages: []chatMessage{
			{Role: "system", Content: "You are a helpful assistant that can interact with a computer to solve tasks.\n" + g.prosen(1500)},
			{Role: "user", Content: "<uploaded_files>\n/testbed\n</uploaded_files>\n<pr_description>\n" + g.prosen(1200) + "\n</pr_description>"},
		}}
	for k := range turns {
		s := g.step(k, turns, repo, file)
		resp, _, _ := sweTurn(s, repo, file)
		rec.Messages = append(rec.Messages, chatMessage{Role: "assistant", Content: resp}, chatMessage{Role: "user", Content: "OBSERVATION:\n" + s.sweObs})
		if k == turns-1 {
			rec.Patch = s.sweObs
		}
	}
	return &rec
}

// openHandsTools are the OpenAI function schemas an OpenHands CodeAct
// agent offers (in our words): not lego's, so that a reader cannot assume them.
var openHandsTools = []map[string]any{
	ohTool("execute_bash", "Execute a bash command in the terminal of the sandbox.\n"+
		"* Long running commands: commands that may run indefinitely (servers, watchers) should be run in the background, with their output redirected to a file, e.g. `python3 app.py > server.log 2>&1 &`.\n"+
		"* Interact with a running process: when the previous command has not finished, send an empty command to see more of its output, send text to give it input, or send keys such as C-c to interrupt it.\n"+
		"* One command at a time: chain several with `&&` or `;` rather than sending them in separate calls.\n"+
		"* The working directory and environment variables persist between calls. Use absolute paths where you can.\n"+
		"* Output longer than the limit is cut in its middle; redirect big outputs to a file and look at parts of it.",
		map[string]any{
			"command":  map[string]any{"type": "string", "description": "The bash command to execute. Can be empty to see more output of the previous command, or a key such as C-c to interrupt it."},
			"is_input": map[string]any{"type": "string", "enum": []string{"true", "false"}, "description": "If true, the command is input to the process still running. If false (the default), it is a new command for the shell."},
			"timeout":  map[string]any{"type": "number", "description": "Optional. A hard limit in seconds; the command is interrupted once it passes. Without it the command runs until it stops producing output for a while."},
		}, "command"),
	ohTool("think", "Use the tool to think about something. It obtains no new information and changes nothing in the repository; it only records the thought. "+
		"Useful when exploring a repository and finding the source of a bug (to brainstorm several causes and rank them), after receiving test results (to plan the fix), "+
		"when planning a complex refactoring (to outline options and their trade-offs), and when debugging (to organise hypotheses).",
		map[string]any{"thought": map[string]any{"type": "string", "description": "The thought to record."}}, "thought"),
	ohTool("finish", "Signals the completion of the current task or conversation. Use it when the task has been completed successfully, "+
		"when the task cannot be completed with the tools available, or when the user asked to stop. Include a summary of what was done and of anything left open.",
		map[string]any{
			"message":        map[string]any{"type": "string", "description": "Final message to send to the user."},
			"task_completed": map[string]any{"type": "string", "enum": []string{"true", "false", "partial"}, "description": "Whether the task was completed."},
		}, "message", "task_completed"),
	ohTool("execute_ipython_cell", "Run a cell of Python code in an IPython environment. Variables, imports and definitions stay defined across cells. "+
		"Magic commands such as %pip work. Use it for quick experiments on data structures or library behaviour rather than for editing files.",
		map[string]any{"code": map[string]any{"type": "string", "description": "The Python code to execute. Supports magic commands like %pip."}}, "code"),
	ohTool("str_replace_editor", "Custom editing tool for viewing, creating and editing files in plain-text format.\n"+
		"* State is persistent across command calls and discussions with the user.\n"+
		"* If `path` is a file, `view` displays the result of applying `cat -n`. If `path` is a directory, `view` lists non-hidden files and directories up to 2 levels deep.\n"+
		"* The `create` command cannot be used if the specified `path` already exists as a file.\n"+
		"* If a command generates a long output, it will be truncated and marked with `<response clipped>`.\n"+
		"* The `undo_edit` command will revert the last edit made to the file at `path`.\n"+
		"Notes for using the `str_replace` command:\n"+
		"* The `old_str` parameter should match EXACTLY one or more consecutive lines from the original file. Be mindful of whitespace!\n"+
		"* If the `old_str` parameter is not unique in the file, the replacement will not be performed. Include enough context to make it unique.\n"+
		"* The `new_str` parameter should contain the edited lines that should replace the `old_str`.",
		map[string]any{
			"command":     map[string]any{"type": "string", "enum": []string{"view", "create", "str_replace", "insert", "undo_edit"}, "description": "The command to run."},
			"path":        map[string]any{"type": "string", "description": "Absolute path to file or directory, e.g. `/workspace/file.py` or `/workspace`."},
			"file_text":   map[string]any{"type": "string", "description": "Required for `create`: the content of the file to be created."},
			"old_str":     map[string]any{"type": "string", "description": "Required for `str_replace`: the string in `path` to replace."},
			"new_str":     map[string]any{"type": "string", "description": "Optional for `str_replace` (the new string; none deletes old_str), required for `insert` (the string to insert)."},
			"insert_line": map[string]any{"type": "integer", "description": "Required for `insert`: `new_str` is inserted AFTER this line of `path`."},
			"view_range":  map[string]any{"type": "array", "items": map[string]any{"type": "integer"}, "description": "Optional for `view` of a file: the line range to show, e.g. [11, 12]; [start, -1] shows from start to the end."},
		}, "command", "path"),
}

func ohTool(name, desc string, props map[string]any, required ...string) map[string]any {
	return map[string]any{"type": "function", "function": map[string]any{"name": name, "description": desc,
		"parameters": map[string]any{"type": "object", "properties": props, "required": required}}}
}
