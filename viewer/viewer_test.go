package viewer

import (
	"context"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/go-gl/glfw/v3.3/glfw"

	"github.com/sqnet/sqnet/data"
	"github.com/sqnet/sqnet/internal/xvfb"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/vk"
)

// TestResize resizes the window mid-run under Xvfb, with BPDA on and the validation layer recording: the
// swapchain is re-created, the picture follows the new size, and no validation message appears.
func TestResize(t *testing.T) {
	runtime.LockOSThread() // GLFW stays on one thread (on X11 any thread will do, as long as it is one)
	defer runtime.UnlockOSThread()
	x := xvfb.Start(t)
	t.Setenv("DISPLAY", x.Display)
	a, err := model.Lookup("small", 1, 28, 28, 10)
	if err != nil {
		t.Fatal(err)
	}
	q := quant.Config{Levels: 2, Alpha: 50}
	test, err := data.Load("mnist", "", data.Test)
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "resized.png")
	opts := Options{Checkpoint: &model.Checkpoint{Arch: a, Quant: &q, Weights: a.Init(&q, 2), Dataset: "mnist"},
		Images: test.Images[:16*784], Labels: test.Labels[:16], N: 4, Attack: "bpda", Frames: 12, Screenshot: shot,
		VK: vk.Options{Instance: vk.InstanceOptions{Validation: vk.ValidationOn}}, resizeAt: 4, resizeTo: [2]int{420, 360}}
	st, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.Width != 420 || st.Height != 360 || st.Frames != 12 {
		t.Fatalf("after resizing to 420×360: %+v", st)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Width != 420 || cfg.Height != 360 {
		t.Fatalf("screenshot %d×%d after resizing to 420×360", cfg.Width, cfg.Height)
	}
}

func TestBadOptions(t *testing.T) {
	a, _ := model.Lookup("small", 1, 28, 28, 10)
	ck := &model.Checkpoint{Arch: a, Weights: a.Init(nil, 1), Dataset: "mnist"}
	imgs, labels := make([]float32, 10*784), make([]uint8, 10)
	for _, o := range []Options{
		{},
		{Checkpoint: ck, Images: imgs, Labels: labels, N: 65},
		{Checkpoint: ck, Images: imgs, Labels: labels, Eps: -0.1},
		{Checkpoint: ck, Images: imgs, Labels: labels, Attack: "cw"},
		{Checkpoint: ck, Images: imgs, Labels: labels, Attack: "bpda"}, // no quantizer to go around
		{Checkpoint: ck, Images: imgs, Labels: labels, Offset: 5},      // 5 + 8 > 10 examples
		{Checkpoint: ck, Images: imgs, Labels: labels, Width: 300},     // a width without a height
		{Checkpoint: ck, Images: imgs, Labels: labels, Frames: -1},
	} {
		if err := o.defaults(); err == nil {
			t.Errorf("%+v was accepted", o)
		}
	}
}

// TestKeysAndClose drives the keys the way a person would — ε up, BPDA on, next batch, a screenshot — then closes
// the window with its close button, all under the validation layer; and q quits early.
func TestKeysAndClose(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	x := xvfb.Start(t)
	t.Setenv("DISPLAY", x.Display)
	t.Chdir(t.TempDir()) // the s key writes sqnet-view-001.png here
	a, _ := model.Lookup("small", 1, 28, 28, 10)
	q := quant.Config{Levels: 2, Alpha: 50}
	test, err := data.Load("mnist", "", data.Test)
	if err != nil {
		t.Fatal(err)
	}
	base := Options{Checkpoint: &model.Checkpoint{Arch: a, Quant: &q, Weights: a.Init(&q, 3), Dataset: "mnist"},
		Images: test.Images[:12*784], Labels: test.Labels[:12], N: 4, Steps: 5, Frames: 40,
		VK: vk.Options{Instance: vk.InstanceOptions{Validation: vk.ValidationOn}}}
	o := base
	o.script = map[int][]glfw.Key{3: {glfw.KeyRight, glfw.KeyB}, 6: {glfw.KeySpace}, 8: {glfw.KeyS}}
	o.closeAt = 12
	st, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if st.Frames != 12 || st.Steps == 0 || st.Offset != 4 || !st.BPDA || math.Abs(float64(st.Eps)-0.35) > 1e-6 {
		t.Fatalf("after →, b, space and closing at frame 12: %+v; want 12 frames, offset 4, BPDA on, ε 0.35", st)
	}
	if _, err := os.Stat("sqnet-view-001.png"); err != nil {
		t.Fatalf("the s key wrote no screenshot: %v", err)
	}
	o = base
	o.script = map[int][]glfw.Key{5: {glfw.KeyQ}}
	if st, err = Run(context.Background(), o); err != nil || st.Frames != 5 {
		t.Fatalf("q at frame 5: %+v, %v", st, err)
	}
}
