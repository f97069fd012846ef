package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sqnet/sqnet/attack"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/report"
	"github.com/sqnet/sqnet/vk"
)

// quantString names a checkpoint's quantizer for messages.
func quantString(q *quant.Config) string {
	if q == nil {
		return "none"
	}
	return q.String()
}

func newEvalCmd(g *globals) *cobra.Command {
	var ckPath, dataDir, out, suite, surrogate string
	var limit, batch int
	var eps float32
	var seed uint64
	c := &cobra.Command{
		Use:   "eval",
		Short: "Evaluate a checkpoint under a suite of attacks and report per-attack and worst-case robust accuracy",
		Long: "eval runs a suite of attacks (standard: clean, FGSM, PGD-40, PGD-100×10, CW-PGD-100, BPDA-100×10 when the\n" +
			"model has a quantizer, random search) and reports each attack's robust accuracy and the per-example worst\n" +
			"case: an example counts only if it survives every attack. With --out DIR it writes eval.json, eval.md,\n" +
			"examples.png (clean / adversarial / amplified perturbation of the strongest attack) and accuracy-vs-eps.png.",
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ck, set, err := loadTarget(ckPath, dataDir, limit)
			if err != nil {
				return err
			}
			if !(eps >= 0) || batch < 1 {
				return usageError{fmt.Errorf("--eps %v and --batch %d: need ε ≥ 0 and a positive batch", eps, batch)}
			}
			cs, err := attack.SuiteConfigs(suite, ck, eps, batch, seed)
			if err != nil {
				return usageError{err}
			}
			var sur *model.Checkpoint
			if surrogate != "" {
				if sur, _, err = loadTarget(surrogate, dataDir, 1); err != nil {
					return err
				}
			}
			d, err := vk.Open(g.vkOptions())
			if err != nil {
				return err
			}
			defer d.Close()
			stdout := c.OutOrStdout()
			fmt.Fprintf(stdout, "evaluating %s (%s, %s, quantizer %s) on %d %s images at ε=%g on %s\n", ckPath,
				ck.Arch.Name, ck.Method, quantString(ck.Quant), set.N, set.Name, eps, d.Name())
			rep, err := attack.RunSuite(kernels.New(d), ck, sur, cs, set.Images, set.Labels, set.N, func(r *attack.Result) {
				fmt.Fprintf(stdout, "  %-18s %6.2f%%  (%.1f s)\n", r.Name, 100*r.Accuracy, r.Seconds)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "  %-18s %6.2f%%  (every attack, per example)\n", "worst case", 100*rep.WorstAccuracy)
			if out == "" {
				return nil
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			doc := map[string]any{"checkpoint": ckPath, "device": d.Name(), "eps": eps, "suite": suite,
				"arch": ck.Arch.Name, "method": ck.Method, "report": rep}
			b, _ := json.MarshalIndent(doc, "", "  ")
			if err := writeFileAtomic(filepath.Join(out, "eval.json"), append(b, '\n')); err != nil {
				return err
			}
			var md strings.Builder
			writeSuiteMarkdown(&md, ckPath, d.Name(), eps, rep)
			if err := writeFileAtomic(filepath.Join(out, "eval.md"), []byte(md.String())); err != nil {
				return err
			}
			if err := writeExamples(filepath.Join(out, "examples.png"), ck.Arch.H, ck.Arch.W, ck.Arch.C, set.Images,
				set.Labels, rep, eps); err != nil {
				return err
			}
			curveSteps := 20
			if suite == "smoke" {
				curveSteps = 3
			}
			return writeCurve(filepath.Join(out, "accuracy-vs-eps.png"), kernels.New(d), ck, set.Images, set.Labels,
				set.N, eps, batch, seed, curveSteps)
		},
	}
	f := c.Flags()
	f.StringVar(&ckPath, "model", "", "checkpoint to evaluate")
	f.StringVar(&suite, "suite", "standard", "attack suite: standard, quick or smoke")
	f.StringVar(&surrogate, "surrogate", "", "also a transfer attack: PGD-40 crafted on this checkpoint")
	f.Float32Var(&eps, "eps", 0.3, "ℓ∞ radius ε (MNIST 0.3)")
	f.IntVar(&limit, "limit", 1000, "evaluate on the first N test images (0: all)")
	f.IntVar(&batch, "batch", 100, "images per attack batch")
	f.Uint64Var(&seed, "seed", 1, "seed of random starts")
	f.StringVar(&dataDir, "data", "", "dataset folder (default: $SQNET_DATA, else its usual place)")
	f.StringVar(&out, "out", "", "folder for eval.json, eval.md, examples.png and accuracy-vs-eps.png")
	return c
}

// writeSuiteMarkdown renders a suite report as a Markdown table.
func writeSuiteMarkdown(w io.Writer, ckPath, device string, eps float32, rep *attack.SuiteReport) {
	fmt.Fprintf(w, "Robust accuracy of `%s` at ε = %g on %d test images (%s).\n\n", filepath.Base(ckPath), eps, rep.N,
		device)
	fmt.Fprintf(w, "| attack | robust accuracy | seconds |\n|---|---|---|\n")
	for _, r := range rep.Results {
		fmt.Fprintf(w, "| %s | %.2f%% | %.1f |\n", r.Name, 100*r.Accuracy, r.Seconds)
	}
	fmt.Fprintf(w, "| **worst case** (per example, every attack) | **%.2f%%** | %.1f |\n", 100*rep.WorstAccuracy,
		rep.Seconds)
}

func newAuditCmd(g *globals) *cobra.Command {
	var ckPath, dataDir, out, surrogate string
	var limit, steps int
	var eps float32
	c := &cobra.Command{
		Use:   "audit",
		Short: "Run the gradient-masking checklist against a checkpoint (each item PASS or WARN with its numbers)",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ck, set, err := loadTarget(ckPath, dataDir, limit)
			if err != nil {
				return err
			}
			if !(eps > 0) || steps < 1 {
				return usageError{fmt.Errorf("--eps %v and --steps %d: need ε > 0 and at least one step", eps, steps)}
			}
			opts := attack.AuditOptions{Eps: eps, Steps: steps, Seed: 1}
			if surrogate != "" {
				sck, _, err := loadTarget(surrogate, dataDir, 1)
				if err != nil {
					return err
				}
				opts.Surrogate = sck
			}
			d, err := vk.Open(g.vkOptions())
			if err != nil {
				return err
			}
			defer d.Close()
			rep, err := attack.Audit(kernels.New(d), ck, set.Images, set.Labels, set.N, opts)
			if err != nil {
				return err
			}
			var md strings.Builder
			fmt.Fprintf(&md, "Gradient-masking audit of `%s` at ε = %g on %d test images (%s): %d PASS, %d WARN.\n\n",
				filepath.Base(ckPath), eps, set.N, d.Name(), rep.Passed, rep.Warned)
			for _, ch := range rep.Checks {
				mark := "PASS"
				if !ch.Pass {
					mark = "WARN"
				}
				fmt.Fprintf(&md, "- **%s** %s: %s\n", mark, ch.Name, ch.Detail)
			}
			fmt.Fprint(c.OutOrStdout(), md.String())
			if out == "" {
				return nil
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			b, _ := json.MarshalIndent(map[string]any{"checkpoint": ckPath, "device": d.Name(), "eps": eps,
				"audit": rep}, "", "  ")
			if err := writeFileAtomic(filepath.Join(out, "audit.json"), append(b, '\n')); err != nil {
				return err
			}
			return writeFileAtomic(filepath.Join(out, "audit.md"), []byte(md.String()))
		},
	}
	f := c.Flags()
	f.StringVar(&ckPath, "model", "", "checkpoint to audit")
	f.Float32Var(&eps, "eps", 0.3, "the claimed ℓ∞ radius ε")
	f.IntVar(&steps, "steps", 40, "PGD steps of the audit's attacks")
	f.IntVar(&limit, "limit", 200, "audit on the first N test images (0: all)")
	f.StringVar(&surrogate, "surrogate", "", "a checkpoint to craft transfer attacks on (white-box ≥ transfer)")
	f.StringVar(&dataDir, "data", "", "dataset folder (default: $SQNET_DATA, else its usual place)")
	f.StringVar(&out, "out", "", "folder for audit.json and audit.md")
	return c
}

// writeExamples draws the first examples of the strongest attack in the report (lowest robust accuracy): clean,
// adversarial, amplified perturbation, with predictions.
func writeExamples(path string, h, w, c int, images []float32, labels []uint8, rep *attack.SuiteReport, eps float32) error {
	var clean, best *attack.Result
	for _, r := range rep.Results {
		if r.Name == "clean" {
			clean = r
		} else if best == nil || r.Accuracy < best.Accuracy {
			best = r
		}
	}
	if clean == nil || best == nil {
		return nil
	}
	sz := c * h * w
	var ex []report.Example
	for i := 0; i < min(10, rep.N); i++ {
		ex = append(ex, report.Example{Clean: images[i*sz : i*sz+h*w], Adv: best.Adv[i*sz : i*sz+h*w],
			Label: int(labels[i]), Clean1: int(clean.Pred[i]), Adv1: int(best.Pred[i])})
	}
	return report.Grid(path, ex, h, w, 3, eps)
}

// writeCurve measures PGD robust accuracy at five radii up to 4/3·ε and plots it.
func writeCurve(path string, lib *kernels.Lib, ck *model.Checkpoint, images []float32, labels []uint8, n int,
	eps float32, batch int, seed uint64, steps int) error {
	var xs, ys []float64
	for _, f := range []float32{0, 1.0 / 3, 2.0 / 3, 1, 4.0 / 3} {
		c := attack.PGDk(eps*f, steps, 1)
		c.Batch, c.Seed = batch, seed
		if f == 0 {
			c = attack.FGSM(0)
			c.Batch = batch
		}
		a, err := attack.New(lib, ck, c)
		if err != nil {
			return err
		}
		r, err := a.Run(images, labels, nil, n)
		a.Close()
		if err != nil {
			return err
		}
		xs, ys = append(xs, float64(eps*f)), append(ys, r.Accuracy)
	}
	return report.LinePlot(path, fmt.Sprintf("robust accuracy under PGD-%d", steps), "ε (ℓ∞)", "accuracy",
		[]report.Series{{Name: ck.Method, X: xs, Y: ys}})
}
