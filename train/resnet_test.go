package train

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/vk/vktest"
)

// TestResNetMethods trains resnet20 and preact-resnet18 (on MNIST's 28×28 inputs, batch 4, two steps) with
// natural, noisy-sq, fgsm-rs and pgd-at training: every run finishes, writes a checkpoint with its method, finite
// weights that moved, and batch norm's running variance moved off its initial 1. Under -short (SwiftShader) only
// resnet20's natural and pgd-at run; the lavapipe pass runs all eight.
func TestResNetMethods(t *testing.T) {
	lib := kernels.New(vktest.Open(t))
	models := []string{"resnet20", "preact-resnet18"}
	methods := []string{"natural", "noisy-sq", "fgsm-rs", "pgd-at"}
	if testing.Short() { // SwiftShader: resnet20 with and without an inner attack (fgsm-rs's guard alone is ~2 min)
		models, methods = models[:1], []string{"natural", "pgd-at"}
	}
	for _, arch := range models {
		for _, m := range methods {
			t.Run(arch+"/"+m, func(t *testing.T) {
				c := quick(t, filepath.Join(t.TempDir(), "m.safetensors"))
				c.Model, c.Method, c.Epochs, c.Batch, c.Limit, c.TestLimit, c.PGDSteps = arch, m, 1, 4, 8, 8, 2
				res, err := Run(context.Background(), lib, c)
				if err != nil {
					t.Fatal(err)
				}
				ck, err := model.Load(c.Out)
				if err != nil || ck.Method != m || ck.Arch.Name != arch || res.Steps != 2 {
					t.Fatalf("checkpoint %v, %v after %d steps", ck, err, res.Steps)
				}
				init := ck.Arch.Init(ck.Quant, ck.Seed)
				moved := false
				for name, w := range ck.Weights {
					for i, v := range w {
						if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
							t.Fatalf("%s[%d] = %v", name, i, v)
						}
						moved = moved || v != init[name][i]
					}
				}
				if !moved {
					t.Fatal("no weight moved in two steps")
				}
				rv := ck.Weights["bn1.running_var"]
				if arch == "preact-resnet18" {
					rv = ck.Weights["layer1.0.bn1.running_var"]
				}
				if len(rv) == 0 || rv[0] == 1 {
					t.Errorf("batch norm's running variance did not move: %v", rv[:min(len(rv), 3)])
				}
			})
		}
	}
}
