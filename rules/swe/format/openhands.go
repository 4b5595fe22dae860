package format

import (
	"bytes"
	"fmt"
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
				e, err := d.ohEvent(fmt.Sprintf("history[%d]", i), v)
				events = append(events, e)
				return err
			})
		default:
			err = d.check(k, v)
		}
		return err
	})
	if err != nil {
		return asLocated(d, "", err)
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

func (d *rdec) ohEvent(f string, v []byte) (ohEvent, error) {
	var e ohEvent
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
func (d *rdec) modelResponse(f string, v []byte, e *ohEvent) error {
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
