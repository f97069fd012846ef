package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sqnet/sqnet/attack"
	"github.com/sqnet/sqnet/data"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/report"
	"github.com/sqnet/sqnet/train"
	"github.com/sqnet/sqnet/vk"
)

// plan is one method's training budget in a reproduction.
type plan struct {
	Method string `json:"method"`
	Epochs int    `json:"epochs"`
	Limit  int    `json:"train_images"` // 0: all
}

// budgets are the reproduction budgets. mini is the paper in miniature that `make run` shows in a few minutes on a
// 2-core lavapipe machine: noisy-sq next to natural training, one epoch each, under clean, FGSM, PGD and BPDA — no
// adversarial training, whose cost `sqnet bench train` measures in seconds instead. quick fits a coffee break
// there: PGD-AT costs 41 forward/backward passes per step, so it sees a tenth of an epoch — which is the point the
// paper makes.
var budgets = map[string]budgetPlan{
	"mini":  {[]plan{{"natural", 1, 0}, {"noisy-sq", 1, 0}}, "quick", 300, 100, 20, 0},
	"quick": {[]plan{{"natural", 1, 0}, {"noisy-sq", 2, 0}, {"fgsm-rs", 1, 0}, {"pgd-at", 1, 6000}}, "quick", 500, 200, 20, 0},
	"full":  {[]plan{{"natural", 3, 0}, {"noisy-sq", 3, 0}, {"fgsm-rs", 3, 0}, {"pgd-at", 1, 0}}, "standard", 1000, 500, 20, 0},
	// smoke exercises the whole pipeline in seconds (tests); its numbers mean nothing.
	"smoke": {[]plan{{"natural", 1, 100}, {"noisy-sq", 1, 100}, {"fgsm-rs", 1, 100}, {"pgd-at", 1, 100}}, "smoke", 20, 20, 3, 3},
}

// budgetNames lists the budgets in the order help and errors name them, cheapest real one first.
var budgetNames = []string{"mini", "quick", "full", "smoke"}

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
	Plan         plan                `json:"plan"`
	TrainSeconds float64             `json:"train_seconds"`
	Checkpoint   string              `json:"checkpoint"`
	Suite        *attack.SuiteReport `json:"evaluation"`
	Curve        []curvePoint        `json:"robust_vs_time"`
}

type curvePoint struct {
	TrainSeconds float64 `json:"train_seconds"`
	PGD          float64 `json:"pgd_accuracy"`
}

func newReproduceCmd(g *globals) *cobra.Command {
	var arch, budget, out string
	c := &cobra.Command{
		Use:   "reproduce mnist",
		Short: "Reproduce the paper on MNIST: train natural, noisy-sq, fgsm-rs and pgd-at (mini: the first two), evaluate, compare costs",
		Long: "reproduce trains each method on real MNIST, evaluates it with an attack suite (BPDA included for the\n" +
			"quantized model), measures robust accuracy along training, and writes results.md, results.json and\n" +
			"robust-vs-time.png (worst-case PGD accuracy against training wall time) to --out, with the training time\n" +
			"of each method and the speed-up of noisy-sq over pgd-at.",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 || args[0] != "mnist" {
				return usageError{fmt.Errorf("reproduce takes one argument, the dataset: mnist")}
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error {
			b, ok := budgets[budget]
			if !ok {
				return usageError{fmt.Errorf("--budget %q: want one of %s", budget, strings.Join(budgetNames, ", "))}
			}
			if _, err := model.Lookup(arch, 1, 28, 28, 10); err != nil {
				return usageError{err}
			}
			test, err := data.Load("mnist", "", data.Test)
			if err != nil {
				return usageError{err}
			}
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
			return reproduce(ctx, c.OutOrStdout(), kernels.New(d), arch, budget, b, test, out)
		},
	}
	c.Flags().StringVar(&arch, "model", "small", "architecture: small or madry")
	c.Flags().StringVar(&budget, "budget", "quick", "mini (natural and noisy-sq only, a few minutes on a CPU), quick "+
		"(all four methods, a coffee break on a CPU), full (hours on a CPU), or smoke (seconds; meaningless numbers)")
	c.Flags().StringVar(&out, "out", "out/reproduce-mnist", "folder for checkpoints and results")
	return c
}

func reproduce(ctx context.Context, w io.Writer, lib *kernels.Lib, arch, budget string, b budgetPlan, test *data.Set,
	out string) error {
	const eps = 0.3
	dev := lib.Device().Name()
	evalSet, curveSet := test.Subset(b.evalLimit), test.Subset(b.curveAt)
	var results []*methodResult
	for _, p := range b.plans {
		cfg := train.Defaults()
		cfg.Model, cfg.Method, cfg.Epochs, cfg.Limit = arch, p.Method, p.Epochs, p.Limit
		if b.pgdSteps > 0 {
			cfg.PGDSteps = b.pgdSteps
		}
		cfg.Out = filepath.Join(out, "checkpoints", fmt.Sprintf("%s-%s.safetensors", arch, p.Method))
		mr := &methodResult{Plan: p, Checkpoint: cfg.Out}
		// Robust accuracy along the way: PGD against each epoch's checkpoint.
		cfg.OnEpoch = func(e train.EpochResult, path string) error {
			ck, err := model.Load(path)
			if err != nil {
				return err
			}
			c := attack.PGDk(eps, b.curveSteps, 1)
			a, err := attack.New(lib, ck, c)
			if err != nil {
				return err
			}
			defer a.Close()
			r, err := a.Run(curveSet.Images, curveSet.Labels, nil, curveSet.N)
			if err != nil {
				return err
			}
			mr.Curve = append(mr.Curve, curvePoint{e.TrainSeconds, r.Accuracy})
			fmt.Fprintf(w, "  %s epoch %d: test %.2f%%, PGD-%d %.1f%%, %.0f s of training\n", p.Method, e.Epoch,
				100*e.TestAcc, b.curveSteps, 100*r.Accuracy, e.TrainSeconds)
			return nil
		}
		fmt.Fprintf(w, "training %s (%d epoch(s)%s) on %s\n", p.Method, p.Epochs, limitDesc(p.Limit), dev)
		res, err := train.Run(ctx, lib, cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", p.Method, err)
		}
		mr.TrainSeconds = res.Epochs[len(res.Epochs)-1].TrainSeconds
		ck, err := model.Load(cfg.Out)
		if err != nil {
			return err
		}
		cs, err := attack.SuiteConfigs(b.suite, ck, eps, 100, 1)
		if err != nil {
			return err
		}
		mr.Suite, err = attack.RunSuite(lib, ck, nil, cs, evalSet.Images, evalSet.Labels, evalSet.N, func(r *attack.Result) {
			fmt.Fprintf(w, "  %s %-18s %6.2f%%\n", p.Method, r.Name, 100*r.Accuracy)
		})
		if err != nil {
			return err
		}
		results = append(results, mr)
	}
	return writeReproduction(w, out, arch, budget, dev, eps, results)
}

func limitDesc(n int) string {
	if n == 0 {
		return ", all 60000 images"
	}
	return fmt.Sprintf(", the first %d images", n)
}

// writeReproduction writes results.md, results.json and robust-vs-time.png.
func writeReproduction(w io.Writer, out, arch, budget, dev string, eps float32, rs []*methodResult) error {
	var md strings.Builder
	fmt.Fprintf(&md, "# sqnet reproduce mnist — %s, budget %s\n\n", arch, budget)
	fmt.Fprintf(&md, "Device: %s. ε = %g (ℓ∞). Adam 1e-3, batch 50, seed 1. Evaluated on the first %d test images; "+
		"worst case = per example over every attack.\n\n", dev, eps, rs[0].Suite.N)
	// Columns: every attack any method faced (BPDA only applies to the quantized model), in the order of the
	// method that faced the most, then any others.
	names, seen := []string{}, map[string]bool{}
	longest := rs[0]
	for _, r := range rs {
		if len(r.Suite.Results) > len(longest.Suite.Results) {
			longest = r
		}
	}
	for _, r := range append([]*methodResult{longest}, rs...) {
		for _, a := range r.Suite.Results {
			if !seen[a.Name] {
				seen[a.Name] = true
				names = append(names, a.Name)
			}
		}
	}
	fmt.Fprintf(&md, "| method | epochs | train images | train time (s) | %s | worst case |\n", strings.Join(names, " | "))
	fmt.Fprintf(&md, "|---|---|---|---|%s---|\n", strings.Repeat("---|", len(names)))
	var nsq, pgd float64
	for _, r := range rs {
		imgs := "60000"
		if r.Plan.Limit > 0 {
			imgs = fmt.Sprint(r.Plan.Limit)
		}
		cells := map[string]string{}
		for _, a := range r.Suite.Results {
			cells[a.Name] = fmt.Sprintf("%.1f", 100*a.Accuracy)
		}
		row := []string{}
		for _, n := range names {
			v, ok := cells[n]
			if !ok {
				v = "—"
			}
			row = append(row, v)
		}
		fmt.Fprintf(&md, "| %s | %d | %s | %.0f | %s | **%.1f** |\n", r.Plan.Method, r.Plan.Epochs, imgs,
			r.TrainSeconds, strings.Join(row, " | "), 100*r.Suite.WorstAccuracy)
		switch r.Plan.Method {
		case "noisy-sq":
			nsq = r.TrainSeconds
		case "pgd-at":
			pgd = r.TrainSeconds
		}
	}
	if nsq > 0 && pgd > 0 {
		fmt.Fprintf(&md, "\nTraining time: noisy-sq %.0f s, pgd-at %.0f s. Per training image seen, pgd-at costs "+
			"%.1f× noisy-sq's time (its 40 inner PGD steps).\n", nsq, pgd, perImage(rs, "pgd-at")/perImage(rs, "noisy-sq"))
	} else if nsq > 0 {
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
	if err := report.LinePlot(filepath.Join(out, "robust-vs-time.png"), "PGD accuracy (ε=0.3) during training",
		"training wall time (s)", "robust accuracy", series); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(map[string]any{"arch": arch, "budget": budget, "device": dev, "eps": eps,
		"generated": time.Now().UTC().Format(time.RFC3339), "methods": rs}, "", "  ")
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

// perImage is a method's training seconds per training image processed.
func perImage(rs []*methodResult, method string) float64 {
	for _, r := range rs {
		if r.Plan.Method == method {
			n := r.Plan.Limit
			if n == 0 {
				n = 60000
			}
			return r.TrainSeconds / float64(n*r.Plan.Epochs)
		}
	}
	return 0
}
