package format

import "bytes"

// The trajectory shapes DecodeTrajectory reads, each detected from a
// record's members (DetectShape) or named by trajectory_format. Fixtures
// of each, written from the public format descriptions, are in
// testdata/shapes (its README says where each shape comes from); null is
// absent everywhere, and a content may be a string or a list of parts
// ({"type": "text", "text": ...}; other parts are dropped).
//
// messages: OpenAI chat messages with tool_calls — lego's own rollouts,
// OpenHands' SFT and LLM-completion exports, SWE-Gym's sets.
// {"instance_id", "messages": [{"role", "content", "tool_calls": [{"id",
// "type", "function": {"name", "arguments": a JSON string or object}}],
// "tool_call_id", "name"}], "tools": [schemas] or their JSON in a string}.
// Observations: role "tool" (or "function"). resolved: "resolved", else
// "report.resolved".
//
// openhands_events: OpenHands' evaluation output, the event stream in
// "history". An action with tool_call_metadata is an assistant turn
// calling function_name, its arguments those of the model's response
// (else the action's args), its text args.thought; an observation is a
// tool result (content, plus extras.metadata.suffix, the exit-code line
// the model was shown); the system action's args.tools are the schemas;
// state changes and recalls are skipped. resolved: "resolved", else
// "report.resolved", else "test_result.report.resolved"; the patch is
// test_result.git_patch.
//
// sweagent: SWE-agent's .traj, one JSON document per file (or one per
// line). "history" when present (every user message after the first
// assistant message is an observation), else "trajectory" steps (thought
// or response, then the observation; the prompt from the first step's
// messages/query). The command an assistant message ran, for the exempt
// patterns, is its "action". instance_id: "instance_id", else the file's
// name without .traj. resolved: "resolved", else "info.resolved" (a .traj
// alone does not say: unresolved); the patch is info.submission.
//
// chatml: SWE-smith's and SWE-agent's ChatML exports, tool output sent
// back as user messages ("OBSERVATION: ..."): every user message after
// the first assistant one is an observation, and the command is the last
// ``` block of the assistant's text. resolved: "resolved".
//
// nebius: nebius/SWE-agent-trajectories. "trajectory" of {"role": system,
// user or ai, "text", "system_prompt", "mask"}; "ai" is the assistant, user
// messages after the first ai one are observations, and an ai message
// with "mask": true is masked ("source_mask"). resolved: "target"; the
// patch is "generated_patch", the teacher "model_name".

// DetectShape names the shape of a record from its members.
func DetectShape(b []byte) string {
	shape := ShapeMessages
	Members(b, func(k string, v []byte) error {
		switch k {
		case "history":
			first := firstElement(v)
			if first == nil {
				return nil // null or empty: another member decides
			}
			shape = ShapeOpenHands
			if hasMember(first, "role") {
				shape = ShapeSWEAgent
			}
			return errStopped
		case "trajectory":
			if first := firstElement(v); first != nil && hasMember(first, "role") {
				shape = ShapeNebius
				return errStopped
			}
			shape = ShapeSWEAgent
		case "messages":
			tools, assistant, later := false, false, false
			Elements(v, func(m []byte) error {
				Members(m, func(mk string, mv []byte) error {
					switch mk {
					case "tool_calls":
						if string(mv) != "null" && string(bytes.TrimSpace(mv)) != "[]" {
							tools = true
						}
					case "role":
						role, _ := rawString(mv)
						switch role {
						case "tool", "function":
							tools = true
						case "assistant":
							assistant = true
						case "user":
							later = later || assistant
						}
					}
					if tools {
						return errStopped // the shape is known: no need to read on
					}
					return nil
				})
				if tools {
					return errStopped
				}
				return nil
			})
			if !tools && later {
				shape = ShapeChatML
			}
			return errStopped
		}
		return nil
	})
	return shape
}

func firstElement(v []byte) []byte {
	var first []byte
	Elements(v, func(e []byte) error {
		first = e
		return errStopped
	})
	return first
}

func hasMember(obj []byte, key string) bool {
	found := false
	Members(obj, func(k string, _ []byte) error {
		if k == key {
			found = true
			return errStopped
		}
		return nil
	})
	return found
}
