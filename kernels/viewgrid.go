package kernels

import (
	"fmt"
	"math"

	"github.com/sqnet/sqnet/vk"
)

// GridLayout is the geometry of the `sqnet view` picture (viewgrid.comp): N examples of H×W one-channel images,
// Cols per grid row, each a column of three cells — clean, adversarial, amplified perturbation — of Scale screen
// pixels per image pixel, each cell followed by a label strip of GridStripRows font pixels of Glyph screen pixels.
type GridLayout struct {
	N, H, W       int
	Cols          int
	Scale, Glyph  int
	Width, Height int // the picture, in pixels
}

// Layout constants shared with viewgrid.comp.
const (
	GridPad       = 4 // pixels around and between examples
	GridStripRows = 7 // label strip height in font pixels
)

// CellWidth and CellHeight are one cell's size in pixels (image plus label strip).
func (g GridLayout) CellWidth() int  { return g.W * g.Scale }
func (g GridLayout) CellHeight() int { return g.H*g.Scale + GridStripRows*g.Glyph }

// Cell returns the top-left pixel of example e's image in cell 0 (clean), 1 (adversarial) or 2 (perturbation).
func (g GridLayout) Cell(e, cell int) (x, y int) {
	return GridPad + (e%g.Cols)*(g.CellWidth()+GridPad), GridPad + (e/g.Cols)*(3*g.CellHeight()+GridPad) + cell*g.CellHeight()
}

// FitGrid lays out n examples of h×w pixels on a width×height picture with the largest scale (up to 8) at which
// all of them fit, and the fewest grid rows at that scale; a picture too small for even scale 1 is clipped.
func FitGrid(n, h, w, width, height int) GridLayout {
	for s := 8; s >= 1; s-- {
		g := GridLayout{N: n, H: h, W: w, Scale: s, Glyph: glyphFor(s), Width: width, Height: height}
		for cols := n; cols >= 1; cols-- {
			rows := (n + cols - 1) / cols
			if GridPad+cols*(g.CellWidth()+GridPad) <= width && GridPad+rows*(3*g.CellHeight()+GridPad) <= height {
				g.Cols = cols
				return g
			}
		}
	}
	return GridLayout{N: n, H: h, W: w, Cols: max(1, (width-GridPad)/(w+GridPad)), Scale: 1, Glyph: 1, Width: width,
		Height: height}
}

// GridSize is the smallest picture that holds n examples at scale, cols per row.
func GridSize(n, h, w, cols, scale int) (width, height int) {
	g := GridLayout{N: n, H: h, W: w, Cols: cols, Scale: scale, Glyph: glyphFor(scale)}
	rows := (n + cols - 1) / cols
	return GridPad + cols*(g.CellWidth()+GridPad), GridPad + rows*(3*g.CellHeight()+GridPad)
}

// viewPush mirrors viewgrid.comp's push constants.
type viewPush struct {
	N, H, W, Cols, Scale, Glyph, Width, Height, BGRA uint32
	Eps                                              float32
}

// ViewGrid records the drawing of the picture into out (Width×Height 4-byte pixels, byte order BGRA when bgra,
// else RGBA, alpha 255): clean and adv hold N×H×W floats in [0, 1], info 3 uint32 per example (label, prediction on
// clean, prediction on adv), and eps is the perturbation drawn at full colour.
func (l *Lib) ViewGrid(r *vk.Recorder, clean, adv, info, out vk.Range, g GridLayout, bgra bool, eps float32) error {
	const op = "viewgrid"
	for _, dims := range [][]Dim{{{"examples", g.N}, {"height", g.H}, {"width", g.W}},
		{{"picture width", g.Width}, {"picture height", g.Height}}, {{"cols", g.Cols}}, {{"scale", g.Scale}},
		{{"glyph", g.Glyph}}} {
		if err := positive(op, dims...); err != nil {
			return err
		}
	}
	if eps < 0 || math.IsNaN(float64(eps)) {
		return fmt.Errorf("%s: eps = %v; want ≥ 0", op, eps)
	}
	n := g.N * g.H * g.W
	if err := needEach(op, sized{"clean", clean, n}, sized{"adv", adv, n}); err != nil {
		return err
	}
	if err := needU32(op, "info", info, 3*g.N); err != nil {
		return err
	}
	px := g.Width * g.Height
	if err := needU32(op, "out", out, px); err != nil {
		return err
	}
	if err := disjoint(op, named{"out", out}, named{"clean", clean}, named{"adv", adv}, named{"info", info}); err != nil {
		return err
	}
	push := viewPush{uint32(g.N), uint32(g.H), uint32(g.W), uint32(g.Cols), uint32(g.Scale), uint32(g.Glyph),
		uint32(g.Width), uint32(g.Height), 0, eps}
	if bgra {
		push.BGRA = 1
	}
	access := []vk.Access{vk.Read, vk.Read, vk.Read, vk.Write}
	return l.dispatch1D(r, "viewgrid", px, push, access, clean, adv, info, out)
}

// gridFont is viewgrid.comp's 3×5 digit font, row-major from the top-left, bit 14 first.
var gridFont = [10]uint32{0x7B6F, 0x2C97, 0x73E7, 0x73CF, 0x5BC9, 0x79CF, 0x79EF, 0x7249, 0x7BEF, 0x7BCF}

// ViewGridRef is the CPU reference of ViewGrid.
func ViewGridRef(clean, adv []float32, info []uint32, g GridLayout, bgra bool, eps float32) []uint32 {
	rgb := func(r, gr, b uint32) uint32 { return r | gr<<8 | b<<16 }
	gray := func(v float32) uint32 {
		u := uint32(min(max(v, 0), 1)*255 + 0.5)
		return rgb(u, u, u)
	}
	diverging := func(d float32) uint32 {
		t := float32(0)
		if eps > 0 {
			t = min(max(d/eps, -1), 1)
		}
		f := uint32((1-float32(math.Abs(float64(t))))*255 + 0.5)
		if t >= 0 {
			return rgb(255, f, f)
		}
		return rgb(f, f, 255)
	}
	out := make([]uint32, g.Width*g.Height)
	cw, ih := g.CellWidth(), g.H*g.Scale
	ch := g.CellHeight()
	bw, bh := cw+GridPad, 3*ch+GridPad
	for y := 0; y < g.Height; y++ {
		for x := 0; x < g.Width; x++ {
			c := rgb(32, 32, 32)
			if x >= GridPad && y >= GridPad {
				col, row := (x-GridPad)/bw, (y-GridPad)/bh
				lx, ly := (x-GridPad)%bw, (y-GridPad)%bh
				e := row*g.Cols + col
				if col < g.Cols && e < g.N && lx < cw && ly < 3*ch {
					cell, cy := ly/ch, ly%ch
					if cy < ih {
						p := e*g.H*g.W + (cy/g.Scale)*g.W + lx/g.Scale
						switch cell {
						case 0:
							c = gray(clean[p])
						case 1:
							c = gray(adv[p])
						default:
							c = diverging(adv[p] - clean[p])
						}
					} else {
						gx, gy := lx/g.Glyph, (cy-ih)/g.Glyph
						label := info[3*e]
						pred := label
						if cell < 2 {
							pred = info[3*e+cell+1]
						}
						fx, fy := gx-1, gy-1
						switch {
						case fx >= 0 && fy >= 0 && fx < 3 && fy < 5 && pred < 10 && gridFont[pred]>>(14-(fy*3+fx))&1 != 0:
							c = rgb(255, 255, 255)
						case cell < 2 && gx >= 5 && gx < 10 && gy >= 1 && gy < 6:
							if pred == label {
								c = rgb(40, 200, 60)
							} else {
								c = rgb(230, 40, 40)
							}
						}
					}
				}
			}
			if bgra {
				c = c&0x00FF00 | (c&0xFF)<<16 | c>>16&0xFF
			}
			out[y*g.Width+x] = c | 0xFF000000
		}
	}
	return out
}

// glyphFor is the font pixel size that goes with an image scale: digits about as tall as a third of a cell.
func glyphFor(scale int) int { return max(1, (scale+1)/2) }
