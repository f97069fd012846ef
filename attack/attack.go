// Package attack implements ℓ∞ adversarial attacks against sqnet's models — FGSM and PGD (random start, restarts,
// cross-entropy or CW margin loss, untargeted or targeted), BPDA through the quantizer — and keeps the
// per-example worst case: an example counts as robust only if it survives every restart and every attack.
//
// A whole attack on a batch (random start, every step's forward, backward and projected step, then the final
// classification) is recorded into one command buffer and submitted once per restart.
package attack

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/sqnet/sqnet/graph"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/vk"
)

// Config describes one attack.
type Config struct {
	Name     string  // for reports, e.g. "pgd-40"
	Eps      float32 // ℓ∞ radius, ≥ 0
	Step     float32 // η per step
	Steps    int     // k ≥ 1; FGSM is one step of η = ε without random start
	Restarts int     // R ≥ 1
	// RandomStart begins each restart at x0 + U(−ε, ε) (clipped to [0, 1]) instead of x0.
	RandomStart bool
	Loss        string  // "ce" (cross-entropy) or "cw" (Carlini–Wagner margin)
	Kappa       float32 // CW confidence clamp (+Inf: none)
	// Targeted attacks push towards Targets (given to Run) instead of away from the labels.
	Targeted bool
	// Through is how the model's quantizer behaves for the attacker's gradient: quant.Soft (the trained function's
	// true gradient), quant.BPDAIdentity or quant.BPDASoft (forward hard, backward identity or soft surrogate).
	Through quant.Mode
	// Deploy lists the classifiers every adversarial candidate is judged by — the deployed model, with its soft or
	// hard quantizer (see Deployed), or both — and Run returns a Result for each, in this order. Empty means
	// quant.Soft alone. For a model without a quantizer the modes are one classifier.
	Deploy []quant.Mode
	// EOT > 1 averages each step's gradient over EOT draws of uniform input noise of radius EOTNoise
	// (Expectation over Transformation, Athalye et al.), for defences that randomise their input; every draw of
	// every step is a different Philox stream.
	EOT      int
	EOTNoise float32
	Seed     uint64
	Batch    int
	// FirstID is the id of the first example given to Run. Random starts and EOT draws are per example, keyed by
	// the example's id (FirstID + its position) and the restart, so a slice of a test set evaluated on its own
	// (a shard, with FirstID its offset) draws exactly what the whole run draws for those examples.
	FirstID int
	// RNGOffset is, for an attack built without example ids (adversarial training's inner attack), where this
	// batch's elements start in the Philox stream (kernels.RNG.Offset): a data-parallel replica training on a slice
	// of a batch draws the random start one device would draw for that slice.
	RNGOffset uint32
}

// FGSM returns the fast gradient sign method at radius eps: one step of η = ε from the clean image.
func FGSM(eps float32) Config {
	return Config{Name: "fgsm", Eps: eps, Step: eps, Steps: 1, Restarts: 1, Loss: "ce", Through: quant.Soft,
		Batch: 100, Kappa: float32(math.Inf(1))}
}

// PGD returns Madry et al.'s attack: k steps of size η from a random start in the ε-ball, R restarts.
func PGD(eps, step float32, steps, restarts int) Config {
	return Config{Name: fmt.Sprintf("pgd-%d", steps), Eps: eps, Step: step, Steps: steps, Restarts: restarts,
		RandomStart: true, Loss: "ce", Through: quant.Soft, Batch: 100, Kappa: float32(math.Inf(1))}
}

// PGDk returns PGD with k steps whose size follows Madry et al.'s rule η = 2.5·ε/k (at least 0.01), so the
// steps together travel well past the ball's radius: the evaluation suites, accuracy curves and reproductions all
// use it.
func PGDk(eps float32, k, restarts int) Config {
	c := PGD(eps, max(0.01, 2.5*eps/float32(k)), k, restarts)
	c.Name = fmt.Sprintf("pgd-%d×%d", k, restarts)
	return c
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case !(c.Eps >= 0) || math.IsInf(float64(c.Eps), 0):
		return fmt.Errorf("attack %s: ε = %v, must be finite and ≥ 0", c.Name, c.Eps)
	case !(c.Step >= 0) || math.IsInf(float64(c.Step), 0):
		return fmt.Errorf("attack %s: step η = %v, must be finite and ≥ 0", c.Name, c.Step)
	case c.Steps < 1:
		return fmt.Errorf("attack %s: %d steps, need at least 1", c.Name, c.Steps)
	case c.Restarts < 1:
		return fmt.Errorf("attack %s: %d restarts, need at least 1", c.Name, c.Restarts)
	case c.Loss != "ce" && c.Loss != "cw":
		return fmt.Errorf("attack %s: loss %q, want ce or cw", c.Name, c.Loss)
	case c.Batch < 1:
		return fmt.Errorf("attack %s: batch %d", c.Name, c.Batch)
	case c.FirstID < 0 || c.FirstID > math.MaxUint32:
		return fmt.Errorf("attack %s: first example id %d, want 0 ≤ id < 2³²", c.Name, c.FirstID)
	case c.Through == quant.Hard:
		return fmt.Errorf("attack %s: a hard quantizer passes no gradient; attack through it with bpda", c.Name)
	case c.EOT < 0 || (c.EOT > 1 && !(c.EOTNoise > 0)):
		return fmt.Errorf("attack %s: EOT over %d draws of noise radius %v", c.Name, c.EOT, c.EOTNoise)
	}
	return checkDeploy(c.Name, c.Deploy)
}

// Result is an attack's outcome on a set of examples.
type Result struct {
	Name     string     `json:"name"`
	Eps      float32    `json:"eps"`
	Deploy   quant.Mode `json:"deploy"` // the classifier the candidates were judged by
	N        int        `json:"n"`
	Correct  int        `json:"robust"` // examples still classified correctly (untargeted) or not pushed to the target
	Accuracy float64    `json:"robust_accuracy"`
	Robust   []bool     `json:"-"` // per example
	Adv      []float32  `json:"-"` // the adversarial example of each example's first successful restart (else the last)
	Pred     []uint32   `json:"-"` // the prediction on Adv
	Seconds  float64    `json:"seconds"`
	Submits  int        `json:"submits"`
	Queries  int64      `json:"queries,omitempty"` // model evaluations (AutoAttack's family; see AAStep)
}

// Attacker is a compiled attack for one model and configuration.
type Attacker struct {
	cfg   Config
	ck    *model.Checkpoint
	net   *model.Net
	prog  *graph.Program
	x0, y *graph.Tensor
	adv   *graph.Tensor
	pred  []*graph.Tensor // per deployed classifier (cfg's Deploy order)
	step  *graph.Tensor   // the random start's RNG attempt: the restart
	ids   *graph.Tensor   // each row's example id
	modes []quant.Mode
}

// Build adds an attack to a graph: x_adv starts at x0 — plus uniform noise in the ε-ball when cfg.RandomStart, its
// RNG step read at run time from step (one uint32; nil without random start) so a recorded attack replays with a
// fresh start — and takes cfg.Steps projected gradient steps on net's loss against y (labels, or targets). The
// returned x_adv is State, written in place. With ids (uint32 per row) the random start and EOT's draws are
// per example — Philox streams keyed by (example id, step), kernels.ExampleRNG — so an example's attack does not
// depend on the batch, slot or shard it runs in (evaluations); without, they are keyed by step and position in
// the batch (adversarial training, whose batches are the unit anyway). Adversarial training builds its inner
// attack with it.
func Build(g *graph.Graph, net *model.Net, x0, y, step, ids *graph.Tensor, cfg Config) (*graph.Tensor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lib := g.Lib()
	adv := g.State("x_adv", x0.Shape...)
	if cfg.RandomStart {
		if step == nil {
			return nil, fmt.Errorf("attack %s: a random start needs an RNG step tensor", cfg.Name)
		}
		// PGD's random start x0 + U(−ε, ε), clipped to [0, 1], is exactly uniform noise of radius ε.
		g.Add(&graph.Op{Name: "random start", In: graph.NonNil(x0, step, ids), Out: []*graph.Tensor{adv},
			Run: func(r *vk.Recorder, at graph.Binder) error {
				return uniformNoise(lib, r, at, x0, adv, step, ids, cfg.Eps, kernels.RNG{Seed: cfg.Seed, Stream: rngStream, Offset: cfg.RNGOffset})
			}})
	} else {
		g.Copy(adv, x0)
	}
	var err error
	g.Repeat(cfg.Steps, func() { err = addStep(g, net, x0, adv, y, step, ids, cfg) })
	if err != nil {
		return nil, fmt.Errorf("attack %s: %w", cfg.Name, err)
	}
	return adv, g.Err()
}

// uniformNoise records y = clip(x + U(−eps, eps)) from Philox stream (g.Seed, g.Stream) at the run-time step: per
// example (counter (j/4, stream, id, step)) when ids is given, else per position in the batch (counter (i/4 +
// g.Offset/4, stream, step, 0)).
func uniformNoise(lib *kernels.Lib, r *vk.Recorder, at graph.Binder, x, y, step, ids *graph.Tensor, eps float32,
	g kernels.RNG) error {
	if ids == nil {
		return lib.UniformNoiseDynamic(r, at(x), at(y), at(step), x.Elems(), eps, g)
	}
	b := x.Shape[0]
	return lib.UniformNoiseExample(r, at(x), at(y), at(step), at(ids), b, x.Elems()/b, eps,
		kernels.ExampleRNG{Seed: g.Seed, Stream: g.Stream})
}

// addStep adds one projected gradient step of adv (State) on net's loss against y, inside the ε-ball around x0.
func addStep(g *graph.Graph, net *model.Net, x0, adv, y, step, ids *graph.Tensor, cfg Config) error {
	// Untargeted attacks ascend the loss of the true label; targeted ones descend the loss of the target.
	scale := float32(1)
	if cfg.Targeted {
		scale = -1
	}
	grad, err := stepGradient(g, net, adv, y, step, ids, cfg, scale)
	if err != nil {
		return err
	}
	lib, n := g.Lib(), adv.Elems()
	g.Add(&graph.Op{Name: "pgd step", In: []*graph.Tensor{adv, grad, x0}, Out: []*graph.Tensor{adv},
		Run: func(r *vk.Recorder, at graph.Binder) error {
			return lib.PGDStep(r, at(adv), at(grad), at(x0), n, cfg.Step, cfg.Eps)
		}})
	return nil
}

// rngStream is the Philox stream of attack random starts (training noise uses stream 0); EOT's draws use the
// streams above it.
const rngStream = 1

// lossOf adds the attack's per-example loss on logits.
func lossOf(g *graph.Graph, logits, y *graph.Tensor, cfg Config) *graph.Tensor {
	if cfg.Loss == "cw" {
		return g.CWMargin(logits, y, cfg.Kappa)
	}
	return g.SoftmaxCrossEntropy(logits, y)
}

// stepGradient adds one step's gradient of the attack loss with respect to adv: directly, or with EOT summed over
// cfg.EOT noisy copies (a sum has the mean's sign, which is all a PGD step uses). The gradient with respect to a
// noisy copy stands for the one with respect to adv, as noise is added (clipping aside).
func stepGradient(g *graph.Graph, net *model.Net, adv, y, step, ids *graph.Tensor, cfg Config, scale float32) (*graph.Tensor, error) {
	if cfg.EOT <= 1 {
		if err := g.Backward(lossOf(g, net.Forward(g, adv, cfg.Through), y, cfg), scale, adv); err != nil {
			return nil, err
		}
		return adv.Grad, nil
	}
	if step == nil {
		return nil, fmt.Errorf("attack %s: EOT needs an RNG step tensor", cfg.Name)
	}
	lib := g.Lib()
	sum := g.State("eot.grad", adv.Shape...)
	for d := 0; d < cfg.EOT; d++ {
		noisy := g.Temp(fmt.Sprintf("x_adv.eot%d", d), graph.F32, adv.Shape...)
		g.Add(&graph.Op{Name: "eot noise", In: graph.NonNil(adv, step, ids), Out: []*graph.Tensor{noisy},
			Run: func(r *vk.Recorder, at graph.Binder) error {
				// A different stream for every draw of every step: the recorded loop draws fresh noise each time.
				stream := uint32(rngStream + 1 + g.Iteration()*cfg.EOT + d)
				return uniformNoise(lib, r, at, adv, noisy, step, ids, cfg.EOTNoise, kernels.RNG{Seed: cfg.Seed, Stream: stream, Offset: cfg.RNGOffset})
			}})
		if err := g.Backward(lossOf(g, net.Forward(g, noisy, cfg.Through), y, cfg), scale, noisy); err != nil {
			return nil, err
		}
		if d == 0 {
			g.Copy(sum, noisy.Grad)
		} else {
			g.AddInto(sum, noisy.Grad)
		}
	}
	return sum, g.Err()
}

// New compiles the attack against a checkpoint's model on lib's device.
func New(lib *kernels.Lib, ck *model.Checkpoint, cfg Config) (*Attacker, error) {
	a := &Attacker{cfg: cfg, ck: ck} // Build validates cfg
	g := graph.New(lib)
	arch := ck.Arch
	a.net = evalNet(g, arch, ck.Quant)
	a.x0 = g.Input("x0", graph.F32, cfg.Batch, arch.C, arch.H, arch.W)
	a.y = g.Input("labels", graph.U32, cfg.Batch)
	a.step = g.Input("rng.step", graph.U32, 1)
	a.ids = g.Input("ids", graph.U32, cfg.Batch)
	adv, err := Build(g, a.net, a.x0, a.y, a.step, a.ids, cfg)
	if err != nil {
		return nil, err
	}
	a.adv = adv
	a.modes = deployModes(cfg.Deploy)
	for _, m := range distinctModes(ck, a.modes) {
		a.pred = append(a.pred, g.Argmax(a.net.Forward(g, a.adv, m)))
	}
	p, err := compileWith(g, a.net, ck, "attack "+cfg.Name)
	if err != nil {
		return nil, err
	}
	a.prog = p
	return a, nil
}

// Profile reruns the last batch's attack with a timestamp after every graph op and returns the device time per op
// name (graph.Program.Profile), for finding where an attack's time goes.
func (a *Attacker) Profile() (*graph.Profile, error) { return a.prog.Profile() }

// Close frees the attack's device memory.
func (a *Attacker) Close() { a.prog.Close() }

// Run attacks the n images (NCHW floats in [0, 1]) with their labels; targeted attacks also take targets (nil
// otherwise). Each example keeps its worst case over the restarts. The result is the first deployed classifier's;
// RunAll returns every one.
func (a *Attacker) Run(images []float32, labels []uint8, targets []uint8, n int) (*Result, error) {
	rs, err := a.RunAll(images, labels, targets, n)
	if err != nil {
		return nil, err
	}
	return rs[0], nil
}

// RunAll is Run with a Result for each deployed classifier of the configuration, in its Deploy order: an example
// is robust against a classifier when no restart's final point fools it.
func (a *Attacker) RunAll(images []float32, labels []uint8, targets []uint8, n int) ([]*Result, error) {
	arch := a.ck.Arch
	sz := arch.C * arch.H * arch.W
	if n <= 0 || len(images) < n*sz || len(labels) < n {
		return nil, fmt.Errorf("attack: %d examples need %d floats and %d labels, got %d and %d", n, n*sz, n,
			len(images), len(labels))
	}
	if a.cfg.Targeted && len(targets) < n {
		return nil, fmt.Errorf("attack: a targeted attack needs %d targets, got %d", n, len(targets))
	}
	start := time.Now()
	res := make([]*Result, len(a.modes))
	for k, m := range a.modes {
		res[k] = &Result{Name: a.cfg.Name, Eps: a.cfg.Eps, Deploy: m, N: n, Robust: make([]bool, n),
			Adv: make([]float32, n*sz), Pred: make([]uint32, n)}
		for i := range res[k].Robust {
			res[k].Robust[i] = true
		}
	}
	bs := a.cfg.Batch
	xb, yb, ib := make([]float32, bs*sz), make([]uint32, bs), make([]uint32, bs)
	advb, predb := make([]float32, bs*sz), make([]uint32, bs)
	submits := 0
	for lo := 0; lo < n; lo += bs {
		hi := min(lo+bs, n)
		// Padding rows repeat the first example; rows never interact, and their results are ignored.
		for i := 0; i < bs; i++ {
			src := lo + i
			if src >= hi {
				src = lo
			}
			copy(xb[i*sz:(i+1)*sz], images[src*sz:(src+1)*sz])
			yb[i], ib[i] = uint32(labels[src]), uint32(a.cfg.FirstID+src)
			if a.cfg.Targeted {
				yb[i] = uint32(targets[src])
			}
		}
		for r := 0; r < a.cfg.Restarts; r++ {
			// Every (example, restart) draws its own start.
			if err := graph.Write(a.prog, a.step, []uint32{uint32(r)}); err != nil {
				return nil, err
			}
			if err := graph.Write(a.prog, a.ids, ib); err != nil {
				return nil, err
			}
			if err := graph.Write(a.prog, a.x0, xb); err != nil {
				return nil, err
			}
			if err := graph.Write(a.prog, a.y, yb); err != nil {
				return nil, err
			}
			if err := a.prog.Run(); err != nil {
				return nil, err
			}
			submits++
			if err := graph.Read(a.prog, a.adv, advb); err != nil {
				return nil, err
			}
			for k, rk := range res {
				if err := graph.Read(a.prog, a.pred[min(k, len(a.pred)-1)], predb); err != nil {
					return nil, err
				}
				for i := lo; i < hi; i++ {
					j := i - lo
					fooled := predb[j] != uint32(labels[i])
					if a.cfg.Targeted {
						fooled = predb[j] == uint32(targets[i])
					}
					// Keep the first example that fools the classifier; until one does, the latest attempt.
					if rk.Robust[i] {
						copy(rk.Adv[i*sz:(i+1)*sz], advb[j*sz:(j+1)*sz])
						rk.Pred[i] = predb[j]
					}
					if fooled {
						rk.Robust[i] = false
					}
				}
			}
		}
	}
	for _, r := range res {
		for _, ok := range r.Robust {
			if ok {
				r.Correct++
			}
		}
		r.Accuracy = float64(r.Correct) / float64(n)
		r.Seconds, r.Submits = time.Since(start).Seconds(), submits
	}
	return res, nil
}

// MarshalJSON writes the configuration for reports; an infinite κ (no clamp) is written as null, which JSON can
// hold and +Inf it cannot.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	var kappa *float32
	if !math.IsInf(float64(c.Kappa), 0) {
		kappa = &c.Kappa
	}
	return json.Marshal(struct {
		plain
		Kappa *float32 `json:"Kappa"`
	}{plain(c), kappa})
}
