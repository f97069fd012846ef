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

	"github.com/sqnet/sqnet/internal/atomicfile"
)

// Series is one line of a plot.
type Series struct {
	Name string
	X, Y []float64
}

// LinePlot writes a PNG line plot with points of each series.
func LinePlot(path, title, xlabel, ylabel string, series []Series) error {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, xlabel, ylabel
	p.Add(plotter.NewGrid())
	var args []any
	for _, s := range series {
		if len(s.X) != len(s.Y) || len(s.X) == 0 {
			return fmt.Errorf("plot %s: series %q has %d x and %d y values", path, s.Name, len(s.X), len(s.Y))
		}
		pts := make(plotter.XYs, len(s.X))
		for i := range s.X {
			pts[i].X, pts[i].Y = s.X[i], s.Y[i]
		}
		args = append(args, s.Name, pts)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	// sqnet plots accuracies against a non-negative quantity (ε, seconds): both axes from 0, y up to at least 1,
	// and some room on the right, so a series of one point (a run cut short) is not drawn on the frame's edge.
	p.X.Min, p.Y.Min = min(p.X.Min, 0), min(p.Y.Min, 0)
	p.Y.Max = max(p.Y.Max, 1)
	p.X.Max += 0.05 * (p.X.Max - p.X.Min)
	p.Legend.Top = true
	w, err := p.WriterTo(6*vg.Inch, 4*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
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
