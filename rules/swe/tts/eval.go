package tts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// FileName is the file of an evaluation directory holding its Eval.
const FileName = "eval.json"

// Eval is the content of eval.json. Fractions are in [0, 1].
type Eval struct {
	Name      string `json:"name"`      // the verifier_eval target's name
	K         int    `json:"k"`         // rollouts per instance
	Instances int    `json:"instances"` // instances evaluated
	// Pass1 is the mean over instances of (resolved runs / K).
	Pass1 float64 `json:"pass@1"`
	// TTS is the mean over instances of the resolution of the run with
	// the highest predicted_score: the verifier picks one of K.
	TTS float64 `json:"tts@k"`
	// Best is the mean over instances of "any run resolved": the oracle.
	Best float64 `json:"best@k"`
	// Curve holds, for k = 1..K in order, the expected TTS@k and Best@k
	// over random k-subsets of the K runs.
	Curve       []Point    `json:"curve"`
	PerInstance []Instance `json:"per_instance"`

	// File is where Read found the evaluation (for errors); not stored.
	File string `json:"-"`
}

// Point is one k of an Eval's curve.
type Point struct {
	K     int     `json:"k"`
	Pass1 float64 `json:"pass@1"`
	TTS   float64 `json:"tts"`
	Best  float64 `json:"best"`
}

// Instance is one task instance's result over its runs: K of them, or
// fewer where a rollout produced nothing.
type Instance struct {
	ID    string  `json:"instance_id"`
	Pass1 float64 `json:"pass@1"`
	TTS   float64 `json:"tts"`
	Best  float64 `json:"best"`
	Runs  []Run   `json:"runs"`
}

// Run is one rollout of an instance.
type Run struct {
	Run            int     `json:"run"`
	Resolved       bool    `json:"resolved"`
	PredictedScore float64 `json:"predicted_score"`
	Turns          int     `json:"turns"`
}

// required are the fields every eval.json has; the others (name,
// instances, curve, per_instance) may be missing from a hand-written one,
// e.g. a result reported by another paper, and only the columns and
// figures that read them fail.
var required = []string{"k", "pass@1", "tts@k", "best@k"}

// Read reads an evaluation: path is a directory holding eval.json, or the
// JSON file itself. Errors name the file and the field.
func Read(path string) (*Eval, error) {
	file := path
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		file = filepath.Join(path, FileName)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	e, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	e.File = file
	return e, nil
}

// Parse decodes and checks the bytes of an eval.json.
func Parse(b []byte) (*Eval, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, jsonError(b, err)
	}
	for _, f := range required {
		if _, ok := fields[f]; !ok {
			return nil, fmt.Errorf("field %s: missing", f)
		}
	}
	e := new(Eval)
	if err := json.Unmarshal(b, e); err != nil {
		return nil, jsonError(b, err)
	}
	if err := e.Check(); err != nil {
		return nil, err
	}
	return e, nil
}

// jsonError says where a decoding error is: the field and the line.
func jsonError(b []byte, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "(top level)"
		}
		return fmt.Errorf("field %s: got JSON %s, want %s (line %d)", field, te.Value, te.Type, line(b, te.Offset))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("line %d: %v", line(b, se.Offset), se)
	}
	return err
}

func line(b []byte, off int64) int {
	return 1 + bytes.Count(b[:min(int(off), len(b))], []byte("\n"))
}

// Check verifies the ranges and shapes the readers rely on; the error
// names the field, e.g. "field curve[2].tts: 1.3 is not in [0, 1]".
func (e *Eval) Check() error {
	if e.K < 1 {
		return fmt.Errorf("field k: %d rollouts per instance, want at least 1", e.K)
	}
	if e.Instances < 0 {
		return fmt.Errorf("field instances: %d is negative", e.Instances)
	}
	if err := fractions("", map[string]float64{"pass@1": e.Pass1, "tts@k": e.TTS, "best@k": e.Best}); err != nil {
		return err
	}
	if e.Curve != nil && len(e.Curve) != e.K {
		return fmt.Errorf("field curve: %d points, want one per k = 1..%d", len(e.Curve), e.K)
	}
	for i, p := range e.Curve {
		at := fmt.Sprintf("curve[%d].", i)
		if p.K != i+1 {
			return fmt.Errorf("field %sk: is %d, want %d (points in order of k)", at, p.K, i+1)
		}
		if err := fractions(at, map[string]float64{"pass@1": p.Pass1, "tts": p.TTS, "best": p.Best}); err != nil {
			return err
		}
	}
	if e.PerInstance != nil && len(e.PerInstance) != e.Instances {
		return fmt.Errorf("field per_instance: %d entries, but instances is %d", len(e.PerInstance), e.Instances)
	}
	for i, in := range e.PerInstance {
		at := fmt.Sprintf("per_instance[%d].", i)
		if in.ID == "" {
			return fmt.Errorf("field %sinstance_id: missing", at)
		}
		if err := fractions(at, map[string]float64{"pass@1": in.Pass1, "tts": in.TTS, "best": in.Best}); err != nil {
			return err
		}
		if len(in.Runs) > e.K { // fewer: a rollout that produced nothing
			return fmt.Errorf("field %sruns: %d runs of instance %s, more than k = %d", at, len(in.Runs), in.ID, e.K)
		}
		for j, r := range in.Runs {
			if r.Turns < 0 {
				return fmt.Errorf("field %sruns[%d].turns: %d is negative", at, j, r.Turns)
			}
		}
	}
	return nil
}

func fractions(at string, vs map[string]float64) error {
	for _, name := range []string{"pass@1", "tts@k", "best@k", "tts", "best"} {
		v, ok := vs[name]
		if ok && !(v >= 0 && v <= 1) {
			return fmt.Errorf("field %s%s: %g is not a fraction in [0, 1]", at, name, v)
		}
	}
	return nil
}

// Write checks e and writes it to dir/eval.json, indented; the same Eval
// always gives the same bytes.
func (e *Eval) Write(dir string) error {
	if err := e.Check(); err != nil {
		return fmt.Errorf("%s: %w", FileName, err)
	}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, FileName), append(b, '\n'), 0o644)
}

// At returns the curve point of k, or an error naming the file and field
// when the curve is missing or shorter.
func (e *Eval) At(k int) (Point, error) {
	switch {
	case e.Curve == nil:
		return Point{}, fmt.Errorf("%s: field curve: missing (needed for k = %d)", e.Where(), k)
	case k < 1 || k > len(e.Curve):
		return Point{}, fmt.Errorf("%s: field curve: no point for k = %d: K is %d", e.Where(), k, e.K)
	}
	return e.Curve[k-1], nil
}

// Where names the evaluation in errors: the file it was read from, or
// eval.json.
func (e *Eval) Where() string {
	if e.File != "" {
		return e.File
	}
	return FileName
}
