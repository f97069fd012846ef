// Package report renders results as files a person reads: accuracy curves (gonum/plot PNGs) and grids of clean,
// adversarial and amplified-perturbation images with their predicted labels. Every file is written atomically.
package report

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/sqnet/sqnet/internal/atomicfile"
)

// Series is one line of a plot.
type Series struct {
	Name string
	X, Y []float64
}

// LinePlot writes a PNG line plot with points of each series, its legend beside the data. With logX the x axis is
// logarithmic (every x must then be positive): for quantities that span decades, such as the training times of
// methods whose costs differ by 10× or more.
func LinePlot(path, title, xlabel, ylabel string, series []Series, logX bool) error {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, xlabel, ylabel
	p.Add(plotter.NewGrid())
	leg := plot.NewLegend()
	leg.Top, leg.Left = true, true
	for i, s := range series {
		if len(s.X) != len(s.Y) || len(s.X) == 0 {
			return fmt.Errorf("plot %s: series %q has %d x and %d y values", path, s.Name, len(s.X), len(s.Y))
		}
		pts := make(plotter.XYs, len(s.X))
		for k := range s.X {
			if logX && !(s.X[k] > 0) {
				return fmt.Errorf("plot %s: series %q has x = %g on a log axis", path, s.Name, s.X[k])
			}
			pts[k].X, pts[k].Y = s.X[k], s.Y[k]
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
		line.Dashes, points.Shape = plotutil.Dashes(i), plotutil.Shape(i)
		p.Add(line, points)
		leg.Add(s.Name, line, points)
	}
	// sqnet plots accuracies against a non-negative quantity (ε, seconds): y from 0 up to at least 1, x from 0 on
	// a linear axis, and some room on the right, so a series of one point (a run cut short) is not drawn on the
	// frame's edge.
	p.Y.Min, p.Y.Max = min(p.Y.Min, 0), max(p.Y.Max, 1)
	if logX {
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
		p.X.Min, p.X.Max = p.X.Min/1.3, p.X.Max*1.3
	} else {
		p.X.Min = min(p.X.Min, 0)
		p.X.Max += 0.05 * (p.X.Max - p.X.Min)
	}
	// The legend gets a strip of its own right of the data, as wide as its longest name, so it never covers a
	// point; the data keep 6 inches.
	var names vg.Length
	for _, s := range series {
		names = max(names, leg.TextStyle.Width(s.Name))
	}
	strip := leg.ThumbnailWidth + names + 0.4*vg.Inch
	width, height := 6*vg.Inch+strip, 4*vg.Inch
	img := vgimg.New(width, height)
	dc := draw.New(img)
	p.Draw(draw.Crop(dc, 0, -strip, 0, 0))
	leg.Draw(draw.Crop(dc, width-strip+0.15*vg.Inch, 0, 0, -0.3*vg.Inch))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return atomicfile.Write(path, buf.Bytes(), 0o644)
}

// Example is one row group of a grid: a clean image, its adversarial version, their predictions and the label.
type Example struct {
	Clean, Adv          []float32 // H×W grey values in [0, 1] (the first channel of a multi-channel image)
	Label, Clean1, Adv1 int       // true label, prediction on the clean and on the adversarial image
}

// Grid writes a PNG with one column per example and three rows — clean, adversarial, and the perturbation
// amplified to full range (blue negative, red positive) — each cell captioned with its prediction, green when
// right and red when wrong. scale is the pixel magnification.
func Grid(path string, ex []Example, h, w, scale int, eps float32) error {
	if len(ex) == 0 || h <= 0 || w <= 0 || scale <= 0 {
		return fmt.Errorf("grid %s: nothing to draw", path)
	}
	const caption = 14
	cw, ch := w*scale+4, h*scale+caption+4
	img := image.NewRGBA(image.Rect(0, 0, cw*len(ex), ch*3))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	green, red := color.RGBA{0, 140, 0, 255}, color.RGBA{200, 0, 0, 255}
	for c, e := range ex {
		if len(e.Clean) < h*w || len(e.Adv) < h*w {
			return fmt.Errorf("grid %s: example %d has %d/%d pixels, want %d", path, c, len(e.Clean), len(e.Adv), h*w)
		}
		x0 := c * cw
		for row := 0; row < 3; row++ {
			y0 := row * ch
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					var col color.RGBA
					switch row {
					case 0:
						col = grey(e.Clean[y*w+x])
					case 1:
						col = grey(e.Adv[y*w+x])
					default:
						col = diverging(e.Adv[y*w+x]-e.Clean[y*w+x], eps)
					}
					for dy := 0; dy < scale; dy++ {
						for dx := 0; dx < scale; dx++ {
							img.SetRGBA(x0+2+x*scale+dx, y0+2+y*scale+dy, col)
						}
					}
				}
			}
			text, good := "", true
			switch row {
			case 0:
				text, good = fmt.Sprintf("clean: %d", e.Clean1), e.Clean1 == e.Label
			case 1:
				text, good = fmt.Sprintf("adv: %d", e.Adv1), e.Adv1 == e.Label
			default:
				text = fmt.Sprintf("label %d", e.Label)
			}
			col := green
			if !good {
				col = red
			}
			drawText(img, x0+2, y0+h*scale+caption, text, col)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	return atomicfile.Write(path, buf.Bytes(), 0o644)
}

func grey(v float32) color.RGBA {
	g := uint8(math.Round(float64(min(max(v, 0), 1)) * 255))
	return color.RGBA{g, g, g, 255}
}

// diverging maps a perturbation in [−eps, eps] to blue (negative) through white to red (positive).
func diverging(d, eps float32) color.RGBA {
	if eps <= 0 {
		return color.RGBA{255, 255, 255, 255}
	}
	t := min(max(d/eps, -1), 1)
	if t >= 0 {
		v := uint8(255 * (1 - t))
		return color.RGBA{255, v, v, 255}
	}
	v := uint8(255 * (1 + t))
	return color.RGBA{v, v, 255, 255}
}

func drawText(img *image.RGBA, x, y int, s string, c color.RGBA) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13,
		Dot: fixed.P(x, y-2)}
	d.DrawString(s)
}

// Point is a mean with its spread, for ErrorBarPlot.
type Point struct{ Mean, Std float64 }

// ErrorBarPlot writes a PNG of categories along x (labels, one tick each) and, per series, a point per category
// with an error bar of ±Std; NaN means leave the point out. Series are offset a little sideways so their bars do
// not hide each other. y runs to 1 at least (accuracies), from just below the lowest bar.
func ErrorBarPlot(path, title, ylabel string, labels []string, names []string, series [][]Point) error {
	if len(names) != len(series) {
		return fmt.Errorf("plot %s: %d names for %d series", path, len(names), len(series))
	}
	p := plot.New()
	p.Title.Text, p.Y.Label.Text = title, ylabel
	p.Add(plotter.NewGrid())
	leg := plot.NewLegend()
	for i, s := range series {
		if len(s) != len(labels) {
			return fmt.Errorf("plot %s: series %q has %d points for %d labels", path, names[i], len(s), len(labels))
		}
		off := 0.12 * (float64(i) - float64(len(series)-1)/2)
		var pts errPoints
		for k, v := range s {
			if !math.IsNaN(v.Mean) {
				pts.XYs = append(pts.XYs, plotter.XY{X: float64(k) + off, Y: v.Mean})
				pts.YErrors = append(pts.YErrors, struct{ Low, High float64 }{v.Std, v.Std})
			}
		}
		if len(pts.XYs) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		sc.Color, sc.Shape, sc.Radius = plotutil.Color(i), plotutil.Shape(i), vg.Points(4)
		bars, err := plotter.NewYErrorBars(pts)
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		bars.Color = plotutil.Color(i)
		p.Add(bars, sc)
		leg.Add(names[i], sc)
	}
	ticks := make([]plot.Tick, len(labels))
	for k, l := range labels {
		ticks[k] = plot.Tick{Value: float64(k), Label: l}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = -0.6, float64(len(labels))-0.4
	// Accuracies: up to 1, down to a little below the lowest bar (not 0, which would flatten the differences
	// between settings that a sweep is run to see).
	p.Y.Min, p.Y.Max = max(0, math.Floor((p.Y.Min-0.02)*20)/20), max(p.Y.Max, 1)
	var width vg.Length
	for _, n := range names {
		width = max(width, leg.TextStyle.Width(n))
	}
	strip := leg.ThumbnailWidth + width + 0.4*vg.Inch
	w, h := max(6*vg.Inch, vg.Length(len(labels))*0.9*vg.Inch)+strip, 4*vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	p.Draw(draw.Crop(dc, 0, -strip, 0, 0))
	leg.Top = true
	leg.Draw(draw.Crop(dc, w-strip+0.15*vg.Inch, 0, 0, -0.3*vg.Inch))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return atomicfile.Write(path, buf.Bytes(), 0o644)
}

// errPoints is points with symmetric y errors, as plotter's error bars take them.
type errPoints struct {
	plotter.XYs
	plotter.YErrors
}
