package kernels

import (
	"fmt"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// viewInputs returns n seeded h×w clean images in [0, 1], adversarial ones within eps of them, and per example a
// label and two predictions (some right, some wrong, some out of the font's range).
func viewInputs(n, h, w int, eps float32) (clean, adv []float32, info []uint32) {
	r := rng(uint64(n*1000 + h))
	clean = uniform(r, n*h*w, 0, 1)
	adv = make([]float32, len(clean))
	for i, v := range clean {
		adv[i] = min(max(v+eps*(2*r.Float32()-1), 0), 1)
	}
	info = make([]uint32, 3*n)
	for e := range n {
		info[3*e], info[3*e+1], info[3*e+2] = uint32(e%10), uint32(e%10), uint32((e*7)%11)
	}
	return clean, adv, info
}

// The picture is integer arithmetic on float inputs: a channel may differ by 1 where v·255 + 0.5 rounds
// differently on the device (fused multiply-add), nothing else may differ.
func TestViewGrid(t *testing.T) {
	l := openLib(t)
	cases := []struct {
		n, h, w, width, height int
		bgra                   bool
		eps                    float32
	}{
		{1, 28, 28, 40, 120, false, 0.3},
		{3, 28, 28, 300, 200, true, 0.3},
		{17, 5, 3, 257, 64, false, 0.1}, // clipped: not every example fits
		{8, 28, 28, 708, 302, true, 0},
		{31, 1, 1, 31, 17, true, 0.5},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d×%dx%d on %dx%d", c.n, c.h, c.w, c.width, c.height), func(t *testing.T) {
			g := FitGrid(c.n, c.h, c.w, c.width, c.height)
			clean, adv, info := viewInputs(c.n, c.h, c.w, c.eps)
			bc, ba, bi := upload(t, l, clean), upload(t, l, adv), uploadU32(t, l, info)
			px := c.width * c.height
			bo := uploadU32(t, l, make([]uint32, px))
			run(t, l, func(r *vk.Recorder) error {
				return l.ViewGrid(r, bc.All(), ba.All(), bi.All(), bo.All(), g, c.bgra, c.eps)
			})
			got, want := downloadU32(t, bo, px), ViewGridRef(clean, adv, info, g, c.bgra, c.eps)
			for i := range want {
				for s := 0; s < 32; s += 8 {
					d := int(got[i]>>s&0xFF) - int(want[i]>>s&0xFF)
					if d < -1 || d > 1 {
						t.Fatalf("layout %+v: first mismatch at pixel %d (x %d, y %d): got %#08x, want %#08x", g, i,
							i%c.width, i/c.width, got[i], want[i])
					}
				}
			}
		})
	}
}

// TestFitGrid checks the layout against the reference drawing: every example that FitGrid says fits has its clean
// cell where Cell says, showing its pixels, and the adversarial cell below it.
func TestFitGrid(t *testing.T) {
	for _, c := range []struct{ n, width, height int }{{8, 708, 302}, {8, 708, 323}, {16, 800, 600}, {1, 100, 300}, {5, 2000, 300}} {
		g := FitGrid(c.n, 28, 28, c.width, c.height)
		w, h := GridSize(c.n, 28, 28, g.Cols, g.Scale)
		if w > c.width || h > c.height {
			t.Fatalf("%+v: FitGrid chose a %d×%d grid for a %d×%d picture", c, w, h, c.width, c.height)
		}
		clean, adv, info := viewInputs(c.n, 28, 28, 0.3)
		pic := ViewGridRef(clean, adv, info, g, false, 0.3)
		for e := range c.n {
			for cell, img := range [][]float32{clean, adv} {
				x0, y0 := g.Cell(e, cell)
				for _, p := range [][2]int{{0, 0}, {27, 27}, {13, 5}} {
					x, y := x0+p[0]*g.Scale+g.Scale-1, y0+p[1]*g.Scale+g.Scale-1
					v := uint32(img[e*784+p[1]*28+p[0]]*255 + 0.5)
					if got := pic[y*c.width+x] & 0xFF; got != v {
						t.Fatalf("%+v example %d cell %d pixel %v at (%d, %d): red %d, want %d", g, e, cell, p, x, y, got, v)
					}
				}
			}
		}
	}
	if w, h := GridSize(8, 28, 28, 8, 3); w != 708 || h != 302 {
		t.Fatalf("8 examples at scale 3 in one row: %d×%d, want 708×302", w, h)
	}
	if g := FitGrid(8, 28, 28, 708, 302); g.Scale != 3 || g.Cols != 8 {
		t.Fatalf("8 examples on a 708×302 picture: scale %d, %d per row; want 3 and 8", g.Scale, g.Cols)
	}
}

func TestViewGridBadInput(t *testing.T) {
	l := openLib(t)
	g := FitGrid(2, 4, 4, 64, 64)
	small, img := zeros(t, l, 4), zeros(t, l, 32)
	info, out := uploadU32(t, l, make([]uint32, 6)), uploadU32(t, l, make([]uint32, 64*64))
	rec := newRecorder(t, l)
	expectErr(t, "images too small", l.ViewGrid(rec, small.All(), img.All(), info.All(), out.All(), g, false, 0.3))
	expectErr(t, "picture too small", l.ViewGrid(rec, img.All(), img.All(), info.All(), small.All(), g, false, 0.3))
	expectErr(t, "negative eps", l.ViewGrid(rec, img.All(), img.All(), info.All(), out.All(), g, false, -1))
	bad := g
	bad.Width = 0
	expectErr(t, "zero width", l.ViewGrid(rec, img.All(), img.All(), info.All(), out.All(), bad, false, 0.3))
	expectErr(t, "out aliases clean", l.ViewGrid(rec, out.All(), out.All(), info.All(), out.All(), g, false, 0.3))
}
