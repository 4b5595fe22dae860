package paper

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/legobuild/lego/internal/words"
	"github.com/legobuild/lego/rules/swe/curriculum"
	"github.com/legobuild/lego/rules/swe/tts"
)

// The figure kinds.
const (
	// TTSCurve: x = k, one solid line per row of TTS@k (the verifier
	// picks one of k rollouts) and a dashed one of Best@k (the oracle).
	TTSCurve = "tts_curve"
	// TurnsVsResolve: per row, its runs binned by turns and the resolve
	// rate of each bin; the legend gives Pearson's r between turns and
	// resolved over all the row's runs.
	TurnsVsResolve = "turns_vs_resolve"
	// Ablation: grouped bars of Pass@1 and TTS@K per row.
	Ablation = "ablation"
)

// Kinds lists the figure kinds.
var Kinds = []string{TTSCurve, TurnsVsResolve, Ablation}

// CheckKind says whether kind is a figure kind.
func CheckKind(kind string) error {
	for _, k := range Kinds {
		if k == kind {
			return nil
		}
	}
	return fmt.Errorf("%q is not a figure kind; allowed: %s", kind, strings.Join(Kinds, ", "))
}

// A figure is Width x Height, the legend to the right of the plot; its
// PNG has DPI dots per inch (1050 x 600 pixels).
const (
	Width  = 7 * vg.Inch
	Height = 4 * vg.Inch
	DPI    = 150
)

// Figure draws the rows as SVG and PNG. An empty title gets the kind's
// default. The same rows always give the same bytes: neither format holds
// a time or a random id, and the drawing visits rows in order.
func Figure(kind string, rows []Row, title string) (svg, png []byte, err error) {
	if err := CheckKind(kind); err != nil {
		return nil, nil, err
	}
	if err := checkRows(rows); err != nil {
		return nil, nil, err
	}
	var p *plot.Plot
	switch kind {
	case TTSCurve:
		p, err = ttsCurve(rows)
	case TurnsVsResolve:
		p, err = turnsVsResolve(rows)
	case Ablation:
		p, err = ablation(rows)
	}
	if err != nil {
		return nil, nil, err
	}
	if title != "" {
		p.Title.Text = title
	}

	sc := vgsvg.New(Width, Height)
	layout(p, draw.New(sc))
	var sb bytes.Buffer
	if _, err := sc.WriteTo(&sb); err != nil {
		return nil, nil, err
	}
	ic := vgimg.NewWith(vgimg.UseWH(Width, Height), vgimg.UseDPI(DPI), vgimg.UseBackgroundColor(color.White))
	layout(p, draw.New(ic))
	var pb bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: ic}).WriteTo(&pb); err != nil {
		return nil, nil, err
	}
	return sb.Bytes(), pb.Bytes(), nil
}

// layout draws the title across the whole figure, the plot below it on
// the left and the plot's legend to the right of the plot's data area,
// where it hides no data.
func layout(p *plot.Plot, c draw.Canvas) {
	const margin = 8 // points
	c.SetColor(color.White)
	c.Fill(c.Rectangle.Path())
	c = draw.Crop(c, margin, -margin, margin, -margin)
	pl := *p
	if pl.Title.Text != "" {
		sty := pl.Title.TextStyle
		sty.Font.Size = vg.Points(13)
		c.FillText(sty, vg.Point{X: c.Center().X, Y: c.Max.Y + sty.FontExtents().Descent}, pl.Title.Text)
		c = draw.Crop(c, 0, 0, 0, -(sty.Rectangle(pl.Title.Text).Size().Y + vg.Points(8)))
		pl.Title.Text = ""
	}
	leg := pl.Legend
	pl.Legend = plot.NewLegend()
	leg.TextStyle.Font.Size = vg.Points(9)
	leg.Padding = vg.Points(3)
	leg.Top, leg.Left = true, true
	lw := leg.Rectangle(c).Size().X
	pc := draw.Crop(c, 0, -(lw + margin), 0, 0)
	pl.Draw(pc)
	data := pl.DataCanvas(pc)
	lc := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
		Min: vg.Point{X: c.Max.X - lw, Y: c.Min.Y},
		Max: vg.Point{X: c.Max.X, Y: data.Max.Y},
	}}
	leg.Draw(lc)
}

// wrap breaks a legend label into lines of about 28 characters at
// spaces, so that a long label does not squeeze the plot.
func wrap(label string) string { return strings.Join(words.Wrap(label, 28), "\n") }

// colorOf is row i's color: the darker default palette reads on white.
func colorOf(i int) color.Color {
	return plotutil.DarkColors[i%len(plotutil.DarkColors)]
}

var dashed = []vg.Length{vg.Points(5), vg.Points(3)}

// percentAxis shows y from lo to hi (percent) with a tick every 5, 10 or
// 20 points, rounded out to whole ticks and kept within 0..100.
func percentAxis(p *plot.Plot, lo, hi float64) {
	p.Y.Label.Text = "resolved (%)"
	step := 10.0
	switch span := hi - lo; {
	case span <= 25:
		step = 5
	case span > 60:
		step = 20
	}
	lo = math.Max(0, math.Floor((lo-step/4)/step)*step)
	hi = math.Min(100, math.Ceil((hi+step/4)/step)*step)
	p.Y.Min, p.Y.Max = lo, hi
	var ts plot.ConstantTicks
	for v := lo; v <= hi+1e-9; v += step {
		ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
		if v+step/2 < hi {
			ts = append(ts, plot.Tick{Value: v + step/2}) // minor
		}
	}
	p.Y.Tick.Marker = ts
}

// newPlot is a plot with a light grid under the data, vertical lines too
// where x is a quantity.
func newPlot(vertical bool) *plot.Plot {
	p := plot.New()
	g := plotter.NewGrid()
	g.Vertical.Color, g.Horizontal.Color = color.Gray{Y: 225}, color.Gray{Y: 225}
	if !vertical {
		g.Vertical.Color = nil
	}
	p.Add(g)
	return p
}

// niceTicks labels lo..hi every 1, 2 or 5 times a power of ten, with at
// most about ten labels.
func niceTicks(lo, hi float64) plot.ConstantTicks {
	step := 1.0
	for (hi-lo)/step > 10 {
		switch d := step / math.Pow(10, math.Floor(math.Log10(step))); {
		case d < 1.5:
			step *= 2
		case d < 3:
			step *= 2.5
		default:
			step *= 2
		}
	}
	var ts plot.ConstantTicks
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	return ts
}

func ttsCurve(rows []Row) (*plot.Plot, error) {
	p := newPlot(true)
	maxK := 0
	lo, hi := 100.0, 0.0
	for i, r := range rows {
		e := r.Eval
		if e.Curve == nil {
			return nil, fmt.Errorf("row %q: %s: field curve: missing (tts_curve plots it)", r.Label, e.Where())
		}
		maxK = max(maxK, e.K)
		tts, best := make(plotter.XYs, e.K), make(plotter.XYs, e.K)
		for j, pt := range e.Curve {
			tts[j] = plotter.XY{X: float64(pt.K), Y: 100 * pt.TTS}
			best[j] = plotter.XY{X: float64(pt.K), Y: 100 * pt.Best}
			lo = math.Min(lo, math.Min(tts[j].Y, best[j].Y))
			hi = math.Max(hi, math.Max(tts[j].Y, best[j].Y))
		}
		c := colorOf(i)
		l, s, err := plotter.NewLinePoints(tts)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = c, vg.Points(1.5)
		s.Color, s.Shape, s.Radius = c, plotutil.Shape(i), vg.Points(2.5)
		b, err := plotter.NewLine(best)
		if err != nil {
			return nil, err
		}
		b.Color, b.Width, b.Dashes = c, vg.Points(1), dashed
		p.Add(b, l, s)
		p.Legend.Add(wrap(r.Label), l, s)
	}
	gray := color.Gray{Y: 80}
	p.Legend.Add("solid: TTS@k (verifier picks 1 of k)", &plotter.Line{LineStyle: draw.LineStyle{Color: gray, Width: vg.Points(1.5)}})
	p.Legend.Add("dashed: Best@k (oracle)", &plotter.Line{LineStyle: draw.LineStyle{Color: gray, Width: vg.Points(1), Dashes: dashed}})
	p.Title.Text = "Test-time scaling with the verifier"
	p.X.Label.Text = "k (rollouts per instance)"
	p.X.Min, p.X.Max = 1, float64(maxK)
	p.X.Tick.Marker = intTicks(1, maxK)
	percentAxis(p, lo, hi)
	return p, nil
}

// intTicks labels whole numbers lo..hi, at most 16 of them.
func intTicks(lo, hi int) plot.ConstantTicks {
	step := max(1, (hi-lo+16)/16)
	var ts plot.ConstantTicks
	for k := lo; k <= hi; k += step {
		ts = append(ts, plot.Tick{Value: float64(k), Label: strconv.Itoa(k)})
	}
	return ts
}

func ablation(rows []Row) (*plot.Plot, error) {
	p := newPlot(false)
	n := len(rows)
	names := make([]string, n)
	hi := 0.0
	for i, r := range rows {
		names[i] = r.Label
		hi = math.Max(hi, 100*math.Max(r.Eval.Pass1, r.Eval.TTS))
	}
	k := sharedK(rows)
	ttsName, kName := "TTS@K", "K"
	if k > 0 {
		ttsName, kName = fmt.Sprintf("TTS@%d", k), strconv.Itoa(k)
	}
	// Bars are drawn in data units, so they share the width however wide
	// the plot is: two bars of 0.35 per row, a gap of 0.3 between rows.
	const w = 0.35
	labelSize := vg.Points(8)
	switch {
	case n > 9:
		labelSize = 0 // no room for the values
	case n > 6:
		labelSize = vg.Points(6)
	case n > 4:
		labelSize = vg.Points(7)
	}
	for j, series := range []struct {
		name  string
		value func(e *tts.Eval) float64
	}{
		{"Pass@1", func(e *tts.Eval) float64 { return e.Pass1 }},
		{ttsName + " (verifier picks 1 of " + kName + ")", func(e *tts.Eval) float64 { return e.TTS }},
	} {
		var thumb *plotter.Polygon
		xys := make(plotter.XYs, n)
		strs := make([]string, n)
		for i, r := range rows {
			v := 100 * series.value(r.Eval)
			x0 := float64(i) + w*float64(j-1)
			bar, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: 0}, {X: x0 + w, Y: 0}, {X: x0 + w, Y: v}, {X: x0, Y: v}})
			if err != nil {
				return nil, err
			}
			bar.Color = colorOf(2 + j)
			bar.LineStyle.Width = 0
			p.Add(bar)
			thumb = bar
			xys[i] = plotter.XY{X: x0 + w/2, Y: v}
			strs[i] = strconv.FormatFloat(v, 'f', 1, 64)
		}
		p.Legend.Add(series.name, thumb)
		if labelSize == 0 {
			continue
		}
		// The value above each bar.
		lab, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: strs})
		if err != nil {
			return nil, err
		}
		for i := range lab.TextStyle {
			lab.TextStyle[i].XAlign = draw.XCenter
			lab.TextStyle[i].Font.Size = labelSize
		}
		lab.Offset = vg.Point{Y: vg.Points(2)}
		p.Add(lab)
	}
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(n)-0.5
	for _, l := range names {
		if len(l) > 60/n {
			p.X.Tick.Label.Rotation = math.Pi / 6
			p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XRight, draw.YTop
			break
		}
	}
	p.Title.Text = "Ablation: Pass@1 and " + ttsName
	percentAxis(p, 0, hi)
	return p, nil
}

// Bin is a range of turn counts and the runs that fall in it.
type Bin struct {
	Lo, Hi    int     // turns, inclusive
	Runs      int     // runs in the bin
	Resolved  int     // of which resolved
	MeanTurns float64 // the runs' mean turn count, where the point is drawn
}

// Rate is the bin's resolve rate.
func (b Bin) Rate() float64 { return float64(b.Resolved) / float64(b.Runs) }

// TurnBins bins runs by turns: equal-width bins over the runs' range,
// about sqrt(runs) of them (at most 10), then each bin holding fewer than
// two runs merged with the next (the last with the one before), so every
// rate is over two runs or more. Empty ranges disappear.
func TurnBins(runs []tts.Run) []Bin {
	if len(runs) == 0 {
		return nil
	}
	lo, hi := runs[0].Turns, runs[0].Turns
	for _, r := range runs {
		lo, hi = min(lo, r.Turns), max(hi, r.Turns)
	}
	nb := max(1, min(10, int(math.Sqrt(float64(len(runs))))))
	width := (hi - lo + nb) / nb // ceil((hi-lo+1)/nb)
	raw := make([]Bin, nb)
	sums := make([]int, nb)
	for i := range raw {
		raw[i].Lo, raw[i].Hi = lo+i*width, lo+(i+1)*width-1
	}
	for _, r := range runs {
		i := (r.Turns - lo) / width
		raw[i].Runs++
		sums[i] += r.Turns
		if r.Resolved {
			raw[i].Resolved++
		}
	}
	var out []Bin
	var outSums []int
	cur, sum := Bin{Lo: raw[0].Lo}, 0
	for i, b := range raw {
		cur.Hi = b.Hi
		cur.Runs += b.Runs
		cur.Resolved += b.Resolved
		sum += sums[i]
		if cur.Runs >= 2 {
			out, outSums = append(out, cur), append(outSums, sum)
			if i+1 < len(raw) {
				cur, sum = Bin{Lo: raw[i+1].Lo}, 0
			} else {
				cur, sum = Bin{}, 0
			}
		}
	}
	if cur.Runs > 0 {
		if len(out) == 0 {
			out, outSums = append(out, cur), append(outSums, sum)
		} else {
			last := &out[len(out)-1]
			last.Hi, last.Runs, last.Resolved = cur.Hi, last.Runs+cur.Runs, last.Resolved+cur.Resolved
			outSums[len(out)-1] += sum
		}
	}
	// A bin's upper edge stops at the largest turn count in the data.
	out[len(out)-1].Hi = min(out[len(out)-1].Hi, hi)
	for i := range out {
		out[i].MeanTurns = float64(outSums[i]) / float64(out[i].Runs)
	}
	return out
}

// Correlation is Pearson's r between turns and resolved (1 or 0) over the
// runs; ok is false when it is undefined (fewer than two runs, or all
// with the same turns or the same outcome).
func Correlation(runs []tts.Run) (r float64, ok bool) {
	xs, ys := make([]float64, len(runs)), make([]float64, len(runs))
	for i, run := range runs {
		xs[i] = float64(run.Turns)
		if run.Resolved {
			ys[i] = 1
		}
	}
	if c := curriculum.Pearson(xs, ys); c != nil {
		return *c, true
	}
	return 0, false
}

// allRuns lists an evaluation's runs, instance by instance.
func allRuns(e *tts.Eval) []tts.Run {
	var out []tts.Run
	for _, in := range e.PerInstance {
		out = append(out, in.Runs...)
	}
	return out
}

func turnsVsResolve(rows []Row) (*plot.Plot, error) {
	p := newPlot(true)
	lo, hi := 100.0, 0.0
	minT, maxT := math.Inf(1), math.Inf(-1)
	for i, r := range rows {
		e := r.Eval
		if e.PerInstance == nil {
			return nil, fmt.Errorf("row %q: %s: field per_instance: missing (turns_vs_resolve plots its runs)", r.Label, e.Where())
		}
		runs := allRuns(e)
		if len(runs) == 0 {
			return nil, fmt.Errorf("row %q: %s: field per_instance: no runs", r.Label, e.Where())
		}
		bins := TurnBins(runs)
		xys := make(plotter.XYs, len(bins))
		for j, b := range bins {
			xys[j] = plotter.XY{X: b.MeanTurns, Y: 100 * b.Rate()}
			lo, hi = math.Min(lo, xys[j].Y), math.Max(hi, xys[j].Y)
			minT, maxT = math.Min(minT, float64(b.Lo)), math.Max(maxT, float64(b.Hi))
		}
		c := colorOf(i)
		l, s, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = c, vg.Points(1.5)
		s.Color, s.Shape, s.Radius = c, plotutil.Shape(i), vg.Points(2.5)
		p.Add(l, s)
		rs := "r undefined"
		if v, ok := Correlation(runs); ok {
			rs = "r = " + strings.Replace(strconv.FormatFloat(v, 'f', 2, 64), "-", "\u2212", 1)
		}
		p.Legend.Add(fmt.Sprintf("%s\n%s, %d runs", wrap(r.Label), rs, len(runs)), l, s)
	}
	p.Title.Text = "Resolve rate vs. trajectory length"
	p.X.Label.Text = "turns (runs binned; a point is at its bin's mean)"
	pad := math.Max(1, (maxT-minT)*0.03)
	p.X.Min, p.X.Max = minT-pad, maxT+pad
	p.X.Tick.Marker = niceTicks(p.X.Min, p.X.Max)
	percentAxis(p, lo, hi)
	return p, nil
}
