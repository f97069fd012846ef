package train

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sqnet/sqnet/attack"
	"github.com/sqnet/sqnet/data"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/vk/vktest"
)

// TestNoisySQMoreRobust is the paper's claim in a few hundred steps: noisy-sq and natural training get the same
// budget on real MNIST (80 steps; 20 with -short, as test-swiftshader runs), and under PGD at ε = 0.3 the
// noisy-sq model keeps clearly more accuracy.
func TestNoisySQMoreRobust(t *testing.T) {
	lib := kernels.New(vktest.Open(t))
	limit, epochs, steps, images, margin := 2000, 2, 20, 200, 0.3
	if testing.Short() {
		limit, epochs, steps, images, margin = 1000, 1, 10, 100, 0.2
	}
	test, err := data.Load("mnist", os.Getenv(data.DataEnv), data.Test)
	if err != nil {
		t.Fatal(err)
	}
	test = test.Subset(images)
	acc := map[string]float64{}
	for _, m := range []string{"natural", "noisy-sq"} {
		c := Defaults()
		c.Method, c.Limit, c.Epochs, c.TestLimit = m, limit, epochs, 100
		c.Out = filepath.Join(t.TempDir(), m+".safetensors")
		if _, err := Run(context.Background(), lib, c); err != nil {
			t.Fatal(err)
		}
		ck, err := model.Load(c.Out)
		if err != nil {
			t.Fatal(err)
		}
		a, err := attack.New(lib, ck, attack.PGDk(0.3, steps, 1))
		if err != nil {
			t.Fatal(err)
		}
		r, err := a.Run(test.Images, test.Labels, nil, test.N)
		a.Close()
		if err != nil {
			t.Fatal(err)
		}
		acc[m] = r.Accuracy
	}
	t.Logf("PGD-%d accuracy after %d steps: natural %.1f%%, noisy-sq %.1f%%", steps, epochs*limit/50,
		100*acc["natural"], 100*acc["noisy-sq"])
	if acc["noisy-sq"] < acc["natural"]+margin {
		t.Fatalf("noisy-sq %.1f%% under PGD-%d is not %.0f points above natural's %.1f%%", 100*acc["noisy-sq"], steps,
			100*margin, 100*acc["natural"])
	}
}
