package verify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/legobuild/lego/rules/swe/format"
	"github.com/legobuild/lego/rules/swe/llm"
	"github.com/legobuild/lego/rules/swe/mask"
	"github.com/legobuild/lego/rules/swe/tiny"
)

// Judge scores a trajectory: the verifier's P(resolved) and its logits.
type Judge func(*format.Trajectory) (tiny.Verdict, error)

// NewJudge returns the judge of a torch_tiny verifier checkpoint (dir),
// or, with endpoint (a model_endpoint's settings file), of a served one:
// its next-token log-probabilities after the judgement marker.
func NewJudge(ctx context.Context, dir, endpoint string) (Judge, error) {
	if endpoint == "" {
		m, err := tiny.Load(dir)
		if err != nil {
			return nil, err
		}
		return func(t *format.Trajectory) (tiny.Verdict, error) {
			text, _ := tiny.Render(tiny.TrimFinal(tiny.TurnsOfMessages(t.Messages)))
			return m.Judge(text), nil
		}, nil
	}
	c, err := llm.Open(endpoint)
	if err != nil {
		return nil, err
	}
	return func(t *format.Trajectory) (tiny.Verdict, error) {
		top, err := c.NextTokens(ctx, []llm.Message{{Role: "system", Content: SystemPrompt},
			{Role: "user", Content: Prompt(t)}, {Role: "assistant", Content: Marker}}, 20)
		if err != nil {
			return tiny.Verdict{}, err
		}
		score, yes, no, err := Score(top)
		return tiny.Verdict{Score: score, LogitYes: yes, LogitNo: no}, err
	}, nil
}

// WriteData writes a LLaMA-Factory verifier's training data to the
// directory out: per trajectory of trajs (rollout outputs or trajectory
// files), the released prompt and the judgement, as sharegpt, registered
// as name in dataset_info.json. Both outcomes must be present.
func WriteData(trajs []string, out, name string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	w, err := format.Create(filepath.Join(out, mask.DataFile))
	if err != nil {
		return err
	}
	n, resolved := 0, 0
	type turn struct {
		From  string `json:"from"`
		Value string `json:"value"`
	}
	for _, in := range trajs {
		err = tiny.ReadTrajectories(in, func(t *format.Trajectory) error {
			n++
			if t.Resolved {
				resolved++
			}
			return w.WriteJSONLine(map[string]any{"system": SystemPrompt, "instance_id": t.InstanceID,
				"conversations": []turn{{"human", Prompt(t)}, {"gpt", Label(t.Resolved)}}})
		})
		if err != nil {
			w.Abort()
			return err
		}
	}
	if err := w.Commit(); err != nil {
		return err
	}
	if resolved == 0 || resolved == n {
		return fmt.Errorf("a verifier needs resolved and unresolved trajectories; these %d have %d resolved", n, resolved)
	}
	return format.WriteJSON(filepath.Join(out, mask.InfoFile), map[string]format.DatasetInfo{name: format.InfoFor(mask.DataFile, format.ShareGPT)})
}
