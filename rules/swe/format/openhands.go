package format

import (
	"bytes"
	"strconv"
)

// OpenHands' evaluation writes each instance's run as an event stream
// ("history"): actions the agent (or user) took and the observations they
// gave. An action that came from a tool call carries tool_call_metadata
// with the call's name and id, and the model's response with the call's
// arguments as the model wrote them; an observation carries what the
// model was shown (content, plus for commands the exit-code suffix in
// extras.metadata).

// skipped are the events the model never saw as a turn.
var skippedObservations = map[string]bool{"agent_state_changed": true, "recall": true, "null": true, "condensation": true, "agent_condensation": true}

var skippedActions = map[string]bool{"recall": true, "change_agent_state": true, "condensation": true, "null": true}

type ohEvent struct {
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
func (e *ohEvent) callArgs() (string, bool) {
	for _, c := range e.calls {
		if c.ID == e.callID || len(e.calls) == 1 && c.ID == "" {
			return c.Function.Arguments, true
		}
	}
	return "", false
}

func (d *rdec) openHandsRecord(b []byte, t *Trajectory, r *resolution) error {
	var events []ohEvent
	_, err := objectP(b, func(k string, v []byte) (n int, err error) {
		if ok, n, err := d.common(k, v, t, r); ok {
			return n, err
		}
		switch k {
		case "test_result":
			n, err = d.object(key(k), v, func(tk string, tv []byte) (n int, err error) {
				switch tk {
				case "git_patch":
					n, err = d.firstStr(key(k).sub("git_patch"), tv, &t.Patch)
				case "report":
					n, err = d.object(key(k).sub("report"), tv, func(rk string, rv []byte) (n int, err error) {
						if rk == "resolved" {
							r.nested, n, err = d.flagSet(key(k).sub("report").sub("resolved"), rv)
							return n, err
						}
						return d.check(key(k).sub("report").sub(rk), rv)
					})
				default:
					n, err = d.check(key(k).sub(tk), tv)
				}
				return n, err
			})
		case "history":
			events = events[:0]
			n, err = d.list(key(k), v, func(i int, v []byte) (int, error) {
				e, n, err := d.ohEvent(key("history").at(i), v)
				events = append(events, e)
				return n, err
			})
		default:
			n, err = d.check(key(k), v)
		}
		return n, err
	})
	if err != nil {
		return asLocated(d, nil, err)
	}
	// An observation answers the action it names as its cause.
	byID := map[int64]*ohEvent{}
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
		case e.action != "" && !skippedActions[e.action]:
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
		case e.obs != "" && !skippedObservations[e.obs]:
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

func (d *rdec) ohEvent(f *fpath, v []byte) (ohEvent, int, error) {
	var e ohEvent
	size, err := d.object(f, v, func(k string, v []byte) (n int, err error) {
		switch k {
		case "id":
			e.id, n, err = d.integer(f.sub("id"), v)
		case "cause":
			e.cause, n, err = d.integer(f.sub("cause"), v)
		case "source":
			e.source, n, err = d.str(f.sub("source"), v)
		case "action":
			e.action, n, err = d.str(f.sub("action"), v)
		case "observation":
			e.obs, n, err = d.str(f.sub("observation"), v)
		case "content":
			e.content, n, err = d.text(f.sub("content"), v)
		case "args":
			// Checked whole (its other members are not looked at), then
			// walked for the few lego reads.
			if n, err = d.check(f.sub("args"), v); err != nil || string(v[:n]) == "null" {
				return n, err
			}
			e.args = v[:n]
			n, err = d.object(f.sub("args"), v, func(ak string, av []byte) (n int, err error) {
				switch ak {
				case "thought":
					e.thought, n, err = d.text(f.sub("args").sub("thought"), av)
				case "content":
					e.argsContent, n, err = d.text(f.sub("args").sub("content"), av)
				case "tools":
					e.tools, n, err = d.tools(f.sub("args").sub("tools"), av)
				case "command", "code", "path":
					if kind(av) == "string" && e.command == "" {
						e.command, n, err = d.str(f.sub("args").sub(ak), av)
					} else {
						n, err = skip(av)
					}
				default:
					n, err = skip(av)
				}
				return n, err
			})
		case "tool_call_metadata":
			n, err = d.object(f.sub("tool_call_metadata"), v, func(mk string, mv []byte) (n int, err error) {
				switch mk {
				case "function_name":
					e.fn, n, err = d.str(f.sub("tool_call_metadata").sub("function_name"), mv)
				case "tool_call_id":
					e.callID, n, err = d.str(f.sub("tool_call_metadata").sub("tool_call_id"), mv)
				case "model_response":
					n, err = d.modelResponse(f.sub("tool_call_metadata").sub("model_response"), mv, &e)
				default:
					n, err = d.check(f.sub("tool_call_metadata").sub(mk), mv)
				}
				return n, err
			})
		case "extras":
			n, err = d.object(f.sub("extras"), v, func(xk string, xv []byte) (int, error) {
				if xk != "metadata" {
					return d.check(f.sub("extras").sub(xk), xv)
				}
				return d.object(f.sub("extras").sub("metadata"), xv, func(mk string, mv []byte) (n int, err error) {
					switch mk {
					case "exit_code":
						if s, serr := scalar(mv); serr == nil && string(s) == "null" {
							return 4, nil
						}
						var c int64
						c, n, err = d.integer(f.sub("extras").sub("metadata").sub("exit_code"), mv)
						e.exitCode = &c
					case "suffix":
						e.suffix, n, err = d.str(f.sub("extras").sub("metadata").sub("suffix"), mv)
					default:
						n, err = d.check(f.sub("extras").sub("metadata").sub(mk), mv)
					}
					return n, err
				})
			})
		default:
			n, err = d.check(f.sub(k), v)
		}
		return n, err
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
	return e, size, err
}

// modelResponse finds, in the model's response, the arguments of the call
// the event came from (matched by id once tool_call_id is known: the
// members may come in any order, so all calls are kept until then).
func (d *rdec) modelResponse(f *fpath, v []byte, e *ohEvent) (int, error) {
	var calls []ToolCall
	n, err := d.object(f, v, func(k string, v []byte) (int, error) {
		if k != "choices" {
			return d.check(f.sub(k), v)
		}
		return d.list(f.sub("choices"), v, func(i int, cv []byte) (int, error) {
			return d.object(f.sub("choices"), cv, func(ck string, mv []byte) (int, error) {
				if ck != "message" {
					return d.check(f.sub("choices").sub(ck), mv)
				}
				return d.object(f.sub("choices").sub("message"), mv, func(mk string, tv []byte) (int, error) {
					if mk != "tool_calls" {
						return d.check(f.sub("choices").sub("message").sub(mk), tv)
					}
					return d.list(f.sub("choices").sub("message").sub("tool_calls"), tv, func(j int, c []byte) (int, error) {
						call, n, err := d.toolCall(f.sub("choices").sub("message").sub("tool_calls").at(j), c)
						calls = append(calls, call)
						return n, err
					})
				})
			})
		})
	})
	e.calls = calls
	return n, err
}
