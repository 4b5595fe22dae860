package tiny

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"

	"github.com/legobuild/lego/rules/swe/format"
)

//go:embed train.py
var script []byte

// Python is the interpreter the trainer runs with: Debian's, where
// python3-torch installs PyTorch.
const Python = "/usr/bin/python3"

// MaxCtx bounds the window of a torch_tiny model, whatever max_len says:
// attention is quadratic and this runs on CPU.
const MaxCtx = 256

var baseRE = regexp.MustCompile(`^tiny-(\d+)x(\d+)$`)

// ParseBase reads a torch_tiny base model, "tiny-<dim>x<layers>" (e.g.
// tiny-64x2), with a window of min(maxLen, MaxCtx) bytes.
func ParseBase(spec string, maxLen int) (Config, error) {
	m := baseRE.FindStringSubmatch(spec)
	if m == nil {
		return Config{}, fmt.Errorf("%q is not a torch_tiny model: want tiny-<dim>x<layers>, e.g. tiny-64x2", spec)
	}
	dim, _ := strconv.Atoi(m[1])
	layers, _ := strconv.Atoi(m[2])
	c := Config{Vocab: 256, Dim: dim, Layers: layers, Heads: max(1, dim/16), Ctx: min(maxLen, MaxCtx)}
	return c, c.Check()
}

// Job is one training run.
type Job struct {
	Model  Config
	Mode   string // sft, generative or regressive
	Epochs int
	Batch  int
	LR     float64
	Seed   int64
	Init   string // a checkpoint directory to start from, or ""
}

// Train runs train.py on the windows and writes the checkpoint into out.
// Its output (a line per epoch) goes to log.
func Train(ctx context.Context, job Job, d *Data, out string, log *os.File) error {
	if d.Windows() == 0 {
		return fmt.Errorf("no training data: every example is masked out or empty")
	}
	tmp, err := os.MkdirTemp("", "lego-tiny-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	data := filepath.Join(tmp, "windows.bin")
	if err := d.Write(data); err != nil {
		return err
	}
	spec := map[string]any{
		"model": map[string]int{"vocab": job.Model.Vocab, "dim": job.Model.Dim, "layers": job.Model.Layers, "heads": job.Model.Heads, "ctx": job.Model.Ctx},
		"mode":  job.Mode, "epochs": job.Epochs, "batch": job.Batch, "lr": job.LR, "seed": job.Seed, "init": job.Init,
		"data": data, "windows": d.Windows(), "out": out,
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	jobPath, scriptPath := filepath.Join(tmp, "job.json"), filepath.Join(tmp, "train.py")
	if err := os.WriteFile(jobPath, b, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(scriptPath, script, 0o644); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, Python, scriptPath, jobPath)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s train.py: %w (is python3-torch installed?)", Python, err)
	}
	return nil
}

// ReadSFT loads the dataset called name (or the only one) that a
// dataset_info.json in dir registers: its file, or every .jsonl file of
// its folder (a curriculum stage), in name order.
func ReadSFT(dir, name string, each func(file string, line int, turns []Turn) error) error {
	p := filepath.Join(dir, "dataset_info.json")
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	var infos map[string]format.DatasetInfo
	if err := json.Unmarshal(b, &infos); err != nil {
		return fmt.Errorf("%s: %v", p, err)
	}
	if name == "" && len(infos) == 1 {
		for n := range infos {
			name = n
		}
	}
	info, ok := infos[name]
	if !ok {
		var names []string
		for n := range infos {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Errorf("%s: no dataset %q (it has %v)", p, name, names)
	}
	tags := info.Tags
	tags.Messages = info.Columns["messages"]
	path := filepath.Join(dir, info.FileName)
	files := []string{path}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		files, _ = filepath.Glob(filepath.Join(path, "*.jsonl"))
		sort.Strings(files)
	}
	for _, f := range files {
		if err := eachLine(f, func(n int, line []byte) error {
			turns, err := TurnsOfSFT(line, tags)
			if err != nil {
				return &format.LineError{File: f, Line: n, Field: tags.Messages, Msg: err.Error()}
			}
			return each(f, n, turns)
		}); err != nil {
			return err
		}
	}
	return nil
}

// ReadTrajectories loads trajectories (a JSONL file or a rollout's output
// directory).
func ReadTrajectories(in string, each func(t *format.Trajectory) error) error {
	f := format.DataPath(in, "trajectories.jsonl")
	return eachLine(f, func(n int, line []byte) error {
		var t format.Trajectory
		if err := json.Unmarshal(line, &t); err != nil {
			return &format.LineError{File: f, Line: n, Msg: err.Error()}
		}
		return each(&t)
	})
}

func eachLine(path string, fn func(n int, line []byte) error) error {
	r, err := format.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		if err := fn(n, sc.Bytes()); err != nil {
			return err
		}
	}
	return sc.Err()
}
