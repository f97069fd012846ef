package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sqnet/sqnet/attack"
	"github.com/sqnet/sqnet/data"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/vk"
)

// attackFlags are the flags that describe one attack.
type attackFlags struct {
	kind                    string
	eps, step, kappa        float32
	steps, restarts, batch  int
	loss, through, evalMode string
	seed                    uint64
}

func (f *attackFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&f.kind, "attack", "pgd", "attack: fgsm, pgd, bpda (PGD through the hard quantizer, identity backward), cw (PGD on the CW margin)")
	fl.Float32Var(&f.eps, "eps", 0.3, "ℓ∞ radius ε")
	fl.IntVar(&f.steps, "steps", 40, "PGD steps")
	fl.Float32Var(&f.step, "step", 0.01, "PGD step size η")
	fl.IntVar(&f.restarts, "restarts", 1, "random restarts (an example is robust only if it survives all)")
	fl.StringVar(&f.loss, "loss", "", "loss the attack ascends: ce or cw (default: cw for --attack cw, else ce)")
	fl.Float32Var(&f.kappa, "kappa", float32(math.Inf(1)), "CW confidence clamp κ")
	fl.StringVar(&f.through, "through", "", "how the quantizer is differentiated: soft, bpda, bpda-soft (default: bpda for --attack bpda, else soft)")
	fl.StringVar(&f.evalMode, "eval-mode", "", "how the defended model classifies: soft or hard (default: hard for --attack bpda, else soft)")
	fl.IntVar(&f.batch, "batch", 100, "images per attack batch (one command buffer per batch and restart)")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the random starts")
}

// config turns the flags into an attack configuration, rejecting bad values as usage errors.
func (f *attackFlags) config() (attack.Config, error) {
	var c attack.Config
	switch f.kind {
	case "fgsm":
		c = attack.FGSM(f.eps)
	case "pgd", "bpda", "cw":
		c = attack.PGD(f.eps, f.step, f.steps, f.restarts)
	default:
		return c, usageError{fmt.Errorf("--attack %q: want fgsm, pgd, bpda or cw", f.kind)}
	}
	c.Name, c.Kappa, c.Batch, c.Seed = f.kind, f.kappa, f.batch, f.seed
	if f.kind != "fgsm" {
		c.Name = fmt.Sprintf("%s-%d×%d", f.kind, f.steps, f.restarts)
	}
	c.Loss = f.loss
	if c.Loss == "" {
		c.Loss = map[bool]string{true: "cw", false: "ce"}[f.kind == "cw"]
	}
	through, eval := f.through, f.evalMode
	if through == "" {
		through = map[bool]string{true: "bpda", false: "soft"}[f.kind == "bpda"]
	}
	if eval == "" {
		eval = map[bool]string{true: "hard", false: "soft"}[f.kind == "bpda"]
	}
	var err error
	if c.Through, err = quant.ParseMode(through); err != nil {
		return c, usageError{fmt.Errorf("--through: %w", err)}
	}
	if c.Eval, err = quant.ParseMode(eval); err != nil || (c.Eval != quant.Soft && c.Eval != quant.Hard) {
		return c, usageError{fmt.Errorf("--eval-mode %q: want soft or hard", eval)}
	}
	if err := c.Validate(); err != nil {
		return c, usageError{err}
	}
	return c, nil
}

func newAttackCmd(g *globals) *cobra.Command {
	var af attackFlags
	var ckPath, dataDir, out string
	var limit int
	c := &cobra.Command{
		Use:   "attack",
		Short: "Attack a checkpoint on its test set and report robust accuracy",
		Long: "attack runs one ℓ∞ attack (FGSM, PGD, BPDA, CW-PGD) against a checkpoint on the first --limit test images\n" +
			"and prints the robust accuracy; with --out DIR it also writes result.json and result.md there (atomically).",
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := af.config()
			if err != nil {
				return err
			}
			ck, set, err := loadTarget(ckPath, dataDir, limit)
			if err != nil {
				return err
			}
			d, err := vk.Open(g.vkOptions())
			if err != nil {
				return err
			}
			defer d.Close()
			a, err := attack.New(kernels.New(d), ck, cfg)
			if err != nil {
				return err
			}
			defer a.Close()
			res, err := a.Run(set.Images, set.Labels, nil, set.N)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%s at ε=%g on %d %s images (%s, quantizer %s): robust accuracy %.2f%% "+
				"(%d/%d), %.1f s, %d submits, on %s\n", res.Name, res.Eps, res.N, set.Name, ck.Arch.Name,
				quantDesc(ck, cfg), 100*res.Accuracy, res.Correct, res.N, res.Seconds, res.Submits, d.Name())
			if out == "" {
				return nil
			}
			return writeAttackReport(out, ckPath, d.Name(), cfg, res)
		},
	}
	af.register(c)
	c.Flags().StringVar(&ckPath, "model", "", "checkpoint to attack (safetensors written by sqnet train)")
	c.Flags().StringVar(&dataDir, "data", "", "dataset folder (default: $SQNET_DATA, else its usual place)")
	c.Flags().IntVar(&limit, "limit", 1000, "attack the first N test images (0: all)")
	c.Flags().StringVar(&out, "out", "", "folder for result.json and result.md")
	return c
}

// quantDesc says how the quantizer takes part in an attack.
func quantDesc(ck *model.Checkpoint, cfg attack.Config) string {
	if ck.Quant == nil {
		return quantString(nil)
	}
	return fmt.Sprintf("%s, gradient %s, classifying %s", quantString(ck.Quant), cfg.Through, cfg.Eval)
}

// writeAttackReport writes result.json and result.md into dir, each atomically.
func writeAttackReport(dir, ckPath, device string, cfg attack.Config, res *attack.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	doc := map[string]any{"checkpoint": ckPath, "device": device, "attack": cfg, "result": res}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, "result.json"), append(b, '\n')); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "| checkpoint | attack | ε | steps × restarts | loss | gradient | classifier | robust accuracy |\n")
	fmt.Fprintf(&md, "|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&md, "| %s | %s | %g | %d × %d | %s | %s | %s | %.2f%% (%d/%d) |\n", filepath.Base(ckPath), res.Name,
		cfg.Eps, cfg.Steps, cfg.Restarts, cfg.Loss, cfg.Through, cfg.Eval, 100*res.Accuracy, res.Correct, res.N)
	fmt.Fprintf(&md, "\nDevice: %s. %d submits, %.1f s.\n", device, res.Submits, res.Seconds)
	return writeFileAtomic(filepath.Join(dir, "result.md"), []byte(md.String()))
}

// loadTarget loads the checkpoint to evaluate and the first limit images of its dataset's test split, checking
// that they fit each other. Every failure is a usage error (exit 2).
func loadTarget(ckPath, dataDir string, limit int) (*model.Checkpoint, *data.Set, error) {
	if ckPath == "" {
		return nil, nil, usageError{fmt.Errorf("--model: a checkpoint is required")}
	}
	if limit < 0 {
		return nil, nil, usageError{fmt.Errorf("--limit %d: must be ≥ 0", limit)}
	}
	ck, err := model.Load(ckPath)
	if err != nil {
		return nil, nil, usageError{err}
	}
	set, err := data.Load(ck.Dataset, dataDir, data.Test)
	if err != nil {
		return nil, nil, usageError{err}
	}
	if set.C != ck.Arch.C || set.H != ck.Arch.H || set.W != ck.Arch.W || set.Classes != ck.Arch.Classes {
		return nil, nil, usageError{fmt.Errorf("checkpoint %s expects %d×%d×%d images of %d classes; %s has "+
			"%d×%d×%d, %d", ckPath, ck.Arch.C, ck.Arch.H, ck.Arch.W, ck.Arch.Classes, set.Name, set.C, set.H, set.W,
			set.Classes)}
	}
	return ck, set.Subset(limit), nil
}
