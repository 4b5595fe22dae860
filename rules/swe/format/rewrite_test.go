package format

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
)

// shapeSeeds are small records of the other shapes (OpenHands events,
// SWE-agent history and trajectory, nebius) and SFT examples.
func shapeSeeds() []string {
	return []string{
		`{"instance_id": "o-1", "test_result": {"git_patch": "p", "report": {"resolved": true, "x": [1]}}, "history": [` +
			`{"id": 0, "source": "agent", "action": "system", "args": {"content": "sys", "tools": [{"type": "function", "function": {"name": "execute_bash"}}]}},` +
			`{"id": 1, "source": "user", "action": "message", "args": {"content": "fix it", "image_urls": null}},` +
			`{"id": 2, "source": "agent", "action": "run", "args": {"command": "ls", "thought": "look"}, "tool_call_metadata": {"function_name": "execute_bash", "tool_call_id": "t1", "model_response": {"id": "r", "choices": [{"index": 0, "message": {"role": "assistant", "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "execute_bash", "arguments": "{\"command\": \"ls\"}"}}]}}]}}},` +
			`{"id": 3, "cause": 2, "source": "agent", "observation": "run", "content": "a b", "extras": {"metadata": {"exit_code": 0, "suffix": "", "pid": 5}, "command": "ls"}},` +
			`{"id": 4, "source": "agent", "action": "finish", "args": {"thought": ""}}, {"id": 5, "observation": "agent_state_changed"}]}`,
		`{"history": [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "problem"}]}, ` +
			`{"role": "assistant", "content": "", "thought": "think", "action": "ls", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "bash", "arguments": {"cmd": "ls"}}}]}, ` +
			`{"role": "user", "content": "out", "tool_call_ids": ["a", "b"], "message_type": "observation"}], "info": {"submission": "diff", "exit_status": "submitted", "resolved": false, "model_stats": {"cost": 1.5}}, "environment": "e"}`,
		`{"trajectory": [{"response": "r", "thought": "t", "action": "ls", "observation": "o", "state": {}}, {"response": "", "thought": "t2", "observation": null}], "info": {"exit_status": "ok"}}`,
		`{"instance_id": "n", "model_name": "m", "target": true, "generated_patch": "g", "exit_status": "s", "trajectory": [` +
			`{"role": "system", "system_prompt": "sp", "text": "x"}, {"role": "user", "text": "u"}, {"role": "ai", "text": "a", "mask": true}, {"role": "user", "text": "obs", "mask": true, "cutoff_date": "2024"}]}`,
		`{"instance_id": "i", "infra_error": {"class": "c", "message": "m", "extra": [1, {"a": null}]}, "report": {"resolved": false}, "sample": 3, "exit": "e", "source_format": "x", ` +
			`"tools": "[{\"type\": \"function\"}]", "messages": [{"role": "function", "content": [{"type": "image_url", "image_url": {"url": "u"}}, "plain", {"text": "t"}], "corrections": ["c1", "c2"], "source_mask": true, "extra": {"k": [true, false, null, -1.5e3]}}]}`,
		`{"instance_id": "s", "turns": 2, "resolved": true, "tools": "[]", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a", "turn_mask": false}, {"from": "observation", "value": "o"}, {"from": "gpt", "value": "b", "extra": 1}], "system": "sys"}`,
		`{"instance_id": "s", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "tools": "[]", "turns": 1}`,
	}
}

// rewriteCorpus is every seed, a few generated trajectories, and
// malformed variants of the small ones: cut short, and with one byte
// changed to something that breaks the JSON in a different way.
func rewriteCorpus(t testing.TB) [][]byte {
	var out [][]byte
	seeds := append(trajectorySeeds(), shapeSeeds()...)
	for _, s := range seeds {
		out = append(out, []byte(s))
	}
	var gen bytes.Buffer
	if err := Generate(&gen, 3, 11); err != nil {
		t.Fatal(err)
	}
	for _, l := range bytes.Split(bytes.TrimSpace(gen.Bytes()), []byte("\n")) {
		out = append(out, l)
	}
	for _, s := range seeds {
		b := []byte(s)
		for i := 0; i < len(b); i++ {
			out = append(out, b[:i])
			for _, c := range []byte{'"', '}', ']', ',', ':', '\\', 1, 0xff, ' ', 'x', '0', '['} {
				m := append([]byte(nil), b...)
				m[i] = c
				out = append(out, m)
			}
			out = append(out, append(append([]byte(nil), b[:i]...), b[i+1:]...))
		}
	}
	return out
}

// agree fails when the rewritten decoder and the frozen copy differ on b:
// the same error, or the same trajectory / header.
func agree(t *testing.T, b []byte) {
	t.Helper()
	at := Loc{File: "f.jsonl", N: 3}
	for _, shape := range append([]string{""}, Shapes...) {
		got, err := DecodeTrajectory(shape, at, b)
		want, werr := oldDecodeTrajectory(shape, at, b)
		if fmt.Sprint(err) != fmt.Sprint(werr) {
			t.Fatalf("%s: %q\nerror %v\nwant  %v", shape, b, err, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %q\ndecoded %s\nwant    %s", shape, b, got.AppendJSON(nil), want.AppendJSON(nil))
		}
	}
	for _, f := range Formats {
		got, err := DecodeSFTHeader(TagsOf(f), at, b)
		want, werr := oldDecodeSFTHeader(TagsOf(f), at, b)
		if werr != nil {
			want = SFTHeader{} // the old one returned what it had read so far
		}
		if fmt.Sprint(err) != fmt.Sprint(werr) || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s header: %q\n%+v %v\nwant %+v %v", f, b, got, err, want, werr)
		}
	}
}

func TestDecoderRewriteAgrees(t *testing.T) {
	// The seeds are records the decoders take (their variants are not).
	for _, s := range shapeSeeds() {
		_, err := DecodeTrajectory("", Loc{File: "s"}, []byte(s))
		_, herr := DecodeSFTHeader(TagsOf(ShareGPT), Loc{File: "s"}, []byte(s))
		if err != nil && herr != nil {
			t.Errorf("%s: %v; as SFT: %v", s, err, herr)
		}
	}
	for _, b := range rewriteCorpus(t) {
		agree(t, b)
	}
}

func FuzzDecoderRewriteAgrees(f *testing.F) {
	for _, s := range append(trajectorySeeds(), shapeSeeds()...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { agree(t, b) })
}
