// Package train trains sqnet's models: the methods (natural now; noisy-sq, pgd-at, fgsm-rs and gradreg follow the
// paper issue), the epoch loop with seeded shuffling, checkpoints that resume bit-identically, and progress.
package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sqnet/sqnet/attack"
	"github.com/sqnet/sqnet/data"
	"github.com/sqnet/sqnet/dist"
	"github.com/sqnet/sqnet/graph"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/vk"
)

// Methods lists the training methods Run accepts:
//
//   - natural: clean images.
//   - noisy-sq: the paper's method (arXiv 1810.05665): a soft-quantization layer after the input (the default
//     2,50 when --quant is not given), trained on noisy natural samples clip(x + U(−ε_n, ε_n), 0, 1) with fresh
//     noise every step, drawn on the device.
//   - noise: the same noise without a quantizer (the ablation).
//   - pgd-at: Madry et al.'s PGD adversarial training: every step trains on PGD-k adversarial examples (random
//     start, k steps of η within ε), computed on the device inside the recorded step.
//   - fgsm-rs: Wong et al.'s fast adversarial training: one FGSM step of 1.25ε from a random start, with their
//     guard against catastrophic overfitting (training stops, keeping the best epoch, when PGD accuracy on held-out
//     images collapses).
//   - gradreg: the paper's reformulated objective made explicit, loss + ε·‖∇ₓ loss‖₁ (see gradRegStep).
var Methods = []string{"natural", "noisy-sq", "noise", "pgd-at", "fgsm-rs", "gradreg"}

// Config is everything a training run needs. Zero values mean the defaults in Defaults.
type Config struct {
	Model   string
	Dataset string
	DataDir string
	Method  string
	Quant   *quant.Config // a soft quantizer after the input; nil for none (noisy-sq defaults it)
	// Deploy is the classifier the checkpoint records it is deployed as, which every evaluation then judges by:
	// quant.Soft (the model as trained, the default) or quant.Hard (the hard quantizer at test time; needs Quant).
	Deploy quant.Mode
	// AlphaEpochs anneals the quantizer's steepness: epoch e (from 1) trains with AlphaEpochs[e−1] while there is
	// one, and with Quant.Alpha after them — the α the checkpoint keeps and every evaluation uses.
	AlphaEpochs []float32
	NoiseEps    float32 // noisy-sq and noise: ε_n of the uniform noise (default: the attack's ε)
	Eps         float32 // pgd-at and fgsm-rs: the threat model's ε (default 0.3, MNIST)
	PGDSteps    int     // pgd-at: inner steps k (default 40)
	PGDStep     float32 // pgd-at: inner step η (default 0.01)
	GradRegH    float32 // gradreg: finite-difference step h along sign(∇ₓ loss) (default ε/10)
	Epochs      int
	Batch       int
	Optimizer   Optimizer
	Seed        uint64
	// TimeBudget stops training once the steps alone (evaluations excluded) have taken this long; the epoch under
	// way is then cut short, evaluated and saved like a whole one. 0: no limit. Reproductions give pgd-at a
	// multiple of noisy-sq's measured time with it (the paper's comparison at equal cost).
	TimeBudget time.Duration
	Limit      int // train on the first Limit examples (0: all)
	TestLimit  int // evaluate on the first TestLimit test examples (0: all)
	Out        string
	Resume     string // checkpoint to continue from
	// Init is a checkpoint whose network weights start the run (fine-tuning; see model.Arch.InitFrom): a fresh
	// optimizer, step 0, the quantizer from Quant. Not with Resume.
	Init string
	// Progress receives a progress bar (a terminal) or one line per epoch (anything else); nil for silence.
	Progress io.Writer
	// Terminal says whether Progress is a terminal (live bar) or a log (lines).
	Terminal bool
	// ImageSize is the side of an image folder's images (--dataset folder; 0: data.DefaultFolderSize).
	ImageSize int
	// Augment is the training images' augmentation: "none", or "crop-flip" (4-pixel zero-padded random crop and
	// horizontal flip, drawn per step from the seed); "" is the dataset's usual one (crop-flip for CIFAR-10).
	Augment string
	// ProgressFile, when set, is rewritten (atomically, every few seconds) with the step, epoch and ETA as JSON
	// (internal/progressfile), for sqnet sweep status to read.
	ProgressFile string
	// OnEpoch, when set, is called after each epoch's checkpoint is written (reproduce evaluates it there).
	OnEpoch func(e EpochResult, checkpoint string) error
	// TrackEvery, when above 0, calls OnTrack every TrackEvery steps inside an epoch (an epoch's last step calls
	// OnEpoch instead) with the training time so far and the model after that step, as its checkpoint would hold
	// it; the time OnTrack takes is left out of the training clock and the time budget.
	TrackEvery int
	OnTrack    func(step int, trainSeconds float64, ck *model.Checkpoint) error
	// Profile, when set, times every op of one more training step after the last epoch (graph.Program.Profile)
	// into Result.Profile. That step trains the program's weights, after the checkpoint was written: the
	// checkpoint does not see it.
	Profile bool
	// ExtraDevices are more devices of this process for data-parallel training: every step's batch (Batch stays
	// the global batch) is split evenly over lib and these, in that order (see parallel).
	ExtraDevices []*kernels.Lib
	// Comm is the job of a multi-process data-parallel run (dist.Open): each process's devices take their share of
	// every batch, gradients are summed over processes, and only rank 0 writes checkpoints. nil: one process.
	Comm dist.Comm

	replica *replicaSpec // a data-parallel replica's rows (set by parallel on each replica's copy)
}

// Defaults returns the default configuration: small on MNIST, natural training, Adam 1e-3, batch 50, 3 epochs
// (98.8% test accuracy on real MNIST, about 5 minutes on lavapipe with 2 cores).
func Defaults() Config {
	return Config{Model: "small", Dataset: "mnist", Method: "natural", Epochs: 3, Batch: 50,
		Optimizer: Optimizer{Kind: "adam", LR: 1e-3}, Seed: 1, Out: "sqnet-model.safetensors", Eps: 0.3,
		PGDSteps: 40, PGDStep: 0.01}
}

// EpochResult is one epoch's numbers.
type EpochResult struct {
	Epoch        int     `json:"epoch"`
	TrainLoss    float64 `json:"train_loss"`
	TrainAcc     float64 `json:"train_accuracy"`
	TestAcc      float64 `json:"test_accuracy"`
	Seconds      float64 `json:"seconds"`
	ImagesPerSec float64 `json:"images_per_second"`
	// TrainSeconds is the training time so far, this epoch included: the steps alone, without test evaluations
	// and OnEpoch callbacks (what a method costs).
	TrainSeconds float64 `json:"train_seconds"`
	// GuardPGD is fgsm-rs's held-out PGD accuracy after the epoch (the catastrophic-overfitting guard).
	GuardPGD float64 `json:"guard_pgd_accuracy,omitempty"`
	Note     string  `json:"note,omitempty"`
}

// Result is what a run did.
type Result struct {
	Device     string        `json:"device"`
	Epochs     []EpochResult `json:"epochs"`
	Steps      int           `json:"steps"`
	Checkpoint string        `json:"checkpoint"`
	Seconds    float64       `json:"seconds"`
	ArenaBytes uint64        `json:"arena_bytes"`     // planned memory of the step's temporaries
	NaiveBytes uint64        `json:"unplanned_bytes"` // what they would take without reuse
	KeptBytes  uint64        `json:"kept_bytes"`      // parameters, gradients, optimizer state, inputs
	Dispatches int           `json:"dispatches_per_step"`
	Replicas   int           `json:"replicas"`          // data-parallel replicas over every process (1: one device)
	Stopped    string        `json:"stopped,omitempty"` // why training stopped early, if it did
	Profile    *StepProfile  `json:"profile,omitempty"` // with Config.Profile
}

// StepProfile is where one training step's time goes: the profiled step's ops by name (most expensive first), its
// wall time and timestamp span (graph.Profile), and the average step of the timed run for comparison.
type StepProfile struct {
	graph.Profile
	// StepSeconds is the wall time of an average step of the run (its training time over its steps): the ops and
	// everything else — submits, host waits, the batch's upload — without the timestamps' own cost.
	StepSeconds float64 `json:"step_seconds"`
}

// BadInput marks an error in what the caller asked for — flags, a dataset or checkpoint file — found before any
// training started, as opposed to a failure while training; the CLI exits with code 2 for it.
type BadInput struct{ Err error }

func (b BadInput) Error() string { return b.Err.Error() }
func (b BadInput) Unwrap() error { return b.Err }

// ErrInitAndResume refuses --init with --resume: a resumed run already has its weights.
var ErrInitAndResume = errors.New("--init and --resume: a resumed run already has its weights; give one")

// ErrInterrupted is returned when the context was cancelled; the checkpoint was saved first.
var ErrInterrupted = errors.New("training interrupted; checkpoint saved, continue with --resume")

// Validate checks a configuration before any work starts and fills in the defaults that depend on others
// (noisy-sq's quantizer, ε_n, gradreg's h). Run calls it; callers planning several runs can check first.
func (c *Config) Validate() error {
	switch {
	case c.Epochs <= 0:
		return fmt.Errorf("--epochs %d: must be ≥ 1", c.Epochs)
	case c.Batch <= 0:
		return fmt.Errorf("--batch %d: must be ≥ 1", c.Batch)
	case c.Out == "":
		return fmt.Errorf("--out: a checkpoint path is required")
	case c.Limit < 0 || c.TestLimit < 0:
		return fmt.Errorf("--limit and --test-limit must be ≥ 0")
	case c.TimeBudget < 0:
		return fmt.Errorf("time budget %s: must be ≥ 0", c.TimeBudget)
	}
	known := false
	for _, m := range Methods {
		known = known || m == c.Method
	}
	if !known {
		return fmt.Errorf("--method %q: known methods: %v", c.Method, Methods)
	}
	if c.Method == "noisy-sq" && c.Quant == nil {
		q := quant.Default
		c.Quant = &q
	}
	if c.NoiseEps == 0 {
		c.NoiseEps = c.Eps
	}
	if c.Method == "gradreg" && c.GradRegH == 0 {
		c.GradRegH = c.Eps / 10
	}
	switch {
	case c.Dataset == "folder" && c.ImageSize == 0:
		c.ImageSize = data.DefaultFolderSize
	case c.Dataset == "folder" && (c.ImageSize < 8 || c.ImageSize > 1024):
		return fmt.Errorf("--image-size %d: want 8 to 1024 pixels", c.ImageSize)
	case c.Dataset != "folder" && c.ImageSize != 0:
		return fmt.Errorf("--image-size: only for --dataset folder (%s has fixed-size images)", c.Dataset)
	}
	if c.Augment == "" {
		c.Augment = data.DefaultAugmentation(c.Dataset)
	}
	if !slices.Contains(data.Augmentations, c.Augment) {
		return fmt.Errorf("--augment %q: want %s", c.Augment, strings.Join(data.Augmentations, " or "))
	}
	switch {
	case !(c.Eps >= 0 && c.Eps <= 1):
		return fmt.Errorf("--eps %v: want 0 ≤ ε ≤ 1 (pixels are in [0, 1])", c.Eps)
	case !(c.NoiseEps >= 0 && c.NoiseEps <= 1):
		return fmt.Errorf("--noise-eps %v: want 0 ≤ ε_n ≤ 1 (pixels are in [0, 1])", c.NoiseEps)
	case c.Method == "gradreg" && !(c.GradRegH > 0):
		return fmt.Errorf("--gradreg-h %v: must be > 0", c.GradRegH)
	case c.PGDSteps < 1 || !(c.PGDStep > 0):
		return fmt.Errorf("--pgd-steps %d / --pgd-step %v: need at least one step of positive size", c.PGDSteps,
			c.PGDStep)
	}
	if c.Quant != nil {
		if err := c.Quant.Validate(); err != nil {
			return err
		}
	}
	if len(c.AlphaEpochs) > 0 && c.Quant == nil {
		return fmt.Errorf("--alpha-epochs: needs a quantizer (--quant)")
	}
	switch {
	case c.Deploy != quant.Soft && c.Deploy != quant.Hard:
		return fmt.Errorf("--deploy %s: want soft or hard", c.Deploy)
	case c.Deploy == quant.Hard && c.Quant == nil:
		return fmt.Errorf("--deploy hard: needs a quantizer (--quant)")
	}
	for _, a := range c.AlphaEpochs {
		if !(a > 0) || math.IsInf(float64(a), 0) {
			return fmt.Errorf("--alpha-epochs: α = %v, need finite values > 0", a)
		}
	}
	return c.Optimizer.Validate()
}

// alphaAt is the quantizer's steepness during epoch e (from 0); 0 without a quantizer.
func (c *Config) alphaAt(e int) float32 {
	switch {
	case c.Quant == nil:
		return 0
	case e < len(c.AlphaEpochs):
		return c.AlphaEpochs[e]
	}
	return c.Quant.Alpha
}

// epochConfig is c with the quantizer's α of epoch e (c itself when nothing is annealed).
func (c Config) epochConfig(e int) Config {
	if c.Quant == nil || c.alphaAt(e) == c.Quant.Alpha {
		return c
	}
	q := *c.Quant
	q.Alpha = c.alphaAt(e)
	c.Quant = &q
	return c
}

// session is a training run's compiled state.
type session struct {
	cfg     Config
	arch    model.Arch
	net     *model.Net
	prog    *graph.Program
	x, y    *graph.Tensor
	loss    *graph.Tensor
	correct *graph.Tensor
	upd     *updates
	step    *graph.Tensor // the RNG step of noise and random starts (nil for natural training)
}

// Run trains according to cfg on lib's device. Cancelling ctx stops after the current step, saves a checkpoint
// and returns ErrInterrupted.
func Run(ctx context.Context, lib *kernels.Lib, cfg Config) (*Result, error) {
	start := time.Now()
	resume, initCk, trainSrc, testSet, arch, err := prepare(&cfg)
	if err != nil {
		return nil, BadInput{err}
	}
	weights := arch.Init(cfg.Quant, cfg.Seed)
	if initCk != nil {
		if weights, err = arch.InitFrom(cfg.Quant, cfg.Seed, initCk, cfg.Init); err != nil {
			return nil, BadInput{err}
		}
	}
	step := 0
	var optim map[string][]float32
	if resume != nil {
		weights, step, optim = resume.Weights, resume.Step, resume.Optim
	}
	firstStep := step
	spe := trainSrc.Len() / cfg.Batch      // steps per epoch; the incomplete last batch is dropped (static shapes)
	cfg.Optimizer.total = cfg.Epochs * spe // what the learning-rate schedule spans
	if err := cfg.checkParallel(arch.C * arch.H * arch.W); err != nil {
		return nil, BadInput{err}
	}
	rank0 := cfg.Comm == nil || cfg.Comm.Rank() == 0 // the process that writes checkpoints
	// The α of the epoch the run starts in is baked into the recorded step (a push constant of the quantizer's
	// kernels); an annealed run recompiles when α changes (see switchAlpha).
	var s *session
	var par *parallel
	if cfg.parallelReplicas() > 1 {
		if par, err = newParallel(lib, cfg.epochConfig(step/spe), arch); err != nil {
			return nil, err
		}
		s = par.reps[0]
		defer func() { par.close() }()
	} else {
		if s, err = compile(lib, cfg.epochConfig(step/spe), arch); err != nil {
			return nil, err
		}
		defer func() { s.prog.Close() }()
	}
	load := s.load
	if par != nil {
		load = par.load
	}
	if err := load(weights, optim); err != nil {
		if resume != nil {
			return nil, fmt.Errorf("resume %s: %w", cfg.Resume, err)
		}
		return nil, err
	}
	evalBatch := min(500, testSet.N)
	ev, err := model.NewEvaluator(lib, arch, cfg.Quant, quant.Soft, evalBatch)
	if err != nil {
		return nil, err
	}
	defer ev.Close()

	stats := s.prog.Stats()
	res := &Result{Device: lib.Device().Name(), Checkpoint: cfg.Out, ArenaBytes: stats.ArenaBytes,
		NaiveBytes: stats.NaiveBytes, KeptBytes: stats.KeptBytes, Dispatches: stats.Dispatches,
		Replicas: cfg.parallelReplicas()}
	total := cfg.Epochs * spe
	if step > total {
		return nil, fmt.Errorf("checkpoint %s is at step %d, past the %d steps of %d epochs", cfg.Resume, step, total,
			cfg.Epochs)
	}
	bar := newProgress(cfg.Progress, cfg.Terminal, cfg.ProgressFile, spe, cfg.Epochs, step)
	bar.update(step, true)
	sz := arch.C * arch.H * arch.W
	// This process's rows of every batch: all of them, or a data-parallel process's share (par.processRows).
	var rows data.Rows
	if par != nil {
		rows = par.processRows()
	}
	nrows := cfg.Batch
	if rows.N > 0 {
		nrows = rows.N
	}
	xb, yb := make([]float32, nrows*sz), make([]uint32, nrows)
	lossb, cnt := make([]float32, cfg.Batch), make([]uint32, 1)
	var trainSecs float64
	var guard overfitGuard
	closeBatches := func() {} // the epoch's batch stream (an image folder's decoding goroutines)
	defer func() { closeBatches() }()
	for epoch := step / spe; epoch < cfg.Epochs; epoch++ {
		if cfg.Quant != nil && cfg.alphaAt(epoch) != s.cfg.Quant.Alpha {
			if par != nil {
				err = par.switchAlpha(cfg.epochConfig(epoch))
				s = par.reps[0]
			} else {
				s, err = switchAlpha(lib, s, cfg.epochConfig(epoch))
			}
			if err != nil {
				return nil, err
			}
		}
		epochStart := time.Now()
		var lossSum float64
		var right, seen int
		first := step - epoch*spe // > 0 only for the epoch a resumed run starts in
		closeBatches()
		batches, err := trainSrc.Epoch(context.Background(), cfg.Seed, epoch, first*cfg.Batch, cfg.Batch, rows)
		if err != nil {
			return nil, err
		}
		closeBatches = batches.Close
		stage := func(i int) error {
			if err := batches.Next(xb, yb); err != nil {
				return err
			}
			if cfg.Augment == "crop-flip" {
				// Drawn from (seed, step) alone, on the host while the device runs the previous step.
				r := rand.New(rand.NewPCG(cfg.Seed^0x617567, uint64(epoch*spe+i)))
				data.SkipCropFlip(rows.From, 4, r) // the rows before this process's: their draws, not their images
				data.CropFlip(xb, nrows, arch.C, arch.H, arch.W, 4, r)
			}
			if par != nil {
				return par.write(xb, yb, epoch*spe+i+1)
			}
			if err := graph.Write(s.prog, s.x, xb); err != nil {
				return err
			}
			if err := graph.Write(s.prog, s.y, yb); err != nil {
				return err
			}
			return s.prepare(epoch*spe + i + 1)
		}
		if err := stage(first); err != nil {
			return nil, err
		}
		outOfTime := false
		for i := first; i < spe && !outOfTime; i++ {
			stop := false
			if par != nil {
				// Every process stops at the same step: the wishes to stop travel with the gradients.
				l, c, anyStop, anyLate, err := par.step(ctx.Err() != nil,
					cfg.TimeBudget > 0 && trainSecs+time.Since(epochStart).Seconds() >= cfg.TimeBudget.Seconds())
				if err != nil {
					return nil, err
				}
				step++
				lossSum, right, stop, outOfTime = lossSum+l, right+c, anyStop, anyLate
				if i+1 < spe {
					if err := stage(i + 1); err != nil {
						return nil, err
					}
				}
			} else {
				if err := s.prog.Submit(); err != nil {
					return nil, err
				}
				// The next batch is uploaded into the other input set while this step runs.
				if i+1 < spe {
					if err := stage(i + 1); err != nil {
						return nil, err
					}
				}
				if err := s.prog.Wait(); err != nil {
					return nil, err
				}
				step++
				outOfTime = cfg.TimeBudget > 0 && trainSecs+time.Since(epochStart).Seconds() >= cfg.TimeBudget.Seconds()
				if err := graph.Read(s.prog, s.loss, lossb); err != nil {
					return nil, err
				}
				if err := graph.Read(s.prog, s.correct, cnt); err != nil {
					return nil, err
				}
				for _, l := range lossb {
					lossSum += float64(l)
				}
				right += int(cnt[0])
				stop = ctx.Err() != nil
			}
			seen += cfg.Batch
			if math.IsNaN(lossSum) {
				return nil, fmt.Errorf("training diverged at step %d (NaN loss); lower --lr", step)
			}
			bar.step(step, lossSum/float64(seen), float64(right)/float64(seen))
			if cfg.OnTrack != nil && cfg.TrackEvery > 0 && step%cfg.TrackEvery == 0 && i+1 < spe && !outOfTime {
				paused := time.Now()
				w, err := s.net.Weights(s.prog)
				if err != nil {
					return nil, err
				}
				ck := &model.Checkpoint{Arch: s.arch, Quant: cfg.Quant, Deploy: cfg.Deploy, Weights: w}
				if err := cfg.OnTrack(step, trainSecs+paused.Sub(epochStart).Seconds(), ck); err != nil {
					return nil, err
				}
				epochStart = epochStart.Add(time.Since(paused)) // the tracking is not training time
			}
			if stop {
				if rank0 {
					if err := s.save(cfg, epoch, step); err != nil {
						return nil, err
					}
				}
				bar.interrupt()
				return res, ErrInterrupted
			}
		}
		trainSecs += time.Since(epochStart).Seconds()
		w, err := s.net.Weights(s.prog)
		if err != nil {
			return nil, err
		}
		if err := ev.SetWeights(w); err != nil {
			return nil, err
		}
		ok, err := ev.Accuracy(testSet.Images, testSet.Labels, testSet.N)
		if err != nil {
			return nil, err
		}
		secs := time.Since(epochStart).Seconds()
		er := EpochResult{Epoch: epoch + 1, TrainLoss: lossSum / float64(max(seen, 1)),
			TrainAcc: float64(right) / float64(max(seen, 1)), TestAcc: float64(ok) / float64(testSet.N),
			Seconds: secs, ImagesPerSec: float64(seen) / secs, TrainSeconds: trainSecs}
		if cfg.Method == "fgsm-rs" {
			collapsed, err := guard.check(lib, s, cfg, w, testSet, epoch+1, step, &er, rank0)
			if err != nil {
				return nil, err
			}
			if collapsed {
				res.Epochs = append(res.Epochs, er)
				bar.epoch(er, cfg.Epochs)
				res.Steps, res.Seconds, res.Stopped = step, time.Since(start).Seconds(), er.Note
				return res, nil
			}
		}
		// Out of time with work left: cut the run here (the budget running out on the very last step is no cut).
		outOfTime = outOfTime && (step < total)
		if outOfTime {
			er.Note = fmt.Sprintf("time budget of %.1f s reached after %d of %d steps of epoch %d", cfg.TimeBudget.Seconds(),
				step-epoch*spe, spe, epoch+1)
			res.Stopped = er.Note
		}
		res.Epochs = append(res.Epochs, er)
		if rank0 {
			if err := s.save(cfg, epoch+1, step); err != nil {
				return nil, err
			}
		}
		bar.epoch(er, cfg.Epochs)
		if cfg.OnEpoch != nil {
			if err := cfg.OnEpoch(er, cfg.Out); err != nil {
				return nil, err
			}
		}
		if outOfTime {
			break
		}
	}
	res.Steps = step
	if cfg.Profile && step > firstStep {
		prof, err := s.prog.Profile()
		if err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
		res.Profile = &StepProfile{Profile: *prof, StepSeconds: trainSecs / float64(step-firstStep)}
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// switchAlpha compiles the training step for cfg's quantizer (a new α) and moves the weights and the optimizer
// state of s into it, closing s.
func switchAlpha(lib *kernels.Lib, s *session, cfg Config) (*session, error) {
	w, err := s.net.Weights(s.prog)
	if err != nil {
		return nil, err
	}
	opt, err := s.upd.save(s.prog)
	if err != nil {
		return nil, err
	}
	n, err := compile(lib, cfg, s.arch)
	if err != nil {
		return nil, err
	}
	if err := n.load(w, opt); err != nil {
		n.prog.Close()
		return nil, err
	}
	s.prog.Close()
	return n, nil
}

// load puts weights and, when opt is not nil, the optimizer state into the session's program.
func (s *session) load(w model.Weights, opt map[string][]float32) error {
	if opt != nil {
		if err := s.upd.load(s.prog, opt); err != nil {
			return err
		}
	}
	return s.net.Load(s.prog, w)
}

// prepare checks the configuration and loads what the run needs before any device work: the checkpoint to
// resume or to start from (--init), the datasets and the architecture.
func prepare(cfg *Config) (resume, initCk *model.Checkpoint, src data.Source, testSet *data.Set, arch model.Arch,
	err error) {
	if cfg.Init != "" {
		if cfg.Resume != "" {
			err = ErrInitAndResume
			return
		}
		if initCk, err = model.Load(cfg.Init); err != nil {
			return
		}
	}
	if cfg.Resume != "" {
		if resume, err = model.Load(cfg.Resume); err != nil {
			return
		}
		if err = adoptCheckpoint(cfg, resume); err != nil {
			return
		}
	}
	if err = cfg.Validate(); err != nil {
		return
	}
	if cfg.Dataset == "folder" {
		// Streamed from disk; the per-epoch test accuracy reads TestLimit images of val/ (1000 by default: they
		// are held in memory).
		var root string
		if root, err = data.Locate(cfg.Dataset, cfg.DataDir); err != nil {
			return
		}
		var f *data.Folder
		if f, err = data.OpenFolder(root, data.Train); err != nil {
			return
		}
		src = data.FolderSource{Folder: f.Subset(cfg.Limit), Size: cfg.ImageSize}
		n := cfg.TestLimit
		if n == 0 {
			n = 1000
		}
		if testSet, err = data.LoadFolderSet(root, data.Val, cfg.ImageSize, n); err != nil {
			return
		}
	} else {
		var trainSet *data.Set
		if trainSet, err = data.Load(cfg.Dataset, cfg.DataDir, data.Train); err != nil {
			return
		}
		if testSet, err = data.Load(cfg.Dataset, cfg.DataDir, data.Test); err != nil {
			return
		}
		src, testSet = trainSet.Subset(cfg.Limit), testSet.Subset(cfg.TestLimit)
	}
	if src.Len() < cfg.Batch {
		err = fmt.Errorf("--batch %d is larger than the %d training examples", cfg.Batch, src.Len())
		return
	}
	c, h, w, classes := src.Shape()
	if testSet.C != c || testSet.H != h || testSet.W != w || testSet.Classes != classes {
		err = fmt.Errorf("the test split's %d×%d×%d images of %d classes do not match the training split's %d×%d×%d of %d",
			testSet.C, testSet.H, testSet.W, testSet.Classes, c, h, w, classes)
		return
	}
	arch, err = model.Lookup(cfg.Model, c, h, w, classes)
	return
}

// compile builds the training graph — input → (noise | inner attack) → (soft quantizer) → network →
// cross-entropy, its backward pass, and the optimizer update — all in one recorded command buffer.
func compile(lib *kernels.Lib, cfg Config, a model.Arch) (*session, error) {
	g := graph.New(lib)
	s := &session{cfg: cfg, arch: a, net: model.Declare(g, a, cfg.Quant)}
	// Batch norm in training mode: batch statistics, running estimates updated — in pgd-at's inner attack too, as
	// PyTorch's model.train() does.
	s.net.Training = true
	s.x = g.Input("x", graph.F32, cfg.rows(), a.C, a.H, a.W)
	s.y = g.Input("labels", graph.U32, cfg.rows())
	in := s.x
	switch cfg.Method {
	case "noisy-sq", "noise":
		s.step = g.Input("rng.step", graph.U32, 1)
		noisy := g.Temp("x.noisy", graph.F32, s.x.Shape...)
		rng := kernels.RNG{Seed: cfg.Seed, Stream: 0, Offset: cfg.rngOffset()}
		n := s.x.Elems()
		g.Add(&graph.Op{Name: "training noise", In: []*graph.Tensor{s.x, s.step}, Out: []*graph.Tensor{noisy},
			Run: func(r *vk.Recorder, at graph.Binder) error {
				return lib.UniformNoiseDynamic(r, at(s.x), at(noisy), at(s.step), n, cfg.NoiseEps, rng)
			}})
		in = noisy
	case "pgd-at", "fgsm-rs":
		s.step = g.Input("rng.step", graph.U32, 1)
		adv, err := attack.Build(g, s.net, s.x, s.y, s.step, nil, innerAttack(cfg))
		if err != nil {
			return nil, err
		}
		in = adv
	}
	logits := s.net.Forward(g, in, quant.Soft)
	s.loss = g.SoftmaxCrossEntropy(logits, s.y)
	g.Keep(s.loss)
	s.correct = g.Correct(logits, s.y)
	if cfg.Method == "gradreg" {
		if err := gradRegStep(g, s, cfg); err != nil {
			return nil, err
		}
	} else if err := g.Backward(s.loss, 1/float32(cfg.Batch), s.trained()...); err != nil {
		return nil, err
	}
	if cfg.replica != nil {
		// A data-parallel replica: the host sums every replica's gradient between backward and optimizer.
		g.Stage()
	}
	s.upd = addOptimizer(g, s.net.Order, cfg.Optimizer)
	p, err := g.Compile()
	if err != nil {
		return nil, err
	}
	s.prog = p
	return s, nil
}

// trained returns the parameters training updates, in state_dict order: all of them but fixed quantizer
// thresholds. Leaving those out of the backward pass also leaves out everything only they needed — the quantizer's
// backward pass and the first convolution's input gradient (the noisy input needs none).
func (s *session) trained() []*graph.Tensor {
	var out []*graph.Tensor
	for _, p := range s.net.Order {
		if p.Name == model.ThresholdsName && s.cfg.Quant != nil && s.cfg.Quant.Fixed {
			continue
		}
		out = append(out, p)
	}
	return out
}

// gradRegStep builds gradreg's parameter gradient, the paper's objective J = L(x) + ε·‖∇ₓL(x)‖₁ made explicit
// without second-order autodiff. With s = sign(∇ₓL(x)) (constant almost everywhere), ‖∇ₓL‖₁ = s·∇ₓL, so
//
//	∇_θ‖∇ₓL‖₁ = ∇_θ (s·∇ₓL(x)) = ∂/∂h ∇_θL(x + h·s) |_(h=0) ≈ (∇_θL(x + h·s) − ∇_θL(x)) / h,
//
// a finite difference along the gradient's sign, and ∇_θJ ≈ (1 − ε/h)·∇_θL(x) + (ε/h)·∇_θL(x + h·s). Two forward
// and backward passes per step; x + h·s is clipped to [0, 1]. With h = ε this is exactly FGSM adversarial training
// (without random start): the paper's observation that the two objectives agree to first order.
func gradRegStep(g *graph.Graph, s *session, cfg Config) error {
	scale := 1 / float32(cfg.Batch)
	if err := g.Backward(s.loss, scale, append(s.trained(), s.x)...); err != nil {
		return err
	}
	g1 := map[*graph.Tensor]*graph.Tensor{}
	for _, p := range s.net.Order {
		g1[p] = p.Grad
	}
	gx := s.x.Grad
	lib, n := g.Lib(), s.x.Elems()
	shifted := g.State("x.shifted", s.x.Shape...)
	g.Copy(shifted, s.x)
	h := cfg.GradRegH
	g.Add(&graph.Op{Name: "shift along sign(∇x)", In: []*graph.Tensor{shifted, gx, s.x}, Out: []*graph.Tensor{shifted},
		Run: func(r *vk.Recorder, at graph.Binder) error {
			return lib.PGDStep(r, at(shifted), at(gx), at(s.x), n, h, h)
		}})
	loss2 := g.SoftmaxCrossEntropy(s.net.Forward(g, shifted, quant.Soft), s.y)
	if err := g.Backward(loss2, scale, s.trained()...); err != nil {
		return err
	}
	c := cfg.Eps / h
	for _, p := range s.net.Order {
		a, b := g1[p], p.Grad
		if a == nil || b == nil {
			p.Grad = nil
			continue
		}
		comb := g.State(p.Name+".gradreg", p.Shape...)
		// comb = a + c·(b − a) = (1 − c)·a + c·b
		g.Copy(comb, a)
		g.Axpy(comb, b, c)
		g.Axpy(comb, a, -c)
		p.Grad = comb
	}
	return g.Err()
}

// innerAttack is the attack adversarial training trains on: PGD-k from a random start (pgd-at), or one FGSM step
// of 1.25ε from a random start (fgsm-rs, Wong et al. 2020). It attacks the soft quantizer's true gradient.
func innerAttack(cfg Config) attack.Config {
	c := attack.PGD(cfg.Eps, cfg.PGDStep, cfg.PGDSteps, 1)
	if cfg.Method == "fgsm-rs" {
		c.Name, c.Steps, c.Step = "fgsm-rs", 1, 1.25*cfg.Eps
	}
	c.Seed, c.Batch, c.RNGOffset = cfg.Seed, cfg.rows(), cfg.rngOffset()
	return c
}

// prepare writes what step t (1-based) reads besides its batch: the RNG step of its noise or random start, and
// the optimizer's corrections.
func (s *session) prepare(t int) error {
	if s.step != nil {
		if err := graph.Write(s.prog, s.step, []uint32{uint32(t)}); err != nil {
			return err
		}
	}
	return s.upd.prepare(s.prog, t)
}

// save writes a checkpoint of the current weights and optimizer state, atomically.
func (s *session) save(cfg Config, epoch, step int) error {
	w, err := s.net.Weights(s.prog)
	if err != nil {
		return err
	}
	opt, err := s.upd.save(s.prog)
	if err != nil {
		return err
	}
	return model.Save(cfg.Out, &model.Checkpoint{Arch: s.arch, Quant: cfg.Quant, Deploy: cfg.Deploy, Weights: w, Optim: opt,
		Dataset: cfg.Dataset, Method: cfg.Method, Epoch: epoch, Step: step, Seed: cfg.Seed, Extra: s.extra(cfg)})
}

// extra is the training metadata a checkpoint carries so that --resume continues the same run.
func (s *session) extra(cfg Config) map[string]string { return settingsMetadata(cfg) }

// FormatAlphas spells an α schedule as ParseAlphas reads it ("20,50").
func FormatAlphas(as []float32) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = strconv.FormatFloat(float64(a), 'g', -1, 32)
	}
	return strings.Join(parts, ",")
}

// ParseAlphas reads an α schedule, comma-separated values (the --alpha-epochs flag); "" is none.
func ParseAlphas(s string) ([]float32, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var as []float32
	for _, p := range strings.Split(s, ",") {
		a, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil {
			return nil, fmt.Errorf("--alpha-epochs %q: %q is not a number", s, p)
		}
		as = append(as, float32(a))
	}
	return as, nil
}

// overfitGuard is Wong et al.'s guard against catastrophic overfitting in FGSM training: after each epoch it
// measures PGD-10 accuracy on held-out images; when that collapses (more than 20 points below the best epoch),
// training stops and the checkpoint keeps the best epoch's weights.
type overfitGuard struct {
	best       float64
	bestEpoch  int
	bestStep   int
	bestWeight model.Weights
	bestOptim  map[string][]float32
}

// guardImages is how many test images the guard attacks.
const guardImages = 200

func (gd *overfitGuard) check(lib *kernels.Lib, s *session, cfg Config, w model.Weights, test *data.Set, epoch,
	step int, er *EpochResult, save bool) (bool, error) {
	held := test.Subset(guardImages)
	ck := &model.Checkpoint{Arch: s.arch, Quant: cfg.Quant, Deploy: cfg.Deploy, Weights: w}
	c := attack.PGD(cfg.Eps, cfg.Eps/4, 10, 1)
	c.Seed = cfg.Seed
	c.Batch = min(c.Batch, held.N) // a short test split (--test-limit) is not padded to a full batch
	a, err := attack.New(lib, ck, c)
	if err != nil {
		return false, err
	}
	r, err := a.Run(held.Images, held.Labels, nil, held.N)
	a.Close()
	if err != nil {
		return false, err
	}
	er.GuardPGD = r.Accuracy
	if gd.bestWeight == nil || r.Accuracy >= gd.best {
		opt, err := s.upd.save(s.prog)
		if err != nil {
			return false, err
		}
		gd.best, gd.bestEpoch, gd.bestStep, gd.bestWeight, gd.bestOptim = r.Accuracy, epoch, step, w, opt
		return false, nil
	}
	if !collapsed(gd.best, r.Accuracy) {
		return false, nil
	}
	er.Note = fmt.Sprintf("catastrophic overfitting: PGD-10 accuracy fell from %.1f%% (epoch %d) to %.1f%%; "+
		"stopped and kept epoch %d", 100*gd.best, gd.bestEpoch, 100*r.Accuracy, gd.bestEpoch)
	if !save { // another rank of a data-parallel job: rank 0 writes the checkpoint
		return true, nil
	}
	return true, model.Save(cfg.Out, &model.Checkpoint{Arch: s.arch, Quant: cfg.Quant, Deploy: cfg.Deploy, Weights: gd.bestWeight,
		Optim: gd.bestOptim, Dataset: cfg.Dataset, Method: cfg.Method, Epoch: gd.bestEpoch, Step: gd.bestStep,
		Seed: cfg.Seed, Extra: s.extra(cfg)})
}

// collapsed is the guard's rule: robust accuracy more than 20 points below the best epoch's means the model has
// overfitted catastrophically to FGSM (Wong et al. observe a fall to about zero within one epoch).
func collapsed(best, now float64) bool { return now < best-0.2 }
