package model

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/sqnet/sqnet/internal/safetensors"
	"github.com/sqnet/sqnet/quant"
)

// Format is the value of the "format" metadata key in every checkpoint sqnet writes.
const Format = "sqnet/1"

// NumBatchesTracked ends the name of a batch norm layer's int64 batch counter (PyTorch's buffer).
const NumBatchesTracked = ".num_batches_tracked"

// OptimPrefix starts the names of optimizer-state tensors (Adam moments, momentum), stored beside the parameters
// so that --resume continues bit-identically; PyTorch loaders can drop them with a prefix filter.
const OptimPrefix = "optim."

// Checkpoint is a model's architecture, quantizer, weights, optional optimizer state and training metadata.
type Checkpoint struct {
	Arch  Arch
	Quant *quant.Config // nil: no quantizer
	// Deploy is the classifier the model is deployed as when it has a quantizer: quant.Soft (as trained, and what
	// a checkpoint that says nothing means) or quant.Hard (the hard quantizer at test time). Evaluations judge
	// every adversarial candidate by it unless told otherwise.
	Deploy  quant.Mode
	Weights Weights
	Optim   Weights // optimizer state by name (without OptimPrefix); may be empty
	Dataset string
	Method  string
	Epoch   int    // epochs completed
	Step    int    // optimizer steps completed
	Seed    uint64 // the training seed
	Extra   map[string]string
}

// Save writes the checkpoint as safetensors, atomically: tensor names and layouts are PyTorch's state_dict of the
// same architecture (conv weights [out, in, kh, kw], linear weights [out, in]); metadata holds the rest.
func Save(path string, c *Checkpoint) error {
	if err := c.Arch.Check(c.Quant, c.Weights); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	var ts []safetensors.Tensor
	for _, p := range c.Arch.Params(c.Quant) {
		ts = append(ts, safetensors.Tensor{Name: p.Name, Shape: p.Shape, Data: c.Weights[p.Name]})
	}
	for name, v := range c.Optim {
		ts = append(ts, safetensors.Tensor{Name: OptimPrefix + name, Shape: []int{len(v)}, Data: v})
	}
	// PyTorch's BatchNorm2d counts its training-mode batches in an int64 scalar; sqnet writes the optimizer steps
	// (what the count is with one training forward per step), so load_state_dict finds every buffer it expects.
	for _, name := range c.Arch.BatchNorms() {
		ts = append(ts, safetensors.Tensor{Name: name + NumBatchesTracked, Shape: []int{}, Ints: []int64{int64(c.Step)}})
	}
	q := "none"
	if c.Quant != nil {
		q = c.Quant.String()
	}
	if c.Deploy != quant.Soft && c.Deploy != quant.Hard {
		return fmt.Errorf("save %s: deployed as %s; a checkpoint is deployed soft or hard", path, c.Deploy)
	}
	meta := map[string]string{
		"format": Format, "arch": c.Arch.Name, "dataset": c.Dataset, "method": c.Method, "quant": q,
		"input":   fmt.Sprintf("%dx%dx%d", c.Arch.C, c.Arch.H, c.Arch.W),
		"classes": strconv.Itoa(c.Arch.Classes), "epoch": strconv.Itoa(c.Epoch), "step": strconv.Itoa(c.Step),
		"seed": strconv.FormatUint(c.Seed, 10),
	}
	if c.Quant != nil {
		meta["deploy"] = c.Deploy.String()
	}
	for k, v := range c.Extra {
		if _, taken := meta[k]; !taken {
			meta[k] = v
		}
	}
	return safetensors.Write(path, ts, meta)
}

// Load reads a checkpoint written by Save and checks it against its own metadata: a file whose tensors do not
// match the architecture it names is refused with an error naming the file and the problem.
func Load(path string) (*Checkpoint, error) {
	f, err := safetensors.Read(path)
	if err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("checkpoint %s: %s", path, fmt.Sprintf(format, args...))
	}
	m := f.Meta
	if m["format"] != Format {
		return nil, bad("format %q, want %q (not written by sqnet?)", m["format"], Format)
	}
	var c, h, w int
	if _, err := fmt.Sscanf(m["input"], "%dx%dx%d", &c, &h, &w); err != nil {
		return nil, bad("input shape %q unreadable", m["input"])
	}
	classes, err := strconv.Atoi(m["classes"])
	if err != nil {
		return nil, bad("classes %q unreadable", m["classes"])
	}
	arch, err := Lookup(m["arch"], c, h, w, classes)
	if err != nil {
		return nil, bad("%v", err)
	}
	ck := &Checkpoint{Arch: arch, Dataset: m["dataset"], Method: m["method"], Weights: Weights{}, Optim: Weights{},
		Extra: map[string]string{}}
	if q := m["quant"]; q != "none" {
		cfg, err := quant.Parse(q)
		if err != nil {
			return nil, bad("%v", err)
		}
		ck.Quant = &cfg
	}
	switch d := m["deploy"]; {
	case d == "" || d == "soft":
		ck.Deploy = quant.Soft
	case d == "hard" && ck.Quant != nil:
		ck.Deploy = quant.Hard
	default:
		return nil, bad("deployed as %q; want soft or hard, and hard only with a quantizer", d)
	}
	for _, k := range []struct {
		key string
		dst *int
	}{{"epoch", &ck.Epoch}, {"step", &ck.Step}} {
		if *k.dst, err = strconv.Atoi(m[k.key]); err != nil {
			return nil, bad("%s %q unreadable", k.key, m[k.key])
		}
	}
	if ck.Seed, err = strconv.ParseUint(m["seed"], 10, 64); err != nil {
		return nil, bad("seed %q unreadable", m["seed"])
	}
	for k, v := range m {
		switch k {
		case "format", "arch", "dataset", "method", "quant", "input", "classes", "epoch", "step", "seed", "deploy":
		default:
			ck.Extra[k] = v
		}
	}
	names := make([]string, 0, len(f.Tensors))
	for name := range f.Dtypes {
		names = append(names, name)
	}
	sort.Strings(names)
	counters := map[string]bool{}
	for _, bn := range arch.BatchNorms() {
		counters[bn+NumBatchesTracked] = true
	}
	for _, name := range names {
		if _, ok := f.Ints[name]; ok && counters[name] {
			continue // batch norm's batch count: PyTorch's, not used here
		}
		t, ok := f.Tensors[name]
		if !ok {
			return nil, bad("tensor %s has dtype %s; sqnet checkpoints are F32 (and I64 batch counts)", name,
				f.Dtypes[name])
		}
		if rest, isOptim := strings.CutPrefix(name, OptimPrefix); isOptim {
			ck.Optim[rest] = t.Data
			continue
		}
		ck.Weights[name] = t.Data
	}
	for _, p := range arch.Params(ck.Quant) {
		if t, ok := f.Tensors[p.Name]; ok && fmt.Sprint(t.Shape) != fmt.Sprint(p.Shape) {
			return nil, bad("%s has shape %v, model %s needs %v", p.Name, t.Shape, arch.Name, p.Shape)
		}
	}
	if err := arch.Check(ck.Quant, ck.Weights); err != nil {
		return nil, bad("%v", err)
	}
	return ck, nil
}

// InitFrom returns the starting weights of a run that fine-tunes from src (train --init): every network
// parameter of a with quantizer q is taken from src, which must hold it under the same name and shape, and src
// must hold nothing else but a quantizer's thresholds and optimizer state. The quantizer itself is q's, fresh from
// Init (its default or fixed thresholds): the paper's ImageNet path puts a quantizer in front of a naturally
// trained network, whose checkpoint has none. An error names the first tensor that does not fit.
func (a Arch) InitFrom(q *quant.Config, seed uint64, src *Checkpoint, path string) (Weights, error) {
	w := a.Init(q, seed)
	have := map[string][]int{}
	for _, p := range src.Arch.Params(src.Quant) {
		have[p.Name] = p.Shape
	}
	for _, p := range a.Params(q) {
		if p.Name == ThresholdsName {
			continue
		}
		shape, ok := have[p.Name]
		if !ok {
			return nil, fmt.Errorf("--init %s: no tensor %s (it holds a %s model; this run trains %s)", path, p.Name,
				src.Arch.Name, a.Name)
		}
		if fmt.Sprint(shape) != fmt.Sprint(p.Shape) {
			return nil, fmt.Errorf("--init %s: tensor %s is %v there and %v in %s on %dx%dx%d inputs with %d classes",
				path, p.Name, shape, p.Shape, a.Name, a.C, a.H, a.W, a.Classes)
		}
		w[p.Name] = append([]float32(nil), src.Weights[p.Name]...)
		delete(have, p.Name)
	}
	delete(have, ThresholdsName)
	if len(have) > 0 {
		var extra []string
		for name := range have {
			extra = append(extra, name)
		}
		sort.Strings(extra)
		return nil, fmt.Errorf("--init %s: tensor %s has no place in %s", path, extra[0], a.Name)
	}
	return w, nil
}
