package agent

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"strings"

	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/llm"
	"github.com/legobuild/lego/rules/swe/mask"
	"github.com/legobuild/lego/rules/swe/tiny"
)

// Ranker scores candidate assistant messages after a conversation: higher
// is likelier. A trained checkpoint is one (package tiny).
type Ranker func(context []llm.Message, candidates []llm.Message) ([]float64, error)

// Ranked is the offline policy of a checkpoint that cannot yet write its
// own actions (a torch_tiny model): at each turn the task's plan proposes
// candidates — its next right step, the missteps of the scripted policy,
// giving up before the fix is in — and the checkpoint chooses, sampling
// from softmax(score / temperature). What the checkpoint learned decides
// how often it wanders and whether it gives up; the tools, the loop and
// the tests afresh are the same as for a model.
type Ranked struct {
	p           *plan
	right       []step
	fixEnd      int // steps before this one leave the bug in place
	next        int
	pending     []step // the rest of a chosen misstep (its undo)
	finished    bool
	rank        Ranker
	temperature float64
	rng         *rand.Rand
}

// NewRanked plans t's candidates; seed drives the sampling.
func NewRanked(t ScriptedTask, rank Ranker, temperature float64, seed int64) (*Ranked, error) {
	p, err := planOf(t)
	if err != nil {
		return nil, err
	}
	r := &Ranked{p: p, rank: rank, temperature: temperature, rng: rand.New(rand.NewSource(seed))}
	for _, part := range [][]step{p.explore, p.repro, p.fix} {
		r.right = append(r.right, part...)
	}
	r.fixEnd = len(r.right)
	r.right = append(r.right, p.check...)
	return r, nil
}

// Next asks the checkpoint to choose the next turn.
func (r *Ranked) Next(_ context.Context, msgs []llm.Message, _ []llm.Tool) (llm.Message, error) {
	turn := len(msgs)
	if len(r.pending) > 0 {
		st := r.pending[0]
		r.pending = r.pending[1:]
		return st.message(turn)
	}
	if r.finished || r.next >= len(r.right) {
		return done.message(turn)
	}
	type option struct {
		steps []step
		right bool
	}
	options := []option{{steps: []step{r.right[r.next]}, right: true}}
	for _, m := range r.p.missteps {
		options = append(options, option{steps: m})
	}
	if r.next < r.fixEnd {
		options = append(options, option{steps: []step{r.p.giveUp}})
	}
	cands := make([]llm.Message, len(options))
	for i, o := range options {
		m, err := o.steps[0].message(turn)
		if err != nil {
			return m, err
		}
		cands[i] = m
	}
	scores, err := r.rank(msgs, cands)
	if err != nil {
		return llm.Message{}, err
	}
	if len(scores) != len(cands) {
		return llm.Message{}, fmt.Errorf("ranker gave %d scores for %d candidates", len(scores), len(cands))
	}
	k := r.sample(scores)
	o := options[k]
	switch {
	case o.right:
		r.next++
	case o.steps[0].calls[0].name == ToolFinish:
		r.finished = true
	default:
		r.pending = o.steps[1:]
	}
	return cands[k], nil
}

// sample draws an index from softmax(scores / temperature); temperature 0
// takes the best (the first on a tie).
func (r *Ranked) sample(scores []float64) int {
	best := 0
	for i, s := range scores {
		if s > scores[best] {
			best = i
		}
	}
	if r.temperature <= 0 {
		return best
	}
	w := make([]float64, len(scores))
	var sum float64
	for i, s := range scores {
		w[i] = math.Exp((s - scores[best]) / r.temperature)
		sum += w[i]
	}
	x := r.rng.Float64() * sum
	for i := range w {
		if x < w[i] {
			return i
		}
		x -= w[i]
	}
	return best
}

// TinyRanker is the ranking of a torch_tiny checkpoint: each candidate's
// mean log-probability after the conversation.
func TinyRanker(m *tiny.Model) Ranker {
	return func(msgs []llm.Message, cands []llm.Message) ([]float64, error) {
		text, _ := tiny.Render(tiny.TurnsOfMessages(FormatMessages(msgs)))
		text = append(text, tiny.AssistantHead...)
		out := make([]float64, len(cands))
		for i, c := range FormatMessages(cands) {
			out[i] = m.MeanLogProb(text, decisive(mask.RenderAssistant(c).String()))
		}
		return out, nil
	}
}

// decisive is the part of a rendered candidate that says what it does: its
// thought and the name of its first tool. The arguments that follow (paths,
// code) are long and alike across candidates, and would drown the choice
// in the mean.
func decisive(rendered string) []byte {
	const name = `{"name":"`
	if i := strings.Index(rendered, name); i >= 0 {
		if j := strings.IndexByte(rendered[i+len(name):], '"'); j >= 0 {
			return []byte(rendered[:i+len(name)+j+1])
		}
	}
	return []byte(rendered)
}

// FormatMessages converts chat messages into the data plane's.
func FormatMessages(msgs []llm.Message) []format.Message {
	out := make([]format.Message, len(msgs))
	for i, m := range msgs {
		out[i] = toFormat(m, nil)
	}
	return out
}
