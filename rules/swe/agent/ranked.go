package agent

import (
	"context"
	"fmt"
	"math"
	"math/rand"

	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/llm"
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

// FormatMessages converts chat messages into the data plane's.
func FormatMessages(msgs []llm.Message) []format.Message {
	out := make([]format.Message, len(msgs))
	for i, m := range msgs {
		out[i] = toFormat(m, nil)
	}
	return out
}
