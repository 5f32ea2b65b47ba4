package report

import (
	"fmt"
	"image/color"
	"math"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Bar is one bar of a throughput chart.
type Bar struct {
	Label string
	Value float64
}

// palette: Signal first, references after.
var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	color.RGBA{R: 0xe3, G: 0x77, B: 0xc2, A: 0xff},
	color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
}

// BarChart writes a PNG of labelled bars (one colour each) to path.
func BarChart(path, title, yLabel string, bars []Bar) error {
	if len(bars) == 0 {
		return fmt.Errorf("bar chart %s: no bars", path)
	}
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = yLabel
	p.Y.Min = 0
	names := make([]string, len(bars))
	top := 0.0
	for i, b := range bars {
		if i == 0 {
			// The grid goes under the bars: add it first.
			g := plotter.NewGrid()
			g.Vertical.Width = 0
			p.Add(g)
		}
		names[i] = fmt.Sprintf("%s\n%s", b.Label, Thousands(int64(math.Round(b.Value))))
		vals := make(plotter.Values, len(bars))
		vals[i] = b.Value
		if !(b.Value >= 0) {
			vals[i] = 0
		}
		top = math.Max(top, vals[i])
		bc, err := plotter.NewBarChart(vals, vg.Points(60))
		if err != nil {
			return err
		}
		bc.Color = palette[i%len(palette)]
		bc.LineStyle.Width = 0
		p.Add(bc)
	}
	p.Y.Max = top * 1.1
	p.NominalX(names...)
	return p.Save(vg.Length(110*len(bars)+200), 320, path)
}

// Series is one latency sample, in milliseconds.
type Series struct {
	Name string
	MS   []float64
}

// CDFChart writes the cumulative distributions of the series to path, on a
// logarithmic latency axis (values below 0.01 ms are drawn at 0.01 ms).
func CDFChart(path, title string, series []Series) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "latency (ms, log scale)"
	p.Y.Label.Text = "fraction of deliveries at or below"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = logTicks{}
	p.Y.Min, p.Y.Max = 0, 1
	lo, hi := math.Inf(1), math.Inf(-1)
	drawn := 0
	for i, s := range series {
		if len(s.MS) == 0 {
			continue
		}
		sorted := append([]float64(nil), s.MS...)
		sort.Float64s(sorted)
		xs, ys := quantiles(sorted, 600)
		pts := make(plotter.XYs, len(xs))
		for j := range xs {
			pts[j].X, pts[j].Y = math.Max(xs[j], 0.01), ys[j]
			lo, hi = math.Min(lo, pts[j].X), math.Max(hi, pts[j].X)
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(1.6)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (p99 %s)", s.Name, FormatValue(Percentile(sorted, 99), "ms")), l)
		drawn++
	}
	if drawn == 0 {
		return fmt.Errorf("cdf chart %s: no samples", path)
	}
	if hi <= lo {
		hi = lo * 10
	}
	p.X.Min, p.X.Max = lo, hi
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.XOffs = -4
	p.Legend.YOffs = 4
	p.Add(plotter.NewGrid())
	return p.Save(720, 420, path)
}

// logTicks labels 1, 2 and 5 times each power of ten on a log axis, with
// unlabelled marks at the other integers: readable over a short range.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if lo <= 0 || hi <= lo {
		return nil
	}
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		base := math.Pow10(int(e))
		for i := 1; i < 10; i++ {
			v := float64(i) * base
			if v < lo*0.999 || v > hi*1.001 {
				continue
			}
			t := plot.Tick{Value: v}
			if i == 1 || i == 2 || i == 5 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}
