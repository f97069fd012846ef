package train

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/vk/vktest"
)

// writeJPEGFolder writes an ImageNet-style folder under root: train/ and val/, each with three classes of JPEGs of
// assorted sizes whose colour says the class (noise on top, so crops differ), for training end to end on files in
// the real format.
func writeJPEGFolder(t testing.TB, root string, perClass map[string]int) {
	t.Helper()
	colours := []color.RGBA{{220, 30, 30, 255}, {30, 200, 40, 255}, {40, 60, 230, 255}}
	for split, n := range perClass {
		for c, class := range []string{"n01", "n02", "n03"} {
			for i := 0; i < n; i++ {
				w, h := 24+7*(i%5), 20+5*(i%4)
				img := image.NewRGBA(image.Rect(0, 0, w, h))
				for y := 0; y < h; y++ {
					for x := 0; x < w; x++ {
						d := uint8((x*31 + y*17 + i*13) % 40)
						k := colours[c]
						img.Set(x, y, color.RGBA{k.R - d/2, k.G - d/2, k.B - d/2, 255})
					}
				}
				p := filepath.Join(root, split, class, fmt.Sprintf("img_%03d.JPEG", i))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				f, err := os.Create(p)
				if err != nil {
					t.Fatal(err)
				}
				if err := jpeg.Encode(f, img, &jpeg.Options{Quality: 85}); err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
		}
	}
}

// TestFolderTraining trains on an image folder streamed from disk (random-resized crops and flips decoded in
// parallel) — the colours are easy, so it learns — and a run interrupted after its first step and resumed mid-epoch
// ends bit-identical to the straight run (the stream restarts at the step's position with the same crops).
func TestFolderTraining(t *testing.T) {
	root := t.TempDir()
	writeJPEGFolder(t, root, map[string]int{"train": 40, "val": 8})
	lib := kernels.New(vktest.Open(t))
	cfg := func(out string) Config {
		c := Defaults()
		c.Dataset, c.DataDir, c.ImageSize, c.Out = "folder", root, 16, filepath.Join(root, out)
		c.Batch, c.Epochs, c.Optimizer.LR = 20, 2, 3e-3
		return c
	}
	straight := cfg("straight.safetensors")
	res, err := Run(context.Background(), lib, straight)
	if err != nil {
		t.Fatal(err)
	}
	if acc := res.Epochs[len(res.Epochs)-1].TestAcc; acc < 0.9 {
		t.Errorf("test accuracy %.2f on three colours, want ≥ 0.9", acc)
	}
	cut := cfg("cut.safetensors")
	cutAndResume(t, lib, cut)
	want, got := load(t, straight), load(t, cut)
	if want.Arch.C != 3 || want.Arch.H != 16 || want.Arch.Classes != 3 || want.Extra["image_size"] != "16" {
		t.Fatalf("checkpoint: %d×%d×%d, %d classes, image_size %q", want.Arch.C, want.Arch.H, want.Arch.W,
			want.Arch.Classes, want.Extra["image_size"])
	}
	if !same(want.Weights, got.Weights) {
		t.Fatal("the resumed run's weights differ from the straight run's")
	}
	for _, bad := range []func(c *Config){
		func(c *Config) { c.ImageSize = 4 },
		func(c *Config) { c.DataDir = filepath.Join(root, "train") }, // no train/ split inside
		func(c *Config) { c.Dataset = "mnist" },                      // --image-size without a folder
	} {
		c := cfg("bad.safetensors")
		bad(&c)
		if _, err := Run(context.Background(), lib, c); err == nil {
			t.Errorf("config %+v was accepted", c)
		}
	}
}
