package main

import (
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sqnet/sqnet/data"
	"github.com/sqnet/sqnet/internal/xvfb"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
)

// viewModel writes a freshly initialised small MNIST model with a soft quantizer (what is drawn does not depend on
// how well it was trained) and returns its path.
func viewModel(t *testing.T) string {
	t.Helper()
	a, err := model.Lookup("small", 1, 28, 28, 10)
	if err != nil {
		t.Fatal(err)
	}
	q := quant.Config{Levels: 2, Alpha: 50}
	path := filepath.Join(t.TempDir(), "view.safetensors")
	if err := model.Save(path, &model.Checkpoint{Arch: a, Quant: &q, Weights: a.Init(&q, 1), Dataset: "mnist",
		Method: "noisy-sq"}); err != nil {
		t.Fatal(err)
	}
	return path
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// TestViewScreenshot runs `sqnet view --frames 20 --screenshot` under Xvfb with the validation layer on: the PNG
// has the window's size, the clean cells show the dataset's pixels, and the adversarial cells differ from them by
// at most ε (and do differ: the attack ran).
func TestViewScreenshot(t *testing.T) {
	x := xvfb.Start(t)
	ck := viewModel(t)
	test, err := data.Load("mnist", "", data.Test)
	if err != nil {
		t.Fatal(err)
	}
	defW, defH := kernels.GridSize(8, 28, 28, 8, 3)
	cases := []struct {
		name string
		args []string
		w, h int
		eps  float32
		off  int
	}{
		{"default window, pgd", nil, defW, defH, 0.3, 0},
		{"500×400, fgsm ε=0.2, offset 30", []string{"--width", "500", "--height", "400", "--attack", "fgsm", "--eps",
			"0.2", "--offset", "30", "--n", "5"}, 500, 400, 0.2, 30},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			shot := filepath.Join(t.TempDir(), "out.png")
			args := append([]string{"view", "--validate", "--model", ck, "--frames", "20", "--screenshot", shot}, c.args...)
			stdout, stderr, code := sqnet(t, []string{x.Env()}, args...)
			if code != 0 {
				t.Fatalf("sqnet %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, stdout, stderr)
			}
			img := readPNG(t, shot)
			if b := img.Bounds(); b.Dx() != c.w || b.Dy() != c.h {
				t.Fatalf("screenshot is %d×%d, the window %d×%d", b.Dx(), b.Dy(), c.w, c.h)
			}
			n := 8
			if c.off > 0 {
				n = 5
			}
			g := kernels.FitGrid(n, 28, 28, c.w, c.h)
			moved := 0
			for e := range n {
				cx, cy := g.Cell(e, 0)
				ax, ay := g.Cell(e, 1)
				for py := range 28 {
					for px := range 28 {
						v := test.Images[(c.off+e)*784+py*28+px]
						cr, _, _, _ := img.At(cx+px*g.Scale, cy+py*g.Scale).RGBA()
						ar, _, _, _ := img.At(ax+px*g.Scale, ay+py*g.Scale).RGBA()
						clean, adv := int(cr>>8), int(ar>>8)
						if want := int(v*255 + 0.5); clean < want-1 || clean > want+1 {
							t.Fatalf("example %d pixel (%d, %d): clean cell shows %d, the dataset %d", e, px, py, clean, want)
						}
						if d := adv - clean; d < -int(c.eps*255)-2 || d > int(c.eps*255)+2 {
							t.Fatalf("example %d pixel (%d, %d): adversarial %d is %d from clean %d (ε = %v)", e, px, py,
								adv, d, clean, c.eps)
						}
						if adv != clean {
							moved++
						}
					}
				}
			}
			if moved < n*784/10 {
				t.Fatalf("only %d of %d adversarial pixels differ from the clean ones: did the attack run?", moved, n*784)
			}
		})
	}
}

// TestViewNoDisplay: without a display, one line that suggests xvfb-run, exit 2.
func TestViewNoDisplay(t *testing.T) {
	stdout, stderr, code := sqnet(t, []string{"DISPLAY=", "WAYLAND_DISPLAY="}, "view", "--model", viewModel(t),
		"--frames", "2")
	if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "xvfb-run") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and one line suggesting xvfb-run", code, stdout, stderr)
	}
}

// TestViewStops: an interrupted viewer shuts down cleanly (exit 0, no validation message), and one whose X server
// dies exits on its own — neither hangs.
func TestViewStops(t *testing.T) {
	ck := viewModel(t)
	for _, c := range []struct {
		name     string
		stop     func(p *os.Process, x *xvfb.Server)
		wantCode int // -1: any non-zero
	}{
		{"interrupt", func(p *os.Process, _ *xvfb.Server) { p.Signal(syscall.SIGINT) }, 0},
		{"display lost", func(_ *os.Process, x *xvfb.Server) { x.Stop() }, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := xvfb.Start(t)
			cmd := exec.Command(sqnetBin, "view", "--validate", "--model", ck)
			cmd.Env = append(os.Environ(), x.Env())
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				t.Fatalf("the viewer stopped by itself before being stopped: %v\n%s", err, out.String())
			case <-time.After(3 * time.Second):
			}
			c.stop(cmd.Process, x)
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("the viewer still runs 20 s after being stopped (hung)\n%s", out.String())
			}
			code := cmd.ProcessState.ExitCode()
			if (c.wantCode >= 0 && code != c.wantCode) || (c.wantCode < 0 && code == 0) {
				t.Fatalf("exit %d\n%s", code, out.String())
			}
			if strings.Contains(out.String(), "validation") {
				t.Fatalf("validation messages:\n%s", out.String())
			}
		})
	}
}
