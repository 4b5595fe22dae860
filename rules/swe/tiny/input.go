package tiny

import (
	"fmt"

	"github.com/legobuild/lego/rules/swe/format"
)

// Input is what a training run reads: an SFT dataset (mode sft) or a
// verifier's trajectories (mode generative or regressive).
type Input struct {
	Mode         string
	Dataset      string // sft: a directory with dataset_info.json
	DatasetName  string // sft: the dataset to train on ("" = the only one)
	TurnMask     bool   // sft: masked turns get no loss
	Trajectories []string
}

// Stats is what tiny-train writes beside the checkpoint (train.json).
type Stats struct {
	Mode     string `json:"mode"`
	Examples int    `json:"examples"`
	Windows  int    `json:"windows"`
	Trained  int    `json:"trained_bytes"` // targets that carry loss
	Resolved int    `json:"resolved,omitempty"`
}

// ReadInput renders in's examples into windows of ctx bytes. A verifier
// needs both outcomes among its trajectories.
func ReadInput(in Input, ctx int) (*Data, *Stats, error) {
	d := &Data{Ctx: ctx}
	st := &Stats{Mode: in.Mode}
	var err error
	switch in.Mode {
	case "sft":
		err = ReadSFT(in.Dataset, in.DatasetName, func(_ string, _ int, turns []Turn) error {
			if !in.TurnMask {
				for i := range turns {
					turns[i].Train = turns[i].Role == "assistant"
				}
			}
			st.Examples++
			d.AddLM(Render(turns))
			return nil
		})
	case "generative", "regressive":
		for _, path := range in.Trajectories {
			err = ReadTrajectories(path, func(t *format.Trajectory) error {
				text, _ := Render(TrimFinal(TurnsOfMessages(t.Messages)))
				d.AddJudged(text, t.Resolved, in.Mode == "generative")
				st.Examples++
				if t.Resolved {
					st.Resolved++
				}
				return nil
			})
			if err != nil {
				break
			}
		}
		if err == nil && (st.Resolved == 0 || st.Resolved == st.Examples) {
			err = fmt.Errorf("a verifier needs resolved and unresolved trajectories; these %d have %d resolved", st.Examples, st.Resolved)
		}
	default:
		err = fmt.Errorf("--mode %q: want sft, generative or regressive", in.Mode)
	}
	if err != nil {
		return nil, nil, err
	}
	st.Windows, st.Trained = d.Windows(), d.Trained()
	return d, st, nil
}
