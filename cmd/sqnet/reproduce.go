package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sqnet/sqnet/attack"
	"github.com/sqnet/sqnet/data"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/report"
	"github.com/sqnet/sqnet/train"
	"github.com/sqnet/sqnet/vk"
)

// plan is one method's training budget in a reproduction.
type plan struct {
	Method string `json:"method"`
	Epochs int    `json:"epochs"`       // at most this many (a time budget may stop it earlier)
	Limit  int    `json:"train_images"` // 0: all
	// TimesNoisySQ, when set, gives the method a training-time budget of this multiple of noisy-sq's measured
	// training time (noisy-sq comes earlier in the plan): the paper's comparison at equal cost.
	TimesNoisySQ float64 `json:"time_budget_times_noisy_sq,omitempty"`
}

// budgets are the reproduction budgets. mini is the paper in miniature that `make run` shows in a few minutes on a
// 2-core lavapipe machine: noisy-sq next to natural training, one epoch each, under clean, FGSM, PGD and BPDA — no
// adversarial training, whose cost `sqnet bench train` measures in seconds instead. quick fits a coffee break
// there: PGD-AT costs 41 forward/backward passes per step, so it sees a tenth of an epoch — which is the point the
// paper makes.
var budgets = map[string]budgetPlan{
	"mini":  {[]plan{{"natural", 1, 0, 0}, {"noisy-sq", 1, 0, 0}}, "quick", 300, 100, 20, 0},
	"quick": {[]plan{{"natural", 1, 0, 0}, {"noisy-sq", 2, 0, 0}, {"fgsm-rs", 1, 0, 0}, {"pgd-at", 1, 6000, 0}}, "quick", 500, 200, 20, 0},
	"full":  {[]plan{{"natural", 3, 0, 0}, {"noisy-sq", 3, 0, 0}, {"fgsm-rs", 3, 0, 0}, {"pgd-at", 1, 0, 0}}, "standard", 1000, 500, 20, 0},
	// paper is the claim made measurable: noisy-sq trains one epoch, then pgd-at trains for 24 times as long (the
	// paper's speed-up) on the same device, and both face the standard suite (PGD-100×10, CW, BPDA, EOT).
	"paper": {[]plan{{"noisy-sq", 1, 0, 0}, {"pgd-at", 20, 0, 24}}, "standard", 1000, 200, 20, 0},
	// smoke exercises the whole pipeline in seconds (tests); its numbers mean nothing. pgd-at gets a tenth of
	// noisy-sq's time, which its first step already spends: the time-budget path runs too.
	"smoke": {[]plan{{"natural", 1, 100, 0}, {"noisy-sq", 1, 100, 0}, {"fgsm-rs", 1, 100, 0}, {"pgd-at", 1, 100, 0.1}}, "smoke", 20, 20, 3, 3},
}

// budgetNames lists the budgets in the order help and errors name them, cheapest real one first.
var budgetNames = []string{"mini", "quick", "paper", "full", "smoke"}

// budgetPlan is a reproduction budget: what each method trains on, the evaluation suite and its image count, and
// the images and PGD steps of the robust-accuracy-along-training curve.
type budgetPlan struct {
	plans              []plan
	suite              string
	evalLimit, curveAt int
	curveSteps         int
	pgdSteps           int // pgd-at's inner steps (0: the default 40)
}

// methodResult is one method's row of the reproduction.
type methodResult struct {
	Plan         plan    `json:"plan"`
	TrainSeconds float64 `json:"train_seconds"`
	TrainImages  int     `json:"train_images_seen"` // steps × batch
	Stopped      string  `json:"stopped,omitempty"` // why training ended early (a time budget)
	Checkpoint   string  `json:"checkpoint"`
	Settings     string  `json:"settings,omitempty"` // noisy-sq: quantizer, ε_n, α schedule
	// Suites is the evaluation against each deployed classifier (--deploy; one for a model without a quantizer).
	Suites []*attack.SuiteReport `json:"evaluations"`
	Curve  []curvePoint          `json:"robust_vs_time"`
	Rows   []string              `json:"-"` // the table's label of each of Suites

}

// noisySQSettings are noisy-sq's knobs in a reproduction (train's flags of the same names); zero values keep
// train's defaults.
type noisySQSettings struct {
	Quant    *quant.Config
	NoiseEps float32
	Alphas   []float32
}

// apply sets cfg's noisy-sq knobs when cfg trains noisy-sq.
func (n noisySQSettings) apply(cfg *train.Config) {
	if cfg.Method != "noisy-sq" {
		return
	}
	if n.Quant != nil {
		q := *n.Quant
		cfg.Quant = &q
	}
	cfg.NoiseEps, cfg.AlphaEpochs = n.NoiseEps, n.Alphas
}

// noisySQDescription spells the settings a noisy-sq run trains with, for the report: cfg's quantizer, ε_n and α
// schedule once Validate has filled in train's defaults (on a copy: Run validates cfg itself).
func noisySQDescription(cfg train.Config) string {
	if err := cfg.Validate(); err != nil {
		return err.Error() // unreachable: the settings were validated before any work
	}
	s := fmt.Sprintf("quantizer %s, ε_n = %g", *cfg.Quant, cfg.NoiseEps)
	if len(cfg.AlphaEpochs) > 0 {
		s += ", α by epoch " + train.FormatAlphas(cfg.AlphaEpochs) + " then " + fmt.Sprint(cfg.Quant.Alpha)
	}
	return s
}

type curvePoint struct {
	TrainSeconds float64 `json:"train_seconds"`
	PGD          float64 `json:"pgd_accuracy"`
}

// reproDataset is what reproduce does differently per dataset: the threat model's ε and pgd-at's inner attack, the
// field's usual choices (MNIST ε = 0.3 with PGD-40 of 0.01; Fashion-MNIST ε = 0.1; CIFAR-10 ε = 8/255 with PGD-10
// of 2/255, Rice et al.'s and RobustBench's).
type reproDataset struct {
	eps, pgdStep float32
	pgdSteps     int
	trainImages  int // the training split's size (tracking points along an epoch)
}

var reproDatasets = map[string]reproDataset{
	"mnist":         {0.3, 0.01, 40, 60000},
	"fashion-mnist": {0.1, 0.01, 40, 60000},
	"cifar10":       {8.0 / 255, 2.0 / 255, 10, 50000},
}

func newReproduceCmd(g *globals) *cobra.Command {
	var arch, budget, out, quantFlag, alphaFlag, deployFlag, dataDir string
	var epochs, evalLimit, curvePoints int
	var eps float32
	var nsq noisySQSettings
	c := &cobra.Command{
		Use:   "reproduce mnist|fashion-mnist|cifar10",
		Short: "Reproduce the paper on a dataset: train natural, noisy-sq, fgsm-rs and pgd-at (mini: the first two), evaluate, compare costs",
		Long: "reproduce trains each method on the dataset, evaluates it with an attack suite (BPDA included for the\n" +
			"quantized model), measures robust accuracy along training, and writes results.md, results.json and\n" +
			"robust-vs-time.png (worst-case PGD accuracy against training wall time) to --out, with the training time\n" +
			"of each method and the speed-up of noisy-sq over pgd-at. ε and pgd-at's inner PGD follow the dataset:\n" +
			"MNIST 0.3 (PGD-40, step 0.01), Fashion-MNIST 0.1 (PGD-40, 0.01), CIFAR-10 8/255 (PGD-10, 2/255).",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 || reproDatasets[args[0]] == (reproDataset{}) {
				return usageError{fmt.Errorf("reproduce takes one argument, the dataset: mnist, fashion-mnist or cifar10")}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			dataset := args[0]
			ds := reproDatasets[dataset]
			if !c.Flags().Changed("eps") {
				eps = ds.eps
			}
			if err := checkEps(eps); err != nil {
				return err
			}
			if !c.Flags().Changed("out") {
				out = "out/reproduce-" + dataset
			}
			b, ok := budgets[budget]
			if !ok {
				return usageError{fmt.Errorf("--budget %q: want one of %s", budget, strings.Join(budgetNames, ", "))}
			}
			if c.Flags().Changed("epochs") {
				if epochs < 1 {
					return usageError{fmt.Errorf("--epochs %d: want at least 1", epochs)}
				}
				b = b.withNoisySQEpochs(epochs)
			}
			if c.Flags().Changed("eval-limit") {
				if evalLimit < 1 {
					return usageError{fmt.Errorf("--eval-limit %d: want at least 1", evalLimit)}
				}
				b.evalLimit = evalLimit
			}
			if curvePoints < 1 {
				return usageError{fmt.Errorf("--curve-points %d: want at least 1 (a point at each epoch's end)", curvePoints)}
			}
			if deployFlag != "" && !slices.Contains(attack.DeployNames, deployFlag) {
				return usageError{fmt.Errorf("--deploy %q: want %s", deployFlag, strings.Join(attack.DeployNames, ", "))}
			}
			ch, h, w, classes, _ := data.Shape(dataset)
			if _, err := model.Lookup(arch, ch, h, w, classes); err != nil {
				return usageError{err}
			}
			q, as, err := parseQuantFlags(quantFlag, alphaFlag)
			if err != nil {
				return err
			}
			nsq.Quant, nsq.Alphas = q, as
			// The same checks train makes, before hours of work rather than after the first method.
			check := train.Defaults()
			check.Method, check.Out, check.Dataset, check.Eps = "noisy-sq", "unused", dataset, eps
			nsq.apply(&check)
			if err := check.Validate(); err != nil {
				return usageError{err}
			}
			test, err := data.Load(dataset, dataDir, data.Test)
			if err != nil {
				return usageError{err}
			}
			rs := reproSetup{dataset: dataset, dataDir: dataDir, eps: eps, pgdStep: ds.pgdStep, pgdSteps: ds.pgdSteps,
				trainImages: ds.trainImages}
			d, err := vk.Open(g.vkOptions())
			if err != nil {
				return err
			}
			defer d.Close()
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return reproduce(ctx, c.OutOrStdout(), kernels.New(d), rs, arch, budget, b, nsq, deployFlag, curvePoints,
				test, out)
		},
	}
	c.Flags().StringVar(&arch, "model", "small", "architecture: "+strings.Join(model.Archs, ", "))
	c.Flags().StringVar(&dataDir, "data", "", "dataset folder (default: $SQNET_DATA, else its usual place; CIFAR-10 has none)")
	c.Flags().Float32Var(&eps, "eps", 0, "ℓ∞ radius of the threat model (default: the dataset's, 0.3 / 0.1 / 8/255)")
	c.Flags().StringVar(&budget, "budget", "quick", "mini (natural and noisy-sq only, a few minutes on a CPU), quick "+
		"(all four methods, a coffee break on a CPU), paper (noisy-sq against pgd-at given 24× its training time, "+
		"the standard suite with AutoAttack on 1000 images; 3–4 hours on a 2-core CPU), full (longer still), or smoke "+
		"(seconds; meaningless numbers)")
	c.Flags().StringVar(&out, "out", "", "folder for checkpoints and results (default out/reproduce-DATASET)")
	c.Flags().IntVar(&epochs, "epochs", 0, "noisy-sq's epochs instead of the budget's (the anchor of the time "+
		"budgets: paper's pgd-at still gets 24× noisy-sq's measured time)")
	c.Flags().StringVar(&quantFlag, "quant", "", "noisy-sq's quantizer, as train's --quant (default 2,50)")
	c.Flags().Float32Var(&nsq.NoiseEps, "noise-eps", 0, "noisy-sq's ε_n, as train's --noise-eps (default ε)")
	c.Flags().StringVar(&alphaFlag, "alpha-epochs", "", "noisy-sq's α schedule, as train's --alpha-epochs")
	c.Flags().IntVar(&curvePoints, "curve-points", 4, "PGD accuracy points per epoch on robust-vs-time.png (the "+
		"evaluations stay outside the training clock)")
	c.Flags().IntVar(&evalLimit, "eval-limit", 0, "evaluate on the first N test images instead of the budget's "+
		"(mini 300, quick 500, paper and full 1000)")
	c.Flags().StringVar(&deployFlag, "deploy", "", "the quantized models' deployed classifier: soft, hard or both "+
		"(default: the checkpoint's, soft); a row per classifier")
	return c
}

// withNoisySQEpochs returns a copy of b whose noisy-sq plan trains for epochs epochs. Time budgets given as a
// multiple of noisy-sq's time follow automatically, since they are measured, not planned.
func (b budgetPlan) withNoisySQEpochs(epochs int) budgetPlan {
	b.plans = slices.Clone(b.plans)
	for i := range b.plans {
		if b.plans[i].Method == "noisy-sq" {
			b.plans[i].Epochs = epochs
		}
	}
	return b
}

// reproSetup is the dataset side of a reproduction: where the data are, the threat model and pgd-at's inner PGD.
type reproSetup struct {
	dataset, dataDir string
	eps, pgdStep     float32
	pgdSteps         int
	trainImages      int
}

func reproduce(ctx context.Context, w io.Writer, lib *kernels.Lib, rs reproSetup, arch, budget string, b budgetPlan,
	nsq noisySQSettings, deployFlag string, curvePoints int, test *data.Set, out string) error {
	eps := rs.eps
	dev := lib.Device().Name()
	evalSet, curveSet := test.Subset(b.evalLimit), test.Subset(b.curveAt)
	pgdSteps := b.pgdSteps
	if pgdSteps == 0 {
		pgdSteps = rs.pgdSteps
	}
	var results []*methodResult
	for _, p := range b.plans {
		cfg := train.Defaults()
		cfg.Model, cfg.Method, cfg.Epochs, cfg.Limit, cfg.PGDSteps = arch, p.Method, p.Epochs, p.Limit, pgdSteps
		cfg.Dataset, cfg.DataDir, cfg.Eps, cfg.PGDStep = rs.dataset, rs.dataDir, eps, rs.pgdStep
		cfg.Out = filepath.Join(out, "checkpoints", fmt.Sprintf("%s-%s.safetensors", arch, p.Method))
		nsq.apply(&cfg)
		mr := &methodResult{Plan: p, Checkpoint: cfg.Out}
		if p.Method == "noisy-sq" {
			mr.Settings = noisySQDescription(cfg)
		}
		// Robust accuracy along the way: PGD against the model curvePoints times an epoch (the last at its end,
		// on the epoch's checkpoint), the evaluations outside the training clock.
		pgdAt := func(ck *model.Checkpoint, secs float64) (float64, error) {
			a, err := attack.New(lib, ck, attack.PGDk(eps, b.curveSteps, 1))
			if err != nil {
				return 0, err
			}
			defer a.Close()
			r, err := a.Run(curveSet.Images, curveSet.Labels, nil, curveSet.N)
			if err != nil {
				return 0, err
			}
			mr.Curve = append(mr.Curve, curvePoint{secs, r.Accuracy})
			return r.Accuracy, nil
		}
		cfg.OnEpoch = func(e train.EpochResult, path string) error {
			ck, err := model.Load(path)
			if err != nil {
				return err
			}
			acc, err := pgdAt(ck, e.TrainSeconds)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "  %s epoch %d: test %.2f%%, PGD-%d %.1f%%, %.0f s of training\n", p.Method, e.Epoch,
				100*e.TestAcc, b.curveSteps, 100*acc, e.TrainSeconds)
			return nil
		}
		if curvePoints > 1 {
			per := rs.trainImages
			if p.Limit > 0 {
				per = p.Limit
			}
			cfg.TrackEvery = max(per/cfg.Batch/curvePoints, 1)
			cfg.OnTrack = func(_ int, secs float64, ck *model.Checkpoint) error {
				_, err := pgdAt(ck, secs)
				return err
			}
		}
		budgetDesc := ""
		if p.TimesNoisySQ > 0 {
			nsq := find(results, "noisy-sq")
			if nsq == nil {
				return fmt.Errorf("%s: its time budget is a multiple of noisy-sq's, which has not run", p.Method)
			}
			cfg.TimeBudget = time.Duration(p.TimesNoisySQ * nsq.TrainSeconds * float64(time.Second))
			budgetDesc = fmt.Sprintf(", at most %.0f s = %g× noisy-sq's time", cfg.TimeBudget.Seconds(), p.TimesNoisySQ)
		}
		fmt.Fprintf(w, "training %s (%s%s%s) on %s\n", p.Method, plural(p.Epochs, "epoch"), limitDesc(p.Limit),
			budgetDesc, dev)
		res, err := train.Run(ctx, lib, cfg)
		if errors.Is(err, train.ErrInterrupted) {
			return fmt.Errorf("%s: interrupted; its checkpoint so far is %s (reproduce starts over when run again)",
				p.Method, cfg.Out)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p.Method, err)
		}
		mr.TrainSeconds = res.Epochs[len(res.Epochs)-1].TrainSeconds
		mr.TrainImages, mr.Stopped = res.Steps*cfg.Batch, res.Stopped
		results = append(results, mr)
	}
	// Every method trains before any is evaluated: the time budgets compare training runs made back to back,
	// and an evaluation (hours under the standard suite) cannot sit between them.
	for _, mr := range results {
		p := mr.Plan
		ck, err := model.Load(mr.Checkpoint)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "evaluating %s (suite %s, %d test images)\n", p.Method, b.suite, evalSet.N)
		s, err := attack.NewSuite(b.suite, ck, eps, 100, 1)
		if err != nil {
			return err
		}
		deploy, err := attack.ParseDeploy(deployFlag, ck)
		if err != nil {
			return err
		}
		tag := func(m quant.Mode) string { return deployedRow(p.Method, ck, deploy, m) }
		mr.Suites, err = attack.RunSuite(lib, ck, nil, s, deploy, evalSet.Images, evalSet.Labels,
			evalSet.N, attack.SuiteHooks{
				Result: func(r *attack.Result) {
					fmt.Fprintf(w, "  %s %-18s %6.2f%%\n", tag(r.Deploy), r.Name, 100*r.Accuracy)
				},
				AutoAttack: func(aa *attack.AAReport) {
					fmt.Fprintf(w, "  %s %-18s %6.2f%%\n", tag(aa.Deploy), "autoattack", 100*aa.Accuracy)
				},
			})
		if err != nil {
			return err
		}
		for _, rep := range mr.Suites {
			mr.Rows = append(mr.Rows, tag(rep.Deploy))
		}
	}
	return writeReproduction(w, out, rs.dataset, arch, budget, dev, eps, pgdSteps, results)
}

// plural writes n and a noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func limitDesc(n int) string {
	if n == 0 {
		return ", all 60000 images"
	}
	return fmt.Sprintf(", the first %d images", n)
}

// writeReproduction writes results.md, results.json and robust-vs-time.png.
func writeReproduction(w io.Writer, out, dataset, arch, budget, dev string, eps float32, pgdSteps int,
	rs []*methodResult) error {
	var md strings.Builder
	fmt.Fprintf(&md, "# sqnet reproduce %s — %s, budget %s\n\n", dataset, arch, budget)
	fmt.Fprintf(&md, "Device: %s. ε = %g (ℓ∞). Adam 1e-3, batch 50, seed 1. Evaluated on the first %d test images; "+
		"worst case = per example over every attack.\n\n", dev, eps, rs[0].Suites[0].N)
	// Columns: every attack any method faced (BPDA only applies to the quantized model), in the order of the
	// method that faced the most, then any others.
	names, seen := []string{}, map[string]bool{}
	longest := rs[0].Suites[0]
	for _, r := range rs {
		if len(r.Suites[0].Results) > len(longest.Results) {
			longest = r.Suites[0]
		}
	}
	for _, s := range append([]*attack.SuiteReport{longest}, suitesOf(rs)...) {
		for i, a := range s.Results {
			if !seen[a.Name] {
				seen[a.Name] = true
				names = append(names, a.Name)
			}
			if i == 0 && s.AutoAttack != nil && !seen["autoattack"] {
				seen["autoattack"] = true
				names = append(names, "autoattack")
			}
		}
	}
	fmt.Fprintf(&md, "| method | epochs | train images seen | train time (s) | %s | worst case |\n", strings.Join(names, " | "))
	fmt.Fprintf(&md, "|---|---|---|---|%s---|\n", strings.Repeat("---|", len(names)))
	for _, r := range rs {
		epochs := fmt.Sprint(r.Plan.Epochs)
		if r.Stopped != "" { // cut short (a time budget, fgsm-rs's guard): the fraction of epochs it did
			per := 60000
			if r.Plan.Limit > 0 {
				per = r.Plan.Limit
			}
			epochs = fmt.Sprintf("%.2f", float64(r.TrainImages)/float64(per))
		}
		for si, s := range r.Suites {
			cells := map[string]string{}
			for _, a := range s.Results {
				cells[a.Name] = fmt.Sprintf("%.1f", 100*a.Accuracy)
			}
			if aa := s.AutoAttack; aa != nil {
				cells["autoattack"] = fmt.Sprintf("%.1f", 100*aa.Accuracy)
			}
			row := []string{}
			for _, n := range names {
				v, ok := cells[n]
				if !ok {
					v = "—"
				}
				row = append(row, v)
			}
			label := r.Plan.Method
			if si < len(r.Rows) {
				label = r.Rows[si]
			}
			fmt.Fprintf(&md, "| %s | %s | %d | %.0f | %s | **%.1f** |\n", label, epochs, r.TrainImages,
				r.TrainSeconds, strings.Join(row, " | "), 100*s.WorstAccuracy)
		}
	}
	for _, r := range rs {
		if r.Settings != "" {
			fmt.Fprintf(&md, "\n%s settings: %s.\n", r.Plan.Method, r.Settings)
		}
	}
	nsq, pgd := find(rs, "noisy-sq"), find(rs, "pgd-at")
	if nsq != nil && pgd != nil {
		fmt.Fprintf(&md, "\nTraining time: noisy-sq %.0f s, pgd-at %.0f s. Per training image seen, pgd-at costs "+
			"%.1f× noisy-sq's time (its %d inner PGD steps).\n", nsq.TrainSeconds, pgd.TrainSeconds,
			pgd.perImage()/nsq.perImage(), pgdSteps)
		for _, r := range rs {
			if r.Stopped != "" {
				fmt.Fprintf(&md, "%s stopped early: %s.\n", r.Plan.Method, r.Stopped)
			}
		}
	} else if nsq != nil {
		fmt.Fprintf(&md, "\nNo PGD adversarial training in this budget: `sqnet bench train` measures its cost per "+
			"training image against noisy-sq's in seconds.\n")
	}
	fmt.Fprintf(&md, "\n![robust accuracy against training time](robust-vs-time.png)\n")
	var series []report.Series
	for _, r := range rs {
		s := report.Series{Name: r.Plan.Method}
		for _, p := range r.Curve {
			s.X, s.Y = append(s.X, p.TrainSeconds), append(s.Y, p.PGD)
		}
		if len(s.X) > 0 {
			series = append(series, s)
		}
	}
	xlabel, logX := "training wall time (s)", spansDecade(series)
	if logX {
		xlabel += ", log scale"
	}
	if err := report.LinePlot(filepath.Join(out, "robust-vs-time.png"), fmt.Sprintf("PGD accuracy (ε = %g) during "+
		"training", eps), xlabel, "robust accuracy", series, logX); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(map[string]any{"dataset": dataset, "arch": arch, "budget": budget, "device": dev, "eps": eps,
		"generated": time.Now().UTC().Format(time.RFC3339), "commit": buildCommit(), "methods": rs}, "", "  ")
	if err := writeFileAtomic(filepath.Join(out, "results.json"), append(b, '\n')); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(out, "results.md"), []byte(md.String())); err != nil {
		return err
	}
	fmt.Fprint(w, md.String())
	fmt.Fprintf(w, "\nwrote %s\n", filepath.Join(out, "results.md"))
	return nil
}

// spansDecade reports whether the series' last x values (each method's training time) differ by 10× or more, so
// that a linear time axis would crush the cheaper methods against the origin; a log axis then needs every x > 0.
func spansDecade(series []report.Series) bool {
	lo, hi := math.Inf(1), 0.0
	for _, s := range series {
		for _, x := range s.X {
			if !(x > 0) {
				return false
			}
		}
		lo, hi = min(lo, s.X[len(s.X)-1]), max(hi, s.X[len(s.X)-1])
	}
	return len(series) > 1 && hi >= 10*lo
}

// suitesOf lists every evaluation of the results, in order.
func suitesOf(rs []*methodResult) []*attack.SuiteReport {
	var out []*attack.SuiteReport
	for _, r := range rs {
		out = append(out, r.Suites...)
	}
	return out
}

// deployedRow labels a method's row of the results table: the method, and its deployed classifier when the run
// judges a quantized model by more than one or by the hard quantizer.
func deployedRow(method string, ck *model.Checkpoint, deploy []quant.Mode, m quant.Mode) string {
	if ck.Quant == nil || (len(deploy) == 1 && m == quant.Soft) {
		return method
	}
	return method + ", " + attack.DeployDesc(ck, m)
}

// find returns the result of method, or nil when the budget did not train it.
func find(rs []*methodResult, method string) *methodResult {
	for _, r := range rs {
		if r.Plan.Method == method {
			return r
		}
	}
	return nil
}

// perImage is the training seconds per training image processed.
func (r *methodResult) perImage() float64 { return r.TrainSeconds / float64(max(r.TrainImages, 1)) }
