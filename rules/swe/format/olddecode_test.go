package format

// A frozen copy of the decoder as it was before the single-pass rewrite
// (each level found a value's end with skipValue, then parsed it again):
// the differential tests hold the new one to its accepted records, errors
// and decoded trajectories.

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// oldRdec decodes one record.
type oldRdec struct {
	at Loc
}

func (d *oldRdec) bad(field, format string, args ...any) error {
	return d.at.Err(field, format, args...)
}

func (d *oldRdec) want(field, want string, v []byte) error {
	return d.bad(field, "got JSON %s, want %s", kind(v), want)
}

// check is v, a value lego does not use, checked to be JSON.
func (d *oldRdec) check(field string, v []byte) error {
	c := compactor{s: v}
	if c.value() && c.end() {
		return nil
	}
	return d.badJSON(field, v)
}

// badJSON says what is wrong in v, which compactor refused.
func (d *oldRdec) badJSON(field string, v []byte) error {
	if !utf8.Valid(v) {
		i := 0
		for i < len(v) {
			r, n := utf8.DecodeRune(v[i:])
			if r == utf8.RuneError && n == 1 {
				break
			}
			i += n
		}
		return d.bad(field, "invalid UTF-8 at byte %d of the value", i)
	}
	if hasControl(v) {
		return d.bad(field, "a control character inside a string (not JSON)")
	}
	return d.bad(field, "not JSON (a bad escape or value)")
}

// str decodes a string member (null = "").
func (d *oldRdec) str(field string, v []byte) (string, error) {
	if string(v) == "null" {
		return "", nil
	}
	if kind(v) != "string" {
		return "", d.want(field, "string", v)
	}
	s, err := str(v)
	if err != nil {
		return "", d.badJSON(field, v)
	}
	return s, nil
}

func (d *oldRdec) flag(field string, v []byte) (bool, error) {
	switch string(v) {
	case "true":
		return true, nil
	case "false", "null":
		return false, nil
	}
	return false, d.want(field, "bool", v)
}

func (d *oldRdec) integer(field string, v []byte) (int64, error) {
	if string(v) == "null" {
		return 0, nil
	}
	n, err := intOf(v)
	if err != nil {
		return 0, d.want(field, "integer", v)
	}
	return n, nil
}

// text reads a content: a string, null, or a list of parts whose text
// parts are joined by newlines (image and other parts are dropped).
func (d *oldRdec) text(field string, v []byte) (Text, error) {
	switch kind(v) {
	case "null":
		return Text{}, nil
	case "string":
		body := v[1 : len(v)-1]
		if !validBody(body) {
			return nil, d.badJSON(field, v)
		}
		return Text(body), nil
	case "array":
		var out Text
		n := 0
		err := Elements(v, func(p []byte) error {
			var part Text
			switch kind(p) {
			case "string":
				t, err := d.text(field, p)
				if err != nil {
					return err
				}
				part = t
			case "object":
				typ, txt := "", Text(nil)
				err := oldMembers2(p, func(k string, pv []byte) error {
					var err error
					switch k {
					case "type":
						typ, err = d.str(field+".type", pv)
					case "text":
						txt, err = d.text(field+".text", pv)
					default:
						err = d.check(field+"."+k, pv)
					}
					return err
				})
				if err != nil {
					return err
				}
				if typ != "" && typ != "text" || txt == nil {
					return nil
				}
				part = txt
			default:
				return d.want(field, "a text part", p)
			}
			if n > 0 {
				out = append(out, `\n`...)
			}
			out = append(out, part...)
			n++
			return nil
		})
		if err != nil {
			return nil, oldAsLocated(d, field, err)
		}
		if out == nil {
			out = Text{}
		}
		return out, nil
	}
	return nil, d.want(field, "string or a list of parts", v)
}

// oldMembers2 is Members whose syntax errors come back as they are (the
// caller names the field).
func oldMembers2(b []byte, fn func(key string, val []byte) error) error { return Members(b, fn) }

// oldAsLocated turns a scanner's error into one naming the record and field.
func oldAsLocated(d *oldRdec, field string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*LineError); ok {
		return err
	}
	return d.bad(field, "not JSON: %v", err)
}

// object calls fn for each member of the object v (null: none).
func (d *oldRdec) object(field string, v []byte, fn func(k string, v []byte) error) error {
	if string(v) == "null" {
		return nil
	}
	if kind(v) != "object" {
		return d.want(field, "object", v)
	}
	return oldAsLocated(d, field, Members(v, fn))
}

// list calls fn for each element of the array v (null: none).
func (d *oldRdec) list(field string, v []byte, fn func(i int, v []byte) error) error {
	if string(v) == "null" {
		return nil
	}
	if kind(v) != "array" {
		return d.want(field, "array", v)
	}
	i := 0
	return oldAsLocated(d, field, Elements(v, func(e []byte) error {
		err := fn(i, e)
		i++
		return err
	}))
}

// tools keeps a list of tool schemas, checked and compacted.
func (d *oldRdec) tools(field string, v []byte) ([]byte, error) {
	if string(v) == "null" {
		return nil, nil
	}
	if kind(v) == "string" {
		// Some exports hold the list JSON-encoded in a string.
		s, err := d.str(field, v)
		if err != nil {
			return nil, err
		}
		v = []byte(strings.TrimSpace(s))
		if len(v) == 0 {
			return nil, nil
		}
	}
	if kind(v) != "array" {
		return nil, d.want(field, "a list of tool schemas", v)
	}
	out, ok := AppendCompact(nil, string(v))
	if !ok {
		return nil, d.badJSON(field, v)
	}
	if string(out) == "[]" {
		return nil, nil
	}
	return out, nil
}

// toolCall reads an OpenAI tool call.
func (d *oldRdec) toolCall(field string, v []byte) (ToolCall, error) {
	var c ToolCall
	err := d.object(field, v, func(k string, v []byte) (err error) {
		switch k {
		case "id":
			c.ID, err = d.str(field+".id", v)
		case "type":
			c.Type, err = d.str(field+".type", v)
		case "function":
			err = d.object(field+".function", v, func(k string, v []byte) (err error) {
				switch k {
				case "name":
					c.Function.Name, err = d.str(field+".function.name", v)
				case "arguments":
					c.Function.Arguments, err = d.arguments(field+".function.arguments", v)
				default:
					err = d.check(field+".function."+k, v)
				}
				return err
			})
		default:
			err = d.check(field+"."+k, v)
		}
		return err
	})
	return c, err
}

// arguments are a JSON string holding the arguments, or the arguments
// themselves (some exports decode them): either way, JSON text.
func (d *oldRdec) arguments(field string, v []byte) (string, error) {
	switch kind(v) {
	case "string", "null":
		return d.str(field, v)
	}
	if err := d.check(field, v); err != nil {
		return "", err
	}
	return string(v), nil
}

// messages reads an OpenAI-style message list.
func (d *oldRdec) messages(field string, v []byte, t *Trajectory) error {
	t.Messages = t.Messages[:0]
	return d.list(field, v, func(i int, v []byte) error {
		m, err := d.message(fmt.Sprintf("%s[%d]", field, i), v)
		t.Messages = append(t.Messages, m)
		return err
	})
}

func (d *oldRdec) message(field string, v []byte) (Message, error) {
	m := Message{Raw: Text{}}
	err := d.object(field, v, func(k string, v []byte) (err error) {
		switch k {
		case "role":
			m.Role, err = d.str(field+".role", v)
		case "content":
			m.Raw, err = d.text(field+".content", v)
		case "tool_calls":
			m.ToolCalls = nil
			err = d.list(field+".tool_calls", v, func(i int, v []byte) error {
				c, err := d.toolCall(fmt.Sprintf("%s.tool_calls[%d]", field, i), v)
				m.ToolCalls = append(m.ToolCalls, c)
				return err
			})
		case "tool_call_id":
			m.ToolCallID, err = d.str(field+".tool_call_id", v)
		case "name":
			m.Name, err = d.str(field+".name", v)
		case "action":
			m.Action, err = d.str(field+".action", v)
		case "source_mask":
			m.SourceMask, err = d.flag(field+".source_mask", v)
		case "corrections":
			m.Corrections = nil
			err = d.list(field+".corrections", v, func(i int, v []byte) error {
				s, err := d.str(field+".corrections", v)
				m.Corrections = append(m.Corrections, s)
				return err
			})
		default:
			err = d.check(field+"."+k, v)
		}
		return err
	})
	if m.Role == "function" {
		m.Role = "tool" // OpenAI's older name for a tool result
	}
	return m, err
}

// common members of a record: lego's own, and the oldResolution flags the
// published sets use. It reports whether it knew k.
func (d *oldRdec) common(k string, v []byte, t *Trajectory, r *oldResolution) (bool, error) {
	var err error
	switch k {
	case "instance_id":
		t.InstanceID, err = d.str(k, v)
	case "resolved":
		r.top, err = d.flagSet(k, v)
	case "semi_resolved":
		t.SemiResolved, err = d.flag(k, v)
	case "report":
		err = d.object(k, v, func(rk string, rv []byte) (err error) {
			if rk == "resolved" {
				r.report, err = d.flagSet(k+".resolved", rv)
				return err
			}
			return d.check(k+"."+rk, rv)
		})
	case "teacher":
		t.Teacher, err = d.str(k, v)
	case "seed":
		t.Seed, err = d.integer(k, v)
	case "sample":
		var n int64
		n, err = d.integer(k, v)
		t.Sample = int(n)
	case "turns":
		// Recomputed from the messages, never trusted; still an integer.
		_, err = d.integer(k, v)
	case "patch":
		t.Patch, err = d.str(k, v)
	case "gold_patch":
		t.GoldPatch, err = d.str(k, v)
	case "exit":
		t.Exit, err = d.str(k, v)
	case "tools":
		t.Tools, err = d.tools(k, v)
	case "infra_error":
		if string(v) == "null" {
			return true, nil
		}
		ie := &InfraError{}
		err = d.object(k, v, func(ik string, iv []byte) (err error) {
			switch ik {
			case "class":
				ie.Class, err = d.str(k+".class", iv)
			case "message":
				ie.Message, err = d.str(k+".message", iv)
			default:
				err = d.check(k+"."+ik, iv)
			}
			return err
		})
		t.InfraError = ie
	case "source_format":
		_, err = d.str(k, v)
	default:
		return false, nil
	}
	return true, err
}

// oldResolution gathers where a record says whether it resolved: the first
// of these that is present counts.
type oldResolution struct {
	top, report, nested *bool
}

func (r oldResolution) value() bool {
	for _, p := range []*bool{r.top, r.report, r.nested} {
		if p != nil {
			return *p
		}
	}
	return false
}

func (d *oldRdec) flagSet(field string, v []byte) (*bool, error) {
	if string(v) == "null" {
		return nil, nil
	}
	b, err := d.flag(field, v)
	return &b, err
}

// oldDecodeTrajectory decodes a record of the given shape ("" = detect it
// from this record) into lego's trajectory: messages in OpenAI's roles
// (system, user, assistant, tool), every observation a tool message,
// Turns counted from them.
func oldDecodeTrajectory(shape string, at Loc, b []byte) (*Trajectory, error) {
	d := &oldRdec{at: at}
	if kind(b) != "object" {
		i := skipSpace(b, 0)
		return nil, d.bad("", "not a JSON object (%s)", kind(b[i:]))
	}
	if shape == "" {
		shape = DetectShape(b)
	}
	t := &Trajectory{Shape: shape}
	var r oldResolution
	var err error
	switch shape {
	case ShapeMessages, ShapeChatML:
		err = d.messagesRecord(b, t, &r, shape == ShapeChatML)
	case ShapeOpenHands:
		err = d.openHandsRecord(b, t, &r)
	case ShapeSWEAgent:
		err = d.sweAgentRecord(b, t, &r)
	case ShapeNebius:
		err = d.nebiusRecord(b, t, &r)
	default:
		return nil, CheckShape(shape)
	}
	if err != nil {
		return nil, err
	}
	if t.InstanceID == "" && shape == ShapeSWEAgent {
		// SWE-agent names the file after the instance.
		t.InstanceID = strings.TrimSuffix(filepath.Base(at.File), ".traj")
	}
	t.Resolved = r.value()
	t.Turns = t.AssistantTurns()
	return t, nil
}

func (d *oldRdec) messagesRecord(b []byte, t *Trajectory, r *oldResolution, chatml bool) error {
	err := Members(b, func(k string, v []byte) error {
		if ok, err := d.common(k, v, t, r); ok {
			return err
		}
		if k == "messages" {
			return d.messages(k, v, t)
		}
		return d.check(k, v)
	})
	if err != nil {
		return oldAsLocated(d, "", err)
	}
	if chatml {
		oldObservationsAfterAssistant(t.Messages, "user")
	}
	return nil
}

// oldObservationsAfterAssistant makes every message of role obs that comes
// after the first assistant message a tool result: ChatML exports send
// tool output back as user messages.
func oldObservationsAfterAssistant(msgs []Message, obs string) {
	seen := false
	for i := range msgs {
		switch msgs[i].Role {
		case "assistant":
			seen = true
		case obs:
			if seen {
				msgs[i].Role = "tool"
			}
		}
	}
}

func (d *oldRdec) nebiusRecord(b []byte, t *Trajectory, r *oldResolution) error {
	err := Members(b, func(k string, v []byte) (err error) {
		if ok, err := d.common(k, v, t, r); ok {
			return err
		}
		switch k {
		case "target":
			r.nested, err = d.flagSet(k, v)
		case "model_name":
			t.Teacher, err = d.str(k, v)
		case "generated_patch":
			t.Patch, err = d.str(k, v)
		case "exit_status":
			t.Exit, err = d.str(k, v)
		case "trajectory":
			t.Messages = t.Messages[:0]
			err = d.list(k, v, func(i int, v []byte) error {
				f := fmt.Sprintf("trajectory[%d]", i)
				m := Message{Raw: Text{}}
				var sys Text
				err := d.object(f, v, func(mk string, mv []byte) (err error) {
					switch mk {
					case "role":
						m.Role, err = d.str(f+".role", mv)
					case "text":
						m.Raw, err = d.text(f+".text", mv)
					case "system_prompt":
						sys, err = d.text(f+".system_prompt", mv)
					case "mask":
						m.SourceMask, err = d.flag(f+".mask", mv)
					default:
						err = d.check(f+"."+mk, mv)
					}
					return err
				})
				switch m.Role {
				case "ai":
					m.Role = "assistant"
				case "system":
					if len(sys) > 0 {
						m.Raw = sys
					}
				}
				if m.Role != "assistant" {
					m.SourceMask = false
				}
				t.Messages = append(t.Messages, m)
				return err
			})
		default:
			err = d.check(k, v)
		}
		return err
	})
	if err != nil {
		return oldAsLocated(d, "", err)
	}
	oldObservationsAfterAssistant(t.Messages, "user")
	return nil
}

func (d *oldRdec) sweAgentRecord(b []byte, t *Trajectory, r *oldResolution) error {
	var history, steps []Message
	haveHistory := false
	err := Members(b, func(k string, v []byte) (err error) {
		if ok, err := d.common(k, v, t, r); ok {
			return err
		}
		switch k {
		case "info":
			err = d.object(k, v, func(ik string, iv []byte) (err error) {
				switch ik {
				case "submission":
					if t.Patch == "" {
						t.Patch, err = d.str(k+".submission", iv)
					}
				case "exit_status":
					t.Exit, err = d.str(k+".exit_status", iv)
				case "resolved":
					r.nested, err = d.flagSet(k+".resolved", iv)
				default:
					err = d.check(k+"."+ik, iv)
				}
				return err
			})
		case "history":
			haveHistory = string(v) != "null"
			history = history[:0]
			err = d.list(k, v, func(i int, v []byte) error {
				f := fmt.Sprintf("history[%d]", i)
				m := Message{Raw: Text{}}
				var thought Text
				err := d.object(f, v, func(mk string, mv []byte) (err error) {
					switch mk {
					case "role":
						m.Role, err = d.str(f+".role", mv)
					case "content":
						m.Raw, err = d.text(f+".content", mv)
					case "action":
						m.Action, err = d.str(f+".action", mv)
					case "thought":
						thought, err = d.text(f+".thought", mv)
					case "tool_calls":
						m.ToolCalls = nil
						err = d.list(f+".tool_calls", mv, func(j int, cv []byte) error {
							c, err := d.toolCall(fmt.Sprintf("%s.tool_calls[%d]", f, j), cv)
							m.ToolCalls = append(m.ToolCalls, c)
							return err
						})
					case "tool_call_ids":
						err = d.list(f+".tool_call_ids", mv, func(j int, iv []byte) error {
							id, err := d.str(f+".tool_call_ids", iv)
							if j == 0 {
								m.ToolCallID = id
							}
							return err
						})
					default:
						err = d.check(f+"."+mk, mv)
					}
					return err
				})
				if m.Role == "assistant" && len(m.Raw) == 0 && len(thought) > 0 {
					m.Raw = thought
				}
				history = append(history, m)
				return err
			})
		case "trajectory":
			steps = steps[:0]
			err = d.list(k, v, func(i int, v []byte) error {
				f := fmt.Sprintf("trajectory[%d]", i)
				a, o := Message{Role: "assistant", Raw: Text{}}, Message{Role: "tool", Raw: Text{}}
				var thought Text
				err := d.object(f, v, func(sk string, sv []byte) (err error) {
					switch sk {
					case "response":
						a.Raw, err = d.text(f+".response", sv)
					case "thought":
						thought, err = d.text(f+".thought", sv)
					case "action":
						a.Action, err = d.str(f+".action", sv)
					case "observation":
						o.Raw, err = d.text(f+".observation", sv)
					default:
						err = d.check(f+"."+sk, sv)
					}
					return err
				})
				if len(a.Raw) == 0 {
					a.Raw = thought
				}
				steps = append(steps, a, o)
				return err
			})
		case "instance_id", "environment":
			_, err = d.str(k, v)
		default:
			err = d.check(k, v)
		}
		return err
	})
	if err != nil {
		return oldAsLocated(d, "", err)
	}
	if haveHistory {
		t.Messages = history
		// Every user message after the first action is what the tools
		// gave back (SWE-agent marks the problem statement an
		// "observation" too, so message_type cannot tell).
		oldObservationsAfterAssistant(t.Messages, "user")
		return nil
	}
	t.Messages = steps
	return nil
}

// OpenHands' evaluation writes each instance's run as an event stream
// ("history"): actions the agent (or user) took and the observations they
// gave. An action that came from a tool call carries tool_call_metadata
// with the call's name and id, and the model's response with the call's
// arguments as the model wrote them; an observation carries what the
// model was shown (content, plus for commands the exit-code suffix in
// extras.metadata).

var oldSkippedObservations = map[string]bool{"agent_state_changed": true, "recall": true, "null": true, "condensation": true, "agent_condensation": true}

var oldSkippedActions = map[string]bool{"recall": true, "change_agent_state": true, "condensation": true, "null": true}

type oldOhEvent struct {
	id, cause   int64
	source      string
	action, obs string
	content     Text // observation content, or a message action's
	thought     Text
	args        []byte
	argsContent Text
	tools       []byte
	fn, callID  string
	calls       []ToolCall // the model response's calls
	exitCode    *int64
	suffix      string
	command     string
}

// callArgs are the arguments of e's call as the model wrote them.
func (e *oldOhEvent) callArgs() (string, bool) {
	for _, c := range e.calls {
		if c.ID == e.callID || len(e.calls) == 1 && c.ID == "" {
			return c.Function.Arguments, true
		}
	}
	return "", false
}

func (d *oldRdec) openHandsRecord(b []byte, t *Trajectory, r *oldResolution) error {
	var events []oldOhEvent
	err := Members(b, func(k string, v []byte) (err error) {
		if ok, err := d.common(k, v, t, r); ok {
			return err
		}
		switch k {
		case "test_result":
			err = d.object(k, v, func(tk string, tv []byte) (err error) {
				switch tk {
				case "git_patch":
					if t.Patch == "" {
						t.Patch, err = d.str(k+".git_patch", tv)
					}
				case "report":
					err = d.object(k+".report", tv, func(rk string, rv []byte) (err error) {
						if rk == "resolved" {
							r.nested, err = d.flagSet(k+".report.resolved", rv)
							return err
						}
						return d.check(k+".report."+rk, rv)
					})
				default:
					err = d.check(k+"."+tk, tv)
				}
				return err
			})
		case "history":
			events = events[:0]
			err = d.list(k, v, func(i int, v []byte) error {
				e, err := d.oldOhEvent(fmt.Sprintf("history[%d]", i), v)
				events = append(events, e)
				return err
			})
		default:
			err = d.check(k, v)
		}
		return err
	})
	if err != nil {
		return oldAsLocated(d, "", err)
	}
	// An observation answers the action it names as its cause.
	byID := map[int64]*oldOhEvent{}
	for i := range events {
		if e := &events[i]; e.action != "" {
			byID[e.id] = e
		} else if a := byID[e.cause]; a != nil && e.callID == "" {
			e.callID, e.fn = a.callID, a.fn
		}
	}
	t.Messages = t.Messages[:0]
	for _, e := range events {
		switch {
		case e.action == "system":
			t.Messages = append(t.Messages, Message{Role: "system", Raw: e.argsContent})
			if len(e.tools) > 0 && len(t.Tools) == 0 {
				t.Tools = e.tools
			}
		case e.action == "message" && e.source == "user":
			t.Messages = append(t.Messages, Message{Role: "user", Raw: e.argsContent})
		case e.action == "message":
			t.Messages = append(t.Messages, Message{Role: "assistant", Raw: e.argsContent})
		case e.action != "" && !oldSkippedActions[e.action]:
			m := Message{Role: "assistant", Raw: e.thought}
			if e.fn != "" {
				args, ok := e.callArgs()
				if !ok {
					args = string(e.args)
				}
				m.ToolCalls = []ToolCall{{ID: e.callID, Type: "function", Function: FunctionCall{Name: e.fn, Arguments: args}}}
			} else {
				m.Action = e.command
			}
			t.Messages = append(t.Messages, m)
		case e.obs != "" && !oldSkippedObservations[e.obs]:
			c := e.content
			if e.suffix != "" && !bytes.HasSuffix(c, Escape(e.suffix)) {
				c = append(append(Text(nil), c...), Escape(e.suffix)...)
			} else if e.suffix == "" && e.exitCode != nil && e.obs == "run" && !bytes.Contains(c, []byte("exit code")) {
				// What OpenHands appends for the model when it kept no suffix.
				c = append(append(Text(nil), c...), Escape("\n[Command finished with exit code "+strconv.FormatInt(*e.exitCode, 10)+"]")...)
			}
			if c == nil {
				c = Text{}
			}
			t.Messages = append(t.Messages, Message{Role: "tool", Raw: c, ToolCallID: e.callID, Name: e.fn})
		}
	}
	return nil
}

func (d *oldRdec) oldOhEvent(f string, v []byte) (oldOhEvent, error) {
	var e oldOhEvent
	err := d.object(f, v, func(k string, v []byte) (err error) {
		switch k {
		case "id":
			e.id, err = d.integer(f+".id", v)
		case "cause":
			e.cause, err = d.integer(f+".cause", v)
		case "source":
			e.source, err = d.str(f+".source", v)
		case "action":
			e.action, err = d.str(f+".action", v)
		case "observation":
			e.obs, err = d.str(f+".observation", v)
		case "content":
			e.content, err = d.text(f+".content", v)
		case "args":
			if err = d.check(f+".args", v); err != nil || string(v) == "null" {
				return err
			}
			e.args = v
			err = d.object(f+".args", v, func(ak string, av []byte) (err error) {
				switch ak {
				case "thought":
					e.thought, err = d.text(f+".args.thought", av)
				case "content":
					e.argsContent, err = d.text(f+".args.content", av)
				case "tools":
					e.tools, err = d.tools(f+".args.tools", av)
				case "command", "code", "path":
					if kind(av) == "string" && e.command == "" {
						e.command, err = d.str(f+".args."+ak, av)
					}
				}
				return err
			})
		case "tool_call_metadata":
			err = d.object(f+".tool_call_metadata", v, func(mk string, mv []byte) (err error) {
				switch mk {
				case "function_name":
					e.fn, err = d.str(f+".tool_call_metadata.function_name", mv)
				case "tool_call_id":
					e.callID, err = d.str(f+".tool_call_metadata.tool_call_id", mv)
				case "model_response":
					err = d.modelResponse(f+".tool_call_metadata.model_response", mv, &e)
				default:
					err = d.check(f+".tool_call_metadata."+mk, mv)
				}
				return err
			})
		case "extras":
			err = d.object(f+".extras", v, func(xk string, xv []byte) (err error) {
				if xk != "metadata" {
					return d.check(f+".extras."+xk, xv)
				}
				return d.object(f+".extras.metadata", xv, func(mk string, mv []byte) (err error) {
					switch mk {
					case "exit_code":
						if string(mv) != "null" {
							var n int64
							n, err = d.integer(f+".extras.metadata.exit_code", mv)
							e.exitCode = &n
						}
					case "suffix":
						e.suffix, err = d.str(f+".extras.metadata.suffix", mv)
					default:
						err = d.check(f+".extras.metadata."+mk, mv)
					}
					return err
				})
			})
		default:
			err = d.check(f+"."+k, v)
		}
		return err
	})
	if e.action == "message" && len(e.argsContent) == 0 && len(e.content) > 0 {
		e.argsContent = e.content
	}
	if e.argsContent == nil {
		e.argsContent = Text{}
	}
	if e.thought == nil {
		e.thought = Text{}
	}
	return e, err
}

// modelResponse finds, in the model's response, the arguments of the call
// the event came from (matched by id once tool_call_id is known: the
// members may come in any order, so all calls are kept until then).
func (d *oldRdec) modelResponse(f string, v []byte, e *oldOhEvent) error {
	var calls []ToolCall
	err := d.object(f, v, func(k string, v []byte) error {
		if k != "choices" {
			return d.check(f+"."+k, v)
		}
		return d.list(f+".choices", v, func(i int, cv []byte) error {
			return d.object(f+".choices", cv, func(ck string, mv []byte) error {
				if ck != "message" {
					return d.check(f+".choices."+ck, mv)
				}
				return d.object(f+".choices.message", mv, func(mk string, tv []byte) error {
					if mk != "tool_calls" {
						return d.check(f+".choices.message."+mk, tv)
					}
					return d.list(f+".choices.message.tool_calls", tv, func(j int, c []byte) error {
						call, err := d.toolCall(fmt.Sprintf("%s.choices.message.tool_calls[%d]", f, j), c)
						calls = append(calls, call)
						return err
					})
				})
			})
		})
	})
	e.calls = calls
	return err
}

// oldDecodeSFTHeader checks an SFT example of the layout tags describe (every
// value JSON, every string valid, each message an object with a role and
// a text content) and reads its header. Turns is counted from the
// messages, as the masking counts them (runs of assistant-side messages),
// never read from the record.
func oldDecodeSFTHeader(tags Tags, at Loc, b []byte) (SFTHeader, error) {
	var h SFTHeader
	d := &oldRdec{at: at}
	if kind(b) != "object" {
		return h, d.bad("", "not a JSON object")
	}
	sawMessages := false
	err := Members(b, func(k string, v []byte) (err error) {
		switch k {
		case "instance_id":
			h.InstanceID, err = d.str(k, v)
		case "resolved":
			h.Resolved, err = d.flagSet(k, v)
		case "turns":
			_, err = d.integer(k, v)
		case tags.Messages:
			sawMessages = true
			prev := ""
			h.Turns = 0
			err = d.list(k, v, func(i int, v []byte) error {
				f := fmt.Sprintf("%s[%d]", k, i)
				role, haveText := "", false
				err := d.object(f, v, func(mk string, mv []byte) (err error) {
					switch mk {
					case tags.RoleTag:
						role, err = d.str(f+"."+mk, mv)
					case tags.ContentTag:
						if kind(mv) != "string" {
							return d.want(f+"."+mk, "string", mv)
						}
						haveText = true
						_, err = d.text(f+"."+mk, mv)
					case "turn_mask":
						_, err = d.flag(f+"."+mk, mv)
					default:
						err = d.check(f+"."+mk, mv)
					}
					return err
				})
				if err != nil {
					return err
				}
				if role == "" || !haveText {
					return d.bad(f, "a message needs %q and %q", tags.RoleTag, tags.ContentTag)
				}
				if role == tags.AssistTag && prev != tags.AssistTag {
					h.Turns++
				}
				prev = role
				return nil
			})
		default:
			err = d.check(k, v)
		}
		return err
	})
	if err != nil {
		return h, oldAsLocated(d, "", err)
	}
	if !sawMessages {
		return h, d.bad(tags.Messages, "missing: an SFT example needs its messages")
	}
	return h, nil
}
