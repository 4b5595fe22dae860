package format

// The SWE-agent family's shapes: its .traj (history, or trajectory
// steps) and nebius' export of SWE-agent runs.

func (d *rdec) nebiusRecord(b []byte, t *Trajectory, r *resolution) error {
	_, err := objectP(b, func(k string, v []byte) (n int, err error) {
		if ok, n, err := d.common(k, v, t, r); ok {
			return n, err
		}
		switch k {
		case "target":
			r.nested, n, err = d.flagSet(key(k), v)
		case "model_name":
			t.Teacher, n, err = d.str(key(k), v)
		case "generated_patch":
			t.Patch, n, err = d.str(key(k), v)
		case "exit_status":
			t.Exit, n, err = d.str(key(k), v)
		case "trajectory":
			t.Messages = t.Messages[:0]
			n, err = d.list(key(k), v, func(i int, v []byte) (int, error) {
				f := key("trajectory").at(i)
				m := Message{Raw: Text{}}
				var sys Text
				n, err := d.object(f, v, func(mk string, mv []byte) (n int, err error) {
					switch mk {
					case "role":
						m.Role, n, err = d.str(f.sub("role"), mv)
					case "text":
						m.Raw, n, err = d.text(f.sub("text"), mv)
					case "system_prompt":
						sys, n, err = d.text(f.sub("system_prompt"), mv)
					case "mask":
						m.SourceMask, n, err = d.flag(f.sub("mask"), mv)
					default:
						n, err = d.check(f.sub(mk), mv)
					}
					return n, err
				})
				switch m.Role = canonicalRole(m.Role); m.Role {
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
	observationsAfterAssistant(t.Messages, "user")
	return nil
}

func (d *rdec) sweAgentRecord(b []byte, t *Trajectory, r *resolution) error {
	var history, steps, prompt []Message
	haveHistory := false
	_, err := objectP(b, func(k string, v []byte) (n int, err error) {
		if ok, n, err := d.common(k, v, t, r); ok {
			return n, err
		}
		switch k {
		case "info":
			n, err = d.object(key(k), v, func(ik string, iv []byte) (n int, err error) {
				switch ik {
				case "submission":
					n, err = d.firstStr(key(k).sub("submission"), iv, &t.Patch)
				case "exit_status":
					t.Exit, n, err = d.str(key(k).sub("exit_status"), iv)
				case "resolved":
					r.nested, n, err = d.flagSet(key(k).sub("resolved"), iv)
				default:
					n, err = d.check(key(k).sub(ik), iv)
				}
				return n, err
			})
		case "history":
			s, serr := scalar(v)
			haveHistory = serr != nil || string(s) != "null"
			history = history[:0]
			n, err = d.list(key(k), v, func(i int, v []byte) (int, error) {
				f := key("history").at(i)
				m := Message{Raw: Text{}}
				var thought Text
				n, err := d.object(f, v, func(mk string, mv []byte) (n int, err error) {
					switch mk {
					case "role":
						m.Role, n, err = d.str(f.sub("role"), mv)
					case "content":
						m.Raw, n, err = d.text(f.sub("content"), mv)
					case "action":
						m.Action, n, err = d.str(f.sub("action"), mv)
					case "thought":
						thought, n, err = d.text(f.sub("thought"), mv)
					case "tool_calls":
						m.ToolCalls = nil
						n, err = d.list(f.sub("tool_calls"), mv, func(j int, cv []byte) (int, error) {
							c, n, err := d.toolCall(f.sub("tool_calls").at(j), cv)
							m.ToolCalls = append(m.ToolCalls, c)
							return n, err
						})
					case "tool_call_ids":
						n, err = d.list(f.sub("tool_call_ids"), mv, func(j int, iv []byte) (int, error) {
							id, n, err := d.str(f.sub("tool_call_ids"), iv)
							if j == 0 {
								m.ToolCallID = id
							}
							return n, err
						})
					default:
						n, err = d.check(f.sub(mk), mv)
					}
					return n, err
				})
				m.Role = canonicalRole(m.Role)
				if m.Role == "assistant" && len(m.Raw) == 0 && len(thought) > 0 {
					m.Raw = thought
				}
				history = append(history, m)
				return n, err
			})
		case "trajectory":
			steps = steps[:0]
			n, err = d.list(key(k), v, func(i int, v []byte) (int, error) {
				f := key("trajectory").at(i)
				a, o := Message{Role: "assistant", Raw: Text{}}, Message{Role: "tool", Raw: Text{}}
				var thought Text
				n, err := d.object(f, v, func(sk string, sv []byte) (n int, err error) {
					switch sk {
					case "response":
						a.Raw, n, err = d.text(f.sub("response"), sv)
					case "thought":
						thought, n, err = d.text(f.sub("thought"), sv)
					case "action":
						a.Action, n, err = d.str(f.sub("action"), sv)
					case "observation":
						o.Raw, n, err = d.text(f.sub("observation"), sv)
					case "messages", "query":
						// What the model was sent for this step: the first
						// step's holds the prompt, which a record without
						// history has nowhere else.
						if i == 0 && prompt == nil {
							var q Trajectory
							if n, err = d.messages(f.sub(sk), sv, &q); err == nil {
								prompt = []Message{}
								for _, m := range q.Messages {
									if m.Role != "system" && m.Role != "user" {
										break
									}
									prompt = append(prompt, m)
								}
							}
							return n, err
						}
						n, err = d.check(f.sub(sk), sv)
					default:
						n, err = d.check(f.sub(sk), sv)
					}
					return n, err
				})
				if len(a.Raw) == 0 {
					a.Raw = thought
				}
				steps = append(steps, a, o)
				return n, err
			})
		case "instance_id", "environment":
			_, n, err = d.str(key(k), v)
		default:
			n, err = d.check(key(k), v)
		}
		return n, err
	})
	if err != nil {
		return asLocated(d, nil, err)
	}
	if haveHistory && len(history) > 0 {
		// (A Parquet column may give an absent history as [].)
		t.Messages = history
		// Every user message after the first action is what the tools
		// gave back (SWE-agent marks the problem statement an
		// "observation" too, so message_type cannot tell).
		observationsAfterAssistant(t.Messages, "user")
		return nil
	}
	t.Messages = append(prompt, steps...)
	return nil
}
