package model

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sqnet/sqnet/graph"
	"github.com/sqnet/sqnet/internal/safetensors"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/vk/vktest"
)

// TestResNetParams checks the residual networks' tensors against the PyTorch definitions they mirror
// (scripts/torch-load-check loads them strictly): names, shapes, buffers and parameter counts.
func TestResNetParams(t *testing.T) {
	for _, c := range []struct {
		arch   string
		params int // trainable parameters, as PyTorch counts them (scripts/torch-load-check's definitions)
		bns    int // batch-norm layers
		shapes map[string]string
	}{
		{"resnet20", 272474, 21, map[string]string{"conv1.weight": "[16 3 3 3]", "bn1.running_var": "[16]",
			"layer1.2.conv2.weight": "[16 16 3 3]", "layer2.0.shortcut.0.weight": "[32 16 1 1]",
			"layer2.0.shortcut.1.running_mean": "[32]", "layer3.2.bn2.bias": "[64]", "linear.weight": "[10 64]"}},
		{"preact-resnet18", 11172170, 17, map[string]string{"conv1.weight": "[64 3 3 3]", "layer1.0.bn1.weight": "[64]",
			"layer2.0.shortcut.0.weight": "[128 64 1 1]", "layer4.1.conv2.weight": "[512 512 3 3]",
			"bn.running_var": "[512]", "linear.weight": "[10 512]"}},
	} {
		a, err := Lookup(c.arch, 3, 32, 32, 10)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		params := 0
		for _, p := range a.Params(nil) {
			got[p.Name] = fmtShape(p.Shape)
			n := 1
			for _, d := range p.Shape {
				n *= d
			}
			if !p.Buffer {
				params += n
			}
			if strings.HasSuffix(p.Name, ".bias") && strings.Contains(p.Name, "conv") {
				t.Errorf("%s: %s: residual networks' convolutions have no bias", c.arch, p.Name)
			}
		}
		for name, shape := range c.shapes {
			if got[name] != shape {
				t.Errorf("%s: %s is %q, want %s", c.arch, name, got[name], shape)
			}
		}
		if params != c.params || len(a.BatchNorms()) != c.bns {
			t.Errorf("%s: %d parameters and %d batch norms, want %d and %d", c.arch, params, len(a.BatchNorms()),
				c.params, c.bns)
		}
		w := a.Init(nil, 1)
		if w["bn1.weight"] != nil && (w["bn1.weight"][0] != 1 || w["bn1.bias"][0] != 0 || w["bn1.running_var"][3] != 1) {
			t.Errorf("%s: batch norm starts at weight %v, bias %v, running_var %v", c.arch, w["bn1.weight"][0],
				w["bn1.bias"][0], w["bn1.running_var"][3])
		}
	}
}

// TestResNetCheckpoint: a residual network's checkpoint holds every batch norm's num_batches_tracked as an I64
// scalar (what PyTorch's load_state_dict expects) and loads back.
func TestResNetCheckpoint(t *testing.T) {
	a, _ := Lookup("resnet20", 1, 28, 28, 10)
	p := filepath.Join(t.TempDir(), "r.safetensors")
	ck := &Checkpoint{Arch: a, Weights: a.Init(nil, 3), Dataset: "mnist", Method: "natural", Step: 1200, Epoch: 1}
	if err := Save(p, ck); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Read(p)
	if err != nil {
		t.Fatal(err)
	}
	n := f.Ints["layer3.1.bn2.num_batches_tracked"]
	if len(n.Shape) != 0 || len(n.Ints) != 1 || n.Ints[0] != 1200 || len(f.Ints) != 21 {
		t.Fatalf("num_batches_tracked %+v, %d I64 tensors", n, len(f.Ints))
	}
	back, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if back.Arch.Name != "resnet20" || len(back.Weights) != len(ck.Weights) ||
		back.Weights["layer2.0.shortcut.1.running_var"][5] != 1 {
		t.Fatalf("loaded %s with %d tensors", back.Arch.Name, len(back.Weights))
	}
}

// TestResNetGradients differentiates resnet20 (batch norm, residual joins, strided and 1×1 convolutions, global
// average pooling) on the GPU and checks the gradient against finite differences of the GPU's own forward along a
// random direction. In eval mode the direction spans every parameter and the input. In training mode a float32
// difference through twenty batch-normed layers is too rough to check anything (it moves by tens of percent with
// h, while the gradient agrees with PyTorch 1.13's to 1e-5 relative: the issue notes give the comparison), so the
// direction spans the head — the last block's batch norm and the linear layer — whose differences are smooth;
// batch norm's training-mode backward itself is checked by finite differences in graph and kernels.
func TestResNetGradients(t *testing.T) {
	const b, side = 8, 16
	a, err := Lookup("resnet20", 1, side, side, 10)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 8))
	w := a.Init(nil, 5)
	for _, p := range a.Params(nil) { // running statistics away from their start, so eval mode uses real ones
		v := w[p.Name]
		switch {
		case strings.HasSuffix(p.Name, "running_mean"):
			for i := range v {
				v[i] = 0.2 * float32(r.NormFloat64())
			}
		case strings.HasSuffix(p.Name, "running_var"):
			for i := range v {
				v[i] = 0.5 + r.Float32()
			}
		}
	}
	x := make([]float32, b*side*side)
	for i := range x {
		x[i] = r.Float32()
	}
	labels := []uint32{1, 7, 7, 0, 3, 9, 2, 1}
	lib := kernels.New(vktest.Open(t))
	for _, training := range []bool{false, true} {
		g := graph.New(lib)
		net := Declare(g, a, nil)
		net.Training = training
		xt := g.Input("x", graph.F32, b, 1, side, side)
		yt := g.Input("labels", graph.U32, b)
		loss := g.SoftmaxCrossEntropy(net.Forward(g, xt, quant.Soft), yt)
		g.Keep(loss)
		if err := g.Backward(loss, 1.0/b, append(append([]*graph.Tensor(nil), net.Order...), xt)...); err != nil {
			t.Fatal(err)
		}
		p, err := g.Compile()
		if err != nil {
			t.Fatal(err)
		}
		run := func(w Weights, x []float32) float64 {
			if err := net.Load(p, w); err != nil {
				t.Fatal(err)
			}
			if err := graph.Write(p, xt, x); err != nil {
				t.Fatal(err)
			}
			if err := graph.Write(p, yt, labels); err != nil {
				t.Fatal(err)
			}
			if err := p.Run(); err != nil {
				t.Fatal(err)
			}
			l := make([]float32, b)
			if err := graph.Read(p, loss, l); err != nil {
				t.Fatal(err)
			}
			s := 0.0
			for _, v := range l {
				s += float64(v)
			}
			return s / b
		}
		run(w, x)
		moves := func(name string) bool {
			return !training || name == "x" || strings.HasPrefix(name, "linear.") || strings.HasPrefix(name, "layer3.2.bn2.")
		}
		// The analytic directional derivative Σ ∇·v.
		dir := map[string][]float32{}
		var analytic float64
		add := func(name string, grad *graph.Tensor, n int) {
			if !moves(name) || (training && name == "x") {
				return
			}
			gr := make([]float32, n)
			if err := graph.Read(p, grad, gr); err != nil {
				t.Fatal(err)
			}
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(r.NormFloat64())
				analytic += float64(gr[i]) * float64(v[i])
			}
			dir[name] = v
		}
		for _, pt := range net.Order {
			add(pt.Name, pt.Grad, pt.Elems())
		}
		add("x", xt.Grad, len(x))
		at := func(h float64) float64 {
			shift := func(v, d []float32) []float32 {
				if d == nil {
					return v
				}
				nv := make([]float32, len(v))
				for i := range v {
					nv[i] = v[i] + float32(h)*d[i]
				}
				return nv
			}
			w2 := Weights{}
			for name, v := range w {
				w2[name] = shift(v, dir[name])
			}
			return run(w2, shift(x, dir["x"]))
		}
		const h = 1e-4
		fd := (at(h) - at(-h)) / (2 * h)
		if math.Abs(fd-analytic) > 1e-3+0.02*math.Abs(fd) {
			t.Errorf("training mode %v: directional derivative %.6g, finite differences %.6g", training, analytic, fd)
		}
		p.Close()
	}
}

// TestRelativeDistance checks the measure on hand-made weights: equal weights are 0 apart, a difference of 1
// against a movement of 2 is 0.5, and mismatched tensors are an error.
func TestRelativeDistance(t *testing.T) {
	init := Weights{"w": {0, 0}, "b": {0}}
	a := Weights{"w": {2, 0}, "b": {0}}
	if d, err := RelativeDistance(a, a, init); d != 0 || err != nil {
		t.Fatalf("equal weights: %v, %v", d, err)
	}
	b := Weights{"w": {2, 1}, "b": {0}}
	if d, err := RelativeDistance(a, b, init); d != 0.5 || err != nil {
		t.Fatalf("distance %v, %v; want 0.5", d, err)
	}
	if _, err := RelativeDistance(a, Weights{"w": {2}}, init); err == nil {
		t.Fatal("mismatched tensors were accepted")
	}
}
