package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sqnet/sqnet/attack"
	"github.com/sqnet/sqnet/data"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/vk"
)

// attackFlags are the flags that describe one attack.
type attackFlags struct {
	kind                  string
	eps, step, kappa      float32
	steps, restarts       int
	batch, iters, queries int
	targets               int
	loss, through, deploy string
	seed                  uint64
}

// pgdFamily lists the attacks of attack.Config (one PGD program); the rest are AutoAttack's (attack.SingleAttacks).
var pgdFamily = []string{"fgsm", "pgd", "bpda", "cw"}

func (f *attackFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&f.kind, "attack", "pgd", "attack: fgsm, pgd, bpda (PGD through the hard quantizer, identity "+
		"backward), cw (PGD on the CW margin), or AutoAttack's apgd-ce, apgd-dlr, apgd-t, fab-t, square (also --method)")
	fl.Float32Var(&f.eps, "eps", 0.3, "ℓ∞ radius ε in pixel units, 0 ≤ ε ≤ 1")
	fl.IntVar(&f.steps, "steps", 40, "PGD steps")
	fl.Float32Var(&f.step, "step", 0.01, "PGD step size η")
	fl.IntVar(&f.restarts, "restarts", 1, "random restarts (an example is robust only if it survives all)")
	fl.StringVar(&f.loss, "loss", "", "loss PGD ascends: ce or cw (default: cw for --attack cw, else ce)")
	fl.Float32Var(&f.kappa, "kappa", float32(math.Inf(1)), "CW confidence clamp κ")
	fl.StringVar(&f.through, "through", "", "how the quantizer is differentiated: soft, bpda, bpda-soft (default: "+
		"bpda for --attack bpda, else soft)")
	fl.StringVar(&f.deploy, "deploy", "", "the classifier candidates are judged by: soft, hard or both (default: "+
		"the checkpoint's)")
	fl.IntVar(&f.iters, "iters", 100, "apgd-*, fab-t: iterations (AutoAttack: 100)")
	fl.IntVar(&f.targets, "targets", 9, "apgd-t, fab-t: target classes, the highest others in turn (AutoAttack: 9)")
	fl.IntVar(&f.queries, "queries", 5000, "square: iterations after the start, one query each (AutoAttack: 5000)")
	fl.IntVar(&f.batch, "batch", 100, "images per attack batch (one command buffer per batch and restart)")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of random starts and of Square's queries")
	// --method is the same flag: AutoAttack's attacks are usually called methods.
	fl.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "method" {
			name = "attack"
		}
		return pflag.NormalizedName(name)
	})
}

// autoAttack reports whether the flags name one of AutoAttack's attacks.
func (f *attackFlags) autoAttack() bool { return slices.Contains(attack.SingleAttacks, f.kind) }

// check validates every flag that does not need the checkpoint, as usage errors.
func (f *attackFlags) check() error {
	if !slices.Contains(pgdFamily, f.kind) && !f.autoAttack() {
		return usageError{fmt.Errorf("--attack %q: want one of %s", f.kind,
			strings.Join(append(slices.Clone(pgdFamily), attack.SingleAttacks...), ", "))}
	}
	if err := checkEps(f.eps); err != nil {
		return err
	}
	switch {
	case f.batch < 1:
		return usageError{fmt.Errorf("--batch %d: want at least 1", f.batch)}
	case f.iters < 1:
		return usageError{fmt.Errorf("--iters %d: want at least 1", f.iters)}
	case f.targets < 1:
		return usageError{fmt.Errorf("--targets %d: want at least 1", f.targets)}
	case f.queries < 1:
		return usageError{fmt.Errorf("--queries %d: want at least 1", f.queries)}
	}
	if f.through != "" {
		m, err := quant.ParseMode(f.through)
		if err != nil || m == quant.Hard {
			return usageError{fmt.Errorf("--through %q: want soft, bpda or bpda-soft", f.through)}
		}
	}
	if f.autoAttack() {
		return nil
	}
	_, err := f.config(nil)
	return err
}

// throughMode is the gradient path the flags ask for.
func (f *attackFlags) throughMode() quant.Mode {
	through := f.through
	if through == "" {
		through = map[bool]string{true: "bpda", false: "soft"}[f.kind == "bpda"]
	}
	m, _ := quant.ParseMode(through) // checked by check
	return m
}

// config turns the flags into a PGD-family configuration judged by deploy, rejecting bad values as usage errors.
func (f *attackFlags) config(deploy []quant.Mode) (attack.Config, error) {
	var c attack.Config
	switch f.kind {
	case "fgsm":
		c = attack.FGSM(f.eps)
	default:
		c = attack.PGD(f.eps, f.step, f.steps, f.restarts)
	}
	c.Name, c.Kappa, c.Batch, c.Seed, c.Deploy = f.kind, f.kappa, f.batch, f.seed, deploy
	if f.kind != "fgsm" {
		c.Name = fmt.Sprintf("%s-%d×%d", f.kind, f.steps, f.restarts)
	}
	c.Loss = f.loss
	if c.Loss == "" {
		c.Loss = map[bool]string{true: "cw", false: "ce"}[f.kind == "cw"]
	}
	c.Through = f.throughMode()
	if err := c.Validate(); err != nil {
		return c, usageError{err}
	}
	return c, nil
}

// autoAttackConfig is the effort of a single AutoAttack attack from the flags.
func (f *attackFlags) autoAttackConfig() attack.AutoAttack {
	aa := attack.StandardAutoAttack(f.eps, f.seed, f.batch)
	aa.APGDIters, aa.FABIters, aa.Targets, aa.SquareIters = f.iters, f.iters, f.targets, f.queries
	return aa
}

func newAttackCmd(g *globals) *cobra.Command {
	var af attackFlags
	var ckPath, dataDir, out string
	var limit int
	c := &cobra.Command{
		Use:   "attack",
		Short: "Attack a checkpoint on its test set and report robust accuracy",
		Long: "attack runs one ℓ∞ attack against a checkpoint on the first --limit test images and prints the robust\n" +
			"accuracy: FGSM, PGD, BPDA or CW-PGD, or one of AutoAttack's (apgd-ce, apgd-dlr, apgd-t, fab-t, square; also\n" +
			"spelled --method). Every candidate is judged by the deployed classifier (--deploy). With --out DIR it also\n" +
			"writes result.json and result.md there (atomically).",
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := af.check(); err != nil {
				return err
			}
			ck, set, err := loadTarget(ckPath, dataDir, limit)
			if err != nil {
				return err
			}
			deploy, err := attack.ParseDeploy(af.deploy, ck)
			if err != nil {
				return usageError{err}
			}
			var cfg attack.Config
			if !af.autoAttack() {
				if cfg, err = af.config(deploy); err != nil {
					return err
				}
			}
			d, err := vk.Open(g.vkOptions())
			if err != nil {
				return err
			}
			defer d.Close()
			lib := kernels.New(d)
			var rs []*attack.Result
			if af.autoAttack() {
				bar := newAttackProgress(c.ErrOrStderr(), "")
				rs, err = af.autoAttackConfig().Single(lib, ck, af.kind, af.throughMode(), deploy, set.Images,
					set.Labels, set.N, bar.update)
				bar.clear()
			} else {
				var a *attack.Attacker
				if a, err = attack.New(lib, ck, cfg); err == nil {
					rs, err = a.RunAll(set.Images, set.Labels, nil, set.N)
					a.Close()
				}
			}
			if err != nil {
				return err
			}
			for _, res := range rs {
				fmt.Fprintf(c.OutOrStdout(), "%s at ε=%g on %d %s images (%s, %s): robust accuracy %.2f%% (%d/%d), "+
					"%.1f s, on %s\n", res.Name, res.Eps, res.N, set.Name, ck.Arch.Name, quantDesc(ck, af, res.Deploy),
					100*res.Accuracy, res.Correct, res.N, res.Seconds, d.Name())
			}
			if out == "" {
				return nil
			}
			return writeAttackReport(out, ckPath, d.Name(), ck, af, cfg, rs)
		},
	}
	af.register(c)
	c.Flags().StringVar(&ckPath, "model", "", "checkpoint to attack (safetensors written by sqnet train)")
	c.Flags().StringVar(&dataDir, "data", "", "dataset folder (default: $SQNET_DATA, else its usual place)")
	c.Flags().IntVar(&limit, "limit", 1000, "attack the first N test images (0: all)")
	c.Flags().StringVar(&out, "out", "", "folder for result.json and result.md")
	return c
}

// quantDesc says how the quantizer takes part in an attack: the gradient path and the deployed classifier.
func quantDesc(ck *model.Checkpoint, af attackFlags, deploy quant.Mode) string {
	if ck.Quant == nil {
		return "no quantizer"
	}
	grad := af.throughMode().String()
	if af.kind == "square" {
		grad = "none (black box)"
	}
	return fmt.Sprintf("quantizer %s, gradient %s, deployed %s", quantString(ck.Quant), grad, deploy)
}

// writeAttackReport writes result.json and result.md into dir, each atomically.
func writeAttackReport(dir, ckPath, device string, ck *model.Checkpoint, af attackFlags, cfg attack.Config,
	rs []*attack.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	doc := map[string]any{"checkpoint": ckPath, "device": device, "attack": af.kind, "results": rs}
	if af.autoAttack() {
		doc["autoattack"] = af.autoAttackConfig()
		doc["through"] = af.throughMode()
	} else {
		doc["config"] = cfg
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, "result.json"), append(b, '\n')); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "| checkpoint | attack | ε | gradient | deployed | robust accuracy | queries |\n")
	fmt.Fprintf(&md, "|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		q := "—"
		if r.Queries > 0 {
			q = humanCount(r.Queries)
		}
		fmt.Fprintf(&md, "| %s | %s | %g | %s | %s | %.2f%% (%d/%d) | %s |\n", filepath.Base(ckPath), r.Name, r.Eps,
			af.throughMode(), attack.DeployDesc(ck, r.Deploy), 100*r.Accuracy, r.Correct, r.N, q)
	}
	fmt.Fprintf(&md, "\nDevice: %s. %.1f s.\n", device, rs[0].Seconds)
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
	var set *data.Set
	if ck.Dataset == "folder" {
		// The val split at the model's input size; only the --limit images evaluated are decoded.
		root, err := data.Locate(ck.Dataset, dataDir)
		if err != nil {
			return nil, nil, usageError{err}
		}
		set, err = data.LoadFolderSet(root, data.Val, ck.Arch.H, limit)
		if err != nil {
			return nil, nil, usageError{err}
		}
	} else if set, err = data.Load(ck.Dataset, dataDir, data.Test); err != nil {
		return nil, nil, usageError{err}
	}
	if set.C != ck.Arch.C || set.H != ck.Arch.H || set.W != ck.Arch.W || set.Classes != ck.Arch.Classes {
		return nil, nil, usageError{fmt.Errorf("checkpoint %s expects %d×%d×%d images of %d classes; %s has "+
			"%d×%d×%d, %d", ckPath, ck.Arch.C, ck.Arch.H, ck.Arch.W, ck.Arch.Classes, set.Name, set.C, set.H, set.W,
			set.Classes)}
	}
	return ck, set.Subset(limit), nil
}
