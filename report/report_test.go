package report

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestLinePlot(t *testing.T) {
	p := filepath.Join(t.TempDir(), "acc.png")
	err := LinePlot(p, "robust accuracy", "ε", "accuracy", []Series{{"natural", []float64{0, .1, .3}, []float64{.99, .4, 0}},
		{"noisy-sq", []float64{0, .1, .3}, []float64{.98, .9, .75}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() < 100 {
		t.Fatalf("plot is not a sensible PNG: %v", err)
	}
	if err := LinePlot(p, "", "", "", []Series{{"bad", []float64{1}, nil}}, false); err == nil {
		t.Error("a series with mismatched x and y was accepted")
	}
	// Training times that span decades on a log axis; a point at 0 cannot be drawn there.
	times := []Series{{"noisy-sq", []float64{9, 18, 27, 36}, []float64{.7, .8, .82, .84}},
		{"pgd-at", []float64{300, 900, 1800, 2700}, []float64{.3, .6, .7, .75}}}
	if err := LinePlot(p, "robust accuracy during training", "s", "accuracy", times, true); err != nil {
		t.Fatal(err)
	}
	times[0].X[0] = 0
	if err := LinePlot(p, "", "", "", times, true); err == nil {
		t.Error("x = 0 was accepted on a log axis")
	}
}

func TestGrid(t *testing.T) {
	const h, w, scale = 4, 3, 2
	clean := []float32{0, .5, 1, .25, .75, 0, 1, 1, 0, 0, .5, .5}
	adv := make([]float32, len(clean))
	for i, v := range clean {
		adv[i] = min(v+0.1, 1)
	}
	p := filepath.Join(t.TempDir(), "grid.png")
	if err := Grid(p, []Example{{clean, adv, 3, 3, 5}, {clean, clean, 1, 1, 1}}, h, w, scale, 0.3); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(p)
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	cw, ch := w*scale+4, h*scale+14+4
	if b := img.Bounds(); b.Dx() != 2*cw || b.Dy() != 3*ch {
		t.Fatalf("grid is %v, want %d×%d", b, 2*cw, 3*ch)
	}
	// The clean cell reproduces the pixels: pixel (x=1, y=0) is 0.5 → grey 128.
	r, g, b, _ := img.At(2+1*scale, 2).RGBA()
	if r>>8 != 128 || g>>8 != 128 || b>>8 != 128 {
		t.Errorf("clean pixel drawn as %d,%d,%d, want 128 grey", r>>8, g>>8, b>>8)
	}
	if err := Grid(p, []Example{{clean[:3], adv, 0, 0, 0}}, h, w, scale, 0.3); err == nil {
		t.Error("an example with too few pixels was accepted")
	}
}
