package model

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sqnet/sqnet/internal/safetensors"
	"github.com/sqnet/sqnet/quant"
)

func TestArchParams(t *testing.T) {
	a, err := Lookup("madry", 1, 28, 28, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{"conv1.weight": {32, 1, 5, 5}, "conv1.bias": {32}, "conv2.weight": {64, 32, 5, 5},
		"conv2.bias": {64}, "fc1.weight": {1024, 3136}, "fc1.bias": {1024}, "fc2.weight": {10, 1024}, "fc2.bias": {10}}
	ps := a.Params(nil)
	if len(ps) != len(want) {
		t.Fatalf("%d params, want %d", len(ps), len(want))
	}
	total := 0
	for _, p := range ps {
		if fmtShape(p.Shape) != fmtShape(want[p.Name]) {
			t.Errorf("%s: shape %v, want %v", p.Name, p.Shape, want[p.Name])
		}
		n := 1
		for _, d := range p.Shape {
			n *= d
		}
		total += n
	}
	if total != 3274634 { // Madry et al.'s MNIST model: 3,274,634 parameters
		t.Errorf("madry has %d parameters, want 3274634", total)
	}
	small, _ := Lookup("small", 1, 28, 28, 10)
	if p := small.Params(&quant.Default); p[0].Name != ThresholdsName || fmtShape(p[0].Shape) != "[1]" ||
		fmtShape(p[5].Shape) != "[100 1568]" {
		t.Errorf("small with a quantizer: %v", p)
	}
	if _, err := Lookup("resnet", 1, 28, 28, 10); err == nil {
		t.Error("an unknown architecture was accepted")
	}
}

func fmtShape(s []int) string { return fmt.Sprint(s) }

func TestInitBounds(t *testing.T) {
	a, _ := Lookup("small", 1, 28, 28, 10)
	q := quant.Config{Levels: 3, Alpha: 20}
	w := a.Init(&q, 1)
	if err := a.Check(&q, w); err != nil {
		t.Fatal(err)
	}
	for _, p := range a.Params(&q) {
		if p.Name == ThresholdsName {
			if w[p.Name][0] != 0.25 || w[p.Name][1] != 0.75 {
				t.Errorf("thresholds %v, want [0.25 0.75]", w[p.Name])
			}
			continue
		}
		bound := 1 / math.Sqrt(float64(p.FanIn))
		var maxAbs float64
		for _, v := range w[p.Name] {
			maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
		}
		if maxAbs > bound || maxAbs < bound/2 {
			t.Errorf("%s: max |w| %.4f, want within (%.4f/2, %.4f]", p.Name, maxAbs, bound, bound)
		}
	}
	again := a.Init(&q, 1)
	if again["fc1.weight"][123] != w["fc1.weight"][123] {
		t.Error("the same seed gave other weights")
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	a, _ := Lookup("small", 1, 28, 28, 10)
	q := quant.Default
	c := &Checkpoint{Arch: a, Quant: &q, Deploy: quant.Hard, Weights: a.Init(&q, 3), Optim: Weights{"fc2.bias.m": {1, 2, 3}},
		Dataset: "mnist", Method: "noisy-sq", Epoch: 2, Step: 2400, Seed: 7, Extra: map[string]string{"note": "x"}}
	p := filepath.Join(t.TempDir(), "m.safetensors")
	if err := Save(p, c); err != nil {
		t.Fatal(err)
	}
	got, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got.Arch.Name != "small" || *got.Quant != q || got.Epoch != 2 || got.Step != 2400 || got.Seed != 7 ||
		got.Dataset != "mnist" || got.Method != "noisy-sq" || got.Extra["note"] != "x" ||
		len(got.Optim["fc2.bias.m"]) != 3 || got.Deploy != quant.Hard {
		t.Fatalf("loaded arch %s quant %v deploy %s epoch %d step %d seed %d dataset %q method %q extra %v",
			got.Arch.Name, got.Quant, got.Deploy, got.Epoch, got.Step, got.Seed, got.Dataset, got.Method, got.Extra)
	}
	for name, v := range c.Weights {
		for i := range v {
			if got.Weights[name][i] != v[i] {
				t.Fatalf("%s[%d] = %v, want %v", name, i, got.Weights[name][i], v[i])
			}
		}
	}
	// The file is plain safetensors with PyTorch names, readable without this package's checkpoint layer.
	f, err := safetensors.Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if s := fmtShape(f.Tensors["conv1.weight"].Shape); s != "[16 1 3 3]" || f.Meta["arch"] != "small" {
		t.Fatalf("raw read: conv1.weight shape %s, arch %q", s, f.Meta["arch"])
	}
}

func TestLoadRejects(t *testing.T) {
	dir := t.TempDir()
	a, _ := Lookup("small", 1, 28, 28, 10)
	good := filepath.Join(dir, "good.safetensors")
	if err := Save(good, &Checkpoint{Arch: a, Weights: a.Init(nil, 1), Method: "natural"}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(good)
	trunc := filepath.Join(dir, "trunc.safetensors")
	os.WriteFile(trunc, raw[:len(raw)-100], 0o644)
	if _, err := Load(trunc); err == nil || !strings.Contains(err.Error(), trunc) {
		t.Errorf("truncated checkpoint: %v", err)
	}
	// A file claiming another architecture than its tensors fit.
	f, _ := safetensors.Read(good)
	f.Meta["arch"] = "madry"
	var ts []safetensors.Tensor
	for _, tt := range f.Tensors {
		ts = append(ts, tt)
	}
	lie := filepath.Join(dir, "lie.safetensors")
	safetensors.Write(lie, ts, f.Meta)
	if _, err := Load(lie); err == nil || !strings.Contains(err.Error(), "madry") {
		t.Errorf("mislabelled checkpoint: %v", err)
	}
	// Not written by sqnet.
	foreign := filepath.Join(dir, "foreign.safetensors")
	safetensors.Write(foreign, ts, map[string]string{"arch": "small"})
	if _, err := Load(foreign); err == nil || !strings.Contains(err.Error(), "format") {
		t.Errorf("foreign file: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file loaded")
	}
	// A deployed classifier the file cannot have: hard without a quantizer, or an unknown one; and a checkpoint
	// that says nothing is deployed soft.
	if ck, err := Load(good); err != nil || ck.Deploy != quant.Soft {
		t.Errorf("no deploy metadata: %v, deployed %s; want soft", err, ck.Deploy)
	}
	for _, d := range []string{"hard", "bpda"} {
		f.Meta["arch"], f.Meta["deploy"] = "small", d
		bad := filepath.Join(dir, "deploy-"+d+".safetensors")
		safetensors.Write(bad, ts, f.Meta)
		if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), d) {
			t.Errorf("deployed %s without a quantizer: %v", d, err)
		}
	}
	if err := Save(filepath.Join(dir, "x.safetensors"), &Checkpoint{Arch: a, Weights: a.Init(nil, 1),
		Deploy: quant.BPDAIdentity}); err == nil {
		t.Error("saved a checkpoint deployed as bpda")
	}
}

// TestInitFrom: fine-tuning starts from a checkpoint's network weights under a fresh quantizer, and a checkpoint
// that does not fit the model is an error naming the first tensor that does not.
func TestInitFrom(t *testing.T) {
	small, _ := Lookup("small", 1, 28, 28, 10)
	madry, _ := Lookup("madry", 1, 28, 28, 10)
	src := &Checkpoint{Arch: small, Weights: small.Init(nil, 7)} // a naturally trained network: no quantizer
	q, err := quant.Parse("2,50")
	if err != nil {
		t.Fatal(err)
	}
	w, err := small.InitFrom(&q, 1, src, "nat.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if err := small.Check(&q, w); err != nil {
		t.Fatal(err)
	}
	fresh := small.Init(&q, 1)
	for _, p := range small.Params(&q) {
		want := src.Weights[p.Name]
		if p.Name == ThresholdsName {
			want = fresh[p.Name] // the quantizer is the run's own
		}
		if fmt.Sprint(w[p.Name]) != fmt.Sprint(want) {
			t.Errorf("%s: not taken from the right place", p.Name)
		}
	}
	// A quantized source keeps working without a quantizer in the new run: its thresholds are dropped.
	srcQ := &Checkpoint{Arch: small, Quant: &q, Weights: small.Init(&q, 7)}
	if _, err := small.InitFrom(nil, 1, srcQ, "q.safetensors"); err != nil {
		t.Errorf("quantized source into an unquantized run: %v", err)
	}
	ten, _ := Lookup("small", 1, 28, 28, 5)
	for _, c := range []struct {
		into Arch
		src  *Checkpoint
		want string
	}{
		{madry, src, "conv1.weight is [16 1 3 3] there and [32 1 5 5] in madry"},
		{small, &Checkpoint{Arch: madry, Weights: madry.Init(nil, 1)}, "conv1.weight is [32 1 5 5] there"},
		{ten, src, "fc2.weight is [10 "},
	} {
		_, err := c.into.InitFrom(nil, 1, c.src, "x.safetensors")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "--init x.safetensors") {
			t.Errorf("%s from %s: error %v, want one containing %q", c.into.Name, c.src.Arch.Name, err, c.want)
		}
	}
}
