package attack

import (
	"fmt"

	"github.com/sqnet/sqnet/graph"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
)

// Stepper runs an attack a few steps at a time and keeps the adversarial batch on the device between calls, so a
// person can watch predictions flip (sqnet view). It starts at the clean images — no random start — so what is
// shown is the attack's own drift, and it has no restarts.
type Stepper struct {
	cfg             Config
	arch            model.Arch
	prog            *graph.Program
	x0, y, adv      *graph.Tensor
	predX0, predAdv *graph.Tensor
	steps           int
}

// NewStepper compiles cfg for ck with each Step taking cfg.Steps projected gradient steps on a batch of
// cfg.Batch examples. cfg.EOT is not supported (it needs fresh noise per call); cfg.RandomStart and
// cfg.Restarts are ignored.
func NewStepper(lib *kernels.Lib, ck *model.Checkpoint, cfg Config) (*Stepper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.EOT > 1 {
		return nil, fmt.Errorf("attack %s: a stepped attack does not support EOT", cfg.Name)
	}
	arch := ck.Arch
	g := graph.New(lib)
	net := evalNet(g, arch, ck.Quant)
	s := &Stepper{cfg: cfg, arch: arch}
	s.x0 = g.State("x0", cfg.Batch, arch.C, arch.H, arch.W)
	s.y = g.Temp("labels", graph.U32, cfg.Batch)
	g.Keep(s.y) // written by Reset, read by every step
	s.adv = g.State("x_adv", cfg.Batch, arch.C, arch.H, arch.W)
	var err error
	g.Repeat(cfg.Steps, func() { err = addStep(g, net, s.x0, s.adv, s.y, nil, nil, cfg) })
	if err != nil {
		return nil, fmt.Errorf("attack %s: %w", cfg.Name, err)
	}
	deployed := deployModes(cfg.Deploy)[0]
	s.predX0 = g.Argmax(net.Forward(g, s.x0, deployed))
	s.predAdv = g.Argmax(net.Forward(g, s.adv, deployed))
	p, err := compileWith(g, net, ck, "attack "+cfg.Name)
	if err != nil {
		return nil, err
	}
	s.prog = p
	return s, nil
}

// Close frees the stepper's device memory.
func (s *Stepper) Close() { s.prog.Close() }

// Steps is how many gradient steps have been taken since the last Reset.
func (s *Stepper) Steps() int { return s.steps }

// Reset starts over on up to Batch examples (NCHW floats in [0, 1]) and their labels: the adversarial batch
// becomes the clean one. Rows past n repeat the first example.
func (s *Stepper) Reset(images []float32, labels []uint8, n int) error {
	sz := s.arch.C * s.arch.H * s.arch.W
	if n <= 0 || n > s.cfg.Batch || len(images) < n*sz || len(labels) < n {
		return fmt.Errorf("stepper: %d examples (batch %d) need %d floats and %d labels, got %d and %d", n,
			s.cfg.Batch, n*sz, n, len(images), len(labels))
	}
	xb, yb := make([]float32, s.cfg.Batch*sz), make([]uint32, s.cfg.Batch)
	for i := range s.cfg.Batch {
		src := i
		if src >= n {
			src = 0
		}
		copy(xb[i*sz:(i+1)*sz], images[src*sz:(src+1)*sz])
		yb[i] = uint32(labels[src])
	}
	s.steps = 0
	for _, w := range []struct {
		t *graph.Tensor
		f []float32
	}{{s.x0, xb}, {s.adv, xb}} {
		if err := graph.Write(s.prog, w.t, w.f); err != nil {
			return err
		}
	}
	return graph.Write(s.prog, s.y, yb)
}

// Step runs cfg.Steps more gradient steps (one submit) and the predictions on the clean and adversarial batch.
func (s *Stepper) Step() error {
	if err := s.prog.Run(); err != nil {
		return err
	}
	s.steps += s.cfg.Steps
	return nil
}

// Read copies the adversarial batch and both predictions to the host; each slice is sized for the whole batch.
func (s *Stepper) Read(adv []float32, predClean, predAdv []uint32) error {
	if err := graph.Read(s.prog, s.adv, adv); err != nil {
		return err
	}
	if err := graph.Read(s.prog, s.predX0, predClean); err != nil {
		return err
	}
	return graph.Read(s.prog, s.predAdv, predAdv)
}
