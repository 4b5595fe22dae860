package paper

import (
	"bytes"
	"encoding/xml"
	"image/png"
	"io"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/legobuild/lego/rules/swe/tts"
)

// The fixtures (testdata/gen.py): three 8-rollout evaluations of 30
// instances, and a result "reported" by hand: K = 16, no curve, no runs.
func rows(t *testing.T, spec ...string) []Row {
	t.Helper()
	var out []Row
	for _, s := range spec {
		label, dir, _ := strings.Cut(s, "=")
		e, err := tts.Read(filepath.Join("testdata", dir))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Row{Label: label, Eval: e})
	}
	return out
}

var ablationRows = []string{"SFT=eval_base", "+ error masking=eval_masked", "+ curriculum=eval_curriculum"}

func TestTable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rows    []string
		columns []string
		md, csv string
		err     string
	}{{
		name:    "default columns, rows in the order given",
		rows:    ablationRows,
		columns: DefaultColumns,
		md: `| Setting | Pass@1 (%) | TTS@8 (%) | Best@8 (%) |
| --- | ---: | ---: | ---: |
| SFT | 43.3 | 60.0 | 93.3 |
| + error masking | 48.3 | 86.7 | 93.3 |
| + curriculum | 50.0 | 90.0 | 96.7 |
`,
		csv: `row,pass@1,tts@8,best@8
SFT,0.4333,0.6,0.9333
+ error masking,0.4833,0.8667,0.9333
+ curriculum,0.5,0.9,0.9667
`,
	}, {
		name:    "tts@N and best@N read the curve at N; k and instances",
		rows:    []string{"curriculum=eval_curriculum", "base=eval_base"},
		columns: []string{"tts@4", "best@2", "tts@8", "tts@k", "k", "instances"},
		md: `| Setting | TTS@4 (%) | Best@2 (%) | TTS@8 (%) | TTS@8 (%) | K | Instances |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
| curriculum | 81.0 | 69.0 | 90.0 | 90.0 | 8 | 30 |
| base | 59.3 | 61.0 | 60.0 | 60.0 | 8 | 30 |
`,
		csv: `row,tts@4,best@2,tts@8,tts@8,k,instances
curriculum,0.81,0.6905,0.9,0.9,8,30
base,0.5933,0.6095,0.6,0.6,8,30
`,
	}, {
		name:    "rows of different K: the header says K; a result without a curve gives tts@K",
		rows:    []string{"Qwen3-8B (reported) | paper=reported", "ours, \"8B\"=eval_base"},
		columns: []string{"pass@1", "tts@k", "k"},
		md: `| Setting | Pass@1 (%) | TTS@K (%) | K |
| --- | ---: | ---: | ---: |
| Qwen3-8B (reported) \| paper | 42.2 | 49.6 | 16 |
| ours, "8B" | 43.3 | 60.0 | 8 |
`,
		csv: `row,pass@1,tts@k,k
Qwen3-8B (reported) | paper,0.422,0.496,16
"ours, ""8B""",0.4333,0.6,8
`,
	}, {
		name:    "tts@16 of the reported result, which has no curve",
		rows:    []string{"reported=reported"},
		columns: []string{"tts@16"},
		md:      "| Setting | TTS@16 (%) |\n| --- | ---: |\n| reported | 49.6 |\n",
		csv:     "row,tts@16\nreported,0.496\n",
	}, {
		name:    "N past K",
		rows:    ablationRows,
		columns: []string{"tts@16"},
		err:     `row "SFT": column tts@16: testdata/eval_base/eval.json: field curve: no point for k = 16: K is 8`,
	}, {
		name:    "a curve column of a result without a curve",
		rows:    []string{"reported=reported"},
		columns: []string{"best@4"},
		err:     `row "reported": column best@4: testdata/reported/eval.json: field curve: missing (needed for k = 4)`,
	}, {
		name:    "unknown column",
		rows:    ablationRows,
		columns: []string{"pass@1", "pass@8"},
		err:     `"pass@8" is not a column; allowed: pass@1, tts@k, best@k, k, instances, tts@N, best@N`,
	}, {
		name:    "tts@0",
		rows:    ablationRows,
		columns: []string{"tts@0"},
		err:     `"tts@0" is not a column`,
	}, {
		name:    "a column twice",
		rows:    ablationRows,
		columns: []string{"k", "k"},
		err:     `column "k" is named twice`,
	}, {
		name:    "no columns",
		rows:    ablationRows,
		columns: nil,
		err:     "no columns; allowed",
	}, {
		name:    "no rows",
		columns: DefaultColumns,
		err:     "no rows",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			md, csv, err := Table(rows(t, tc.rows...), tc.columns)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(md) != tc.md {
				t.Errorf("markdown:\n%s\nwant:\n%s", md, tc.md)
			}
			if string(csv) != tc.csv {
				t.Errorf("csv:\n%s\nwant:\n%s", csv, tc.csv)
			}
		})
	}
}

func TestTurnBins(t *testing.T) {
	run := func(turns int, resolved bool) tts.Run { return tts.Run{Turns: turns, Resolved: resolved} }
	for _, tc := range []struct {
		name string
		runs []tts.Run
		want []Bin
	}{
		{"one run", []tts.Run{run(7, true)}, []Bin{{Lo: 7, Hi: 7, Runs: 1, Resolved: 1, MeanTurns: 7}}},
		{"equal width, two bins", []tts.Run{run(10, true), run(12, true), run(20, false), run(21, true)},
			[]Bin{{Lo: 10, Hi: 15, Runs: 2, Resolved: 2, MeanTurns: 11}, {Lo: 16, Hi: 21, Runs: 2, Resolved: 1, MeanTurns: 20.5}}},
		{"a lone first run joins the next bin", []tts.Run{
			run(0, true), run(40, true), run(41, false), run(45, true), run(50, false), run(60, false), run(70, false), run(80, true), run(90, false)},
			[]Bin{{Lo: 0, Hi: 61, Runs: 6, Resolved: 3, MeanTurns: 236.0 / 6}, {Lo: 62, Hi: 90, Runs: 3, Resolved: 1, MeanTurns: 80}}},
		{"a lone last run joins the bin before", []tts.Run{
			run(0, true), run(25, true), run(26, false), run(50, true), run(51, false), run(52, false), run(53, true), run(99, false), run(60, true)},
			[]Bin{{Lo: 0, Hi: 33, Runs: 3, Resolved: 2, MeanTurns: 17}, {Lo: 34, Hi: 99, Runs: 6, Resolved: 3, MeanTurns: 60.833333333333336}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := TurnBins(tc.runs); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("bins %+v, want %+v", got, tc.want)
			}
		})
	}
	// The fixtures: every bin holds two runs or more, all runs are
	// counted, and bins do not overlap.
	for _, r := range rows(t, ablationRows...) {
		runs := allRuns(r.Eval)
		bins := TurnBins(runs)
		n := 0
		for i, b := range bins {
			n += b.Runs
			if b.Runs < 2 || b.Lo > b.Hi || i > 0 && b.Lo <= bins[i-1].Hi || b.MeanTurns < float64(b.Lo) || b.MeanTurns > float64(b.Hi) {
				t.Errorf("%s: bin %d %+v", r.Label, i, b)
			}
		}
		if n != len(runs) || len(bins) < 5 {
			t.Errorf("%s: %d bins of %d runs, want all %d runs in 5 or more", r.Label, len(bins), n, len(runs))
		}
	}
}

func TestCorrelation(t *testing.T) {
	runs := []tts.Run{{Turns: 10, Resolved: true}, {Turns: 20, Resolved: true}, {Turns: 30}, {Turns: 40}}
	if r, ok := Correlation(runs); !ok || math.Abs(r+2/math.Sqrt(5)) > 1e-12 {
		t.Errorf("r = %v, %v; want -0.894", r, ok)
	}
	if _, ok := Correlation([]tts.Run{{Turns: 1, Resolved: true}, {Turns: 9, Resolved: true}}); ok {
		t.Error("r of runs that all resolved is defined")
	}
	// The fixtures' long runs fail more often.
	for _, r := range rows(t, ablationRows...) {
		if c, ok := Correlation(allRuns(r.Eval)); !ok || c > -0.3 {
			t.Errorf("%s: r = %v", r.Label, c)
		}
	}
}

func TestFigure(t *testing.T) {
	ablation := rows(t, ablationRows...)
	for _, kind := range Kinds {
		t.Run(kind, func(t *testing.T) {
			svg, pngB, err := Figure(kind, ablation, "")
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(pngB))
			if err != nil {
				t.Fatal(err)
			}
			if b := img.Bounds(); b.Dx() != 1050 || b.Dy() != 600 {
				t.Errorf("PNG is %v, want 1050x600", b)
			}
			d := xml.NewDecoder(bytes.NewReader(svg))
			texts := ""
			for {
				tok, err := d.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("SVG: %v", err)
				}
				if c, ok := tok.(xml.CharData); ok {
					texts += string(c) + "\n"
				}
			}
			for _, want := range []string{"SFT", "+ error masking", "+ curriculum", "resolved (%)"} {
				if !strings.Contains(texts, want) {
					t.Errorf("SVG has no text %q", want)
				}
			}
			// Deterministic bytes; other data, other bytes.
			svg2, png2, err := Figure(kind, rows(t, ablationRows...), "")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(svg, svg2) || !bytes.Equal(pngB, png2) {
				t.Error("two renders of the same rows differ")
			}
			other := rows(t, "SFT=eval_masked", "+ error masking=eval_base", "+ curriculum=eval_curriculum")
			svg3, png3, err := Figure(kind, other, "")
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(svg, svg3) || bytes.Equal(pngB, png3) {
				t.Error("other data, same bytes")
			}
			svg4, _, err := Figure(kind, ablation, "My <title> & more")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(svg4, []byte("My &lt;title&gt; &amp; more")) {
				t.Error("the title is not in the SVG, escaped")
			}
		})
	}
	t.Run("texts", func(t *testing.T) {
		svg, _, _ := Figure(TurnsVsResolve, ablation, "")
		if !bytes.Contains(svg, []byte("r = \u2212")) || !bytes.Contains(svg, []byte(", 240 runs<")) {
			t.Error("the turns legend does not give r")
		}
		svg, _, _ = Figure(TTSCurve, ablation, "")
		if !bytes.Contains(svg, []byte("dashed: Best@k (oracle)")) {
			t.Error("the TTS legend does not explain the dashes")
		}
		svg, _, _ = Figure(Ablation, ablation, "")
		for _, want := range []string{"TTS@8 (verifier picks 1 of 8)", ">43.3<", ">90.0<"} {
			if !bytes.Contains(svg, []byte(want)) {
				t.Errorf("ablation SVG lacks %q", want)
			}
		}
	})
	for _, tc := range []struct {
		kind string
		rows []string
		err  string
	}{
		{"bars", ablationRows, `"bars" is not a figure kind; allowed: tts_curve, turns_vs_resolve, ablation`},
		{TTSCurve, []string{"ours=eval_base", "paper=reported"}, `row "paper": testdata/reported/eval.json: field curve: missing`},
		{TurnsVsResolve, []string{"paper=reported"}, `row "paper": testdata/reported/eval.json: field per_instance: missing`},
		{Ablation, nil, "no rows"},
		{Ablation, []string{"=eval_base"}, `row label "": want a non-empty single line`},
	} {
		if _, _, err := Figure(tc.kind, rows(t, tc.rows...), ""); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s %v: error %v, want %q", tc.kind, tc.rows, err, tc.err)
		}
	}
	// A result without runs or a curve still makes an ablation bar.
	if _, _, err := Figure(Ablation, rows(t, "ours=eval_base", "paper=reported"), ""); err != nil {
		t.Error(err)
	}
}
