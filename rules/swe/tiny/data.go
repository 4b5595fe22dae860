package tiny

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/mask"
)

// Turn is one message as the model reads it. Train marks the assistant
// turns that carry loss.
type Turn struct {
	Role  string // user, assistant or observation
	Text  string
	Train bool
}

// The chat template: a header line per turn. Observations and prompts are
// clipped (their head and tail kept): a byte model with a short window
// learns from the actions and the ends of the outputs (a test summary).
const (
	Judgement     = "<|judgement|>\n"
	maxObserved   = 240
	maxPrompt     = 320
	clipMarker    = "\n[...]\n"
	AssistantHead = "<|assistant|>\n" // opens the turn a policy is asked for
)

func header(role string) string { return "<|" + role + "|>\n" }

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	head := n / 4
	return s[:head] + clipMarker + s[len(s)-(n-head-len(clipMarker)):]
}

// Render writes turns in the template; train flags the bytes that carry
// loss (a trained assistant turn's text and its closing newline).
func Render(turns []Turn) (text []byte, train []bool) {
	for _, t := range turns {
		body := t.Text
		switch t.Role {
		case "observation":
			body = clip(body, maxObserved)
		case "user":
			body = clip(body, maxPrompt)
		}
		text = append(text, header(t.Role)...)
		train = append(train, make([]bool, len(header(t.Role)))...)
		text = append(text, body...)
		text = append(text, '\n')
		for range len(body) + 1 {
			train = append(train, t.Train)
		}
	}
	return text, train
}

// TurnsOfMessages converts chat messages (a trajectory's, or a policy's
// context) into turns, as masked_dataset joins them: consecutive
// prompt-side messages into one turn, assistant messages rendered with
// their tool calls. The system prompt is left out: it is the same in
// every example.
func TurnsOfMessages(msgs []format.Message) []Turn {
	var out []Turn
	for _, m := range msgs {
		role := m.Role
		switch role {
		case "system":
			continue
		case "tool":
			role = "observation"
		}
		text := m.Content
		if role == "assistant" {
			text = mask.RenderAssistant(m).String()
		}
		if n := len(out); n > 0 && (out[n-1].Role == "assistant") == (role == "assistant") {
			sep := "\n"
			if role == "assistant" {
				sep = "\n\n"
			}
			out[n-1].Text += sep + text
			continue
		}
		out = append(out, Turn{Role: role, Text: text, Train: role == "assistant"})
	}
	return out
}

// TurnsOfSFT reads one line of an SFT dataset (format given by its
// dataset_info tags): assistant-side turns are trained unless their
// turn_mask is true.
func TurnsOfSFT(line []byte, tags format.Tags) ([]Turn, error) {
	var row map[string]json.RawMessage
	if err := json.Unmarshal(line, &row); err != nil {
		return nil, err
	}
	var msgs []map[string]any
	if err := json.Unmarshal(row[tags.Messages], &msgs); err != nil {
		return nil, fmt.Errorf("field %s: %v", tags.Messages, err)
	}
	var out []Turn
	for i, m := range msgs {
		role, _ := m[tags.RoleTag].(string)
		text, ok := m[tags.ContentTag].(string)
		if !ok {
			return nil, fmt.Errorf("field %s[%d].%s: not a string", tags.Messages, i, tags.ContentTag)
		}
		switch role {
		case tags.SystemTag:
			continue
		case tags.UserTag:
			out = append(out, Turn{Role: "user", Text: text})
		case tags.ObserveTag:
			out = append(out, Turn{Role: "observation", Text: text})
		case tags.AssistTag, tags.FunctionTag:
			masked, _ := m["turn_mask"].(bool)
			out = append(out, Turn{Role: "assistant", Text: text, Train: !masked})
		default:
			return nil, fmt.Errorf("field %s[%d].%s: unknown role %q", tags.Messages, i, tags.RoleTag, role)
		}
	}
	return out, nil
}

// Data is a training set of windows of Ctx+1 bytes, written for train.py:
// the byte ids, a loss flag per target, the used length and a label per
// window.
type Data struct {
	Ctx     int
	ids     []byte
	flags   []byte
	lengths []int32
	labels  []float32
}

// Windows is the number of windows.
func (d *Data) Windows() int { return len(d.lengths) }

// Trained counts the targets that carry loss.
func (d *Data) Trained() int { return bytes.Count(d.flags, []byte{1}) }

func (d *Data) add(x []byte, flags []bool, label float32) {
	w := make([]byte, d.Ctx+1)
	copy(w, x)
	f := make([]byte, d.Ctx)
	for i := 1; i < len(x); i++ {
		if flags[i] {
			f[i-1] = 1
		}
	}
	d.ids, d.flags = append(d.ids, w...), append(d.flags, f...)
	d.lengths, d.labels = append(d.lengths, int32(len(x))), append(d.labels, label)
}

// AddLM cuts a rendered example into windows (stride Ctx, so every target
// is predicted once), keeping those with a trained target.
func (d *Data) AddLM(text []byte, train []bool) {
	for start := 0; start+1 < len(text); start += d.Ctx {
		end := min(start+d.Ctx+1, len(text))
		if !anyTrue(train[start+1 : end]) {
			continue
		}
		d.add(text[start:end], train[start:end], 0)
	}
}

func anyTrue(bs []bool) bool {
	for _, b := range bs {
		if b {
			return true
		}
	}
	return false
}

// Verdicts the generative verifier is trained to write after Judgement.
const (
	Yes = "YES"
	No  = "NO"
)

// AddJudged adds one verifier example: the end of the rendered trajectory
// and the judgement marker, then (generative) YES or NO as trained
// targets, or (regressive) the label.
func (d *Data) AddJudged(text []byte, resolved, generative bool) {
	label := float32(0)
	verdict := No
	if resolved {
		label, verdict = 1, Yes
	}
	if !generative {
		d.add(judgeInput(text, d.Ctx), make([]bool, d.Ctx+1), label)
		return
	}
	x := append(judgeInput(text, d.Ctx+1-len(verdict)), verdict...)
	flags := make([]bool, len(x))
	for i := len(x) - len(verdict); i < len(x); i++ {
		flags[i] = true
	}
	d.add(x, flags, label)
}

// judgeInput is what the verifier reads: the last bytes of the trajectory
// and the marker, n bytes at most.
func judgeInput(text []byte, n int) []byte {
	x := append(append([]byte(nil), text...), Judgement...)
	return x[max(0, len(x)-n):]
}

// Write stores the windows where train.py reads them.
func (d *Data) Write(path string) error {
	var b bytes.Buffer
	b.Write(d.ids)
	b.Write(d.flags)
	binary.Write(&b, binary.LittleEndian, d.lengths)
	binary.Write(&b, binary.LittleEndian, d.labels)
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// MeanLogProb is the mean log-probability per byte of cont after context,
// in one window: the context is cut from the left to fit.
func (m *Model) MeanLogProb(context, cont []byte) float64 {
	if len(cont) > m.Ctx/2 {
		cont = cont[:m.Ctx/2]
	}
	keep := min(len(context), m.Ctx-len(cont))
	x := append(append([]byte(nil), context[len(context)-keep:]...), cont...)
	h := m.Hidden(x[:len(x)-1])
	var sum float64
	for i := keep - 1; i < len(x)-1; i++ {
		if i < 0 {
			continue
		}
		sum += LogSoftmax(m.Logits(h[i]), x[i+1])
	}
	n := len(cont)
	if keep == 0 {
		n-- // the first byte has no context to be predicted from
	}
	return sum / float64(max(n, 1))
}

// Verdict is the verifier's judgement of one trajectory.
type Verdict struct {
	Score    float64 `json:"predicted_score"`
	LogitYes float64 `json:"logit_yes"`
	LogitNo  float64 `json:"logit_no"`
}

// Judge scores a rendered trajectory (its final assistant turn dropped)
// with a verifier checkpoint. Generative: the next-byte logits after the
// marker, l_yes the larger of 'Y' and 'y', l_no of 'N' and 'n', score
// exp(l_yes)/(exp(l_yes)+exp(l_no)). Regressive: sigmoid of the head.
func (m *Model) Judge(text []byte) Verdict {
	if m.Mode == "regressive" {
		x := judgeInput(text, m.Ctx)
		h := m.Hidden(x)
		s := m.Score(h[len(h)-1])
		return Verdict{Score: 1 / (1 + math.Exp(-s)), LogitYes: s}
	}
	x := judgeInput(text, m.Ctx)
	h := m.Hidden(x)
	l := m.Logits(h[len(h)-1])
	yes := math.Max(float64(l['Y']), float64(l['y']))
	no := math.Max(float64(l['N']), float64(l['n']))
	return Verdict{Score: 1 / (1 + math.Exp(no-yes)), LogitYes: yes, LogitNo: no}
}

// TrimFinal drops the last assistant turn (the verifier does not see the
// agent's final message) and anything after it.
func TrimFinal(turns []Turn) []Turn {
	for i := len(turns) - 1; i >= 0; i-- {
		if turns[i].Role == "assistant" {
			return turns[:i]
		}
	}
	return turns
}

// Paradigms lists the verifier paradigms.
var Paradigms = []string{"generative", "regressive"}

// CheckParadigm says which paradigms exist when p is not one.
func CheckParadigm(p string) error {
	for _, x := range Paradigms {
		if p == x {
			return nil
		}
	}
	return fmt.Errorf("unknown paradigm %q (supported: %s)", p, strings.Join(Paradigms, ", "))
}
