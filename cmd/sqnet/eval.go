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
	var ckPath, dataDir, out, suite, surrogate, deployFlag, shardFlag, progressFile string
	var limit, batch int
	var eps float32
	var seed uint64
	c := &cobra.Command{
		Use:   "eval",
		Short: "Evaluate a checkpoint under a suite of attacks (AutoAttack included) and report per-attack and worst-case robust accuracy",
		Long: "eval runs a suite of attacks and reports each attack's robust accuracy and the per-example worst case: an\n" +
			"example counts only if it survives every attack. standard: clean, AutoAttack (APGD-CE → APGD-T → FAB-T →\n" +
			"Square, each on the points still robust; the gradient attacks also through BPDA when the model has a\n" +
			"quantizer), then FGSM, PGD-40, PGD-100×10, CW-PGD-100, BPDA-100×10 and EOT-PGD-40×4 (quantized models) and\n" +
			"random search, then 2 more Square restarts on what survived (AutoAttack's own remedy for its Square\n" +
			"flag, run whether or not it fired); autoattack: clean and AutoAttack alone. Every candidate is judged by\n" +
			"the deployed classifier (--deploy; the checkpoint's by default). With --out DIR it writes eval.json (per\n" +
			"attack and per example), eval.md, examples.png and accuracy-vs-eps.png.\n\n" +
			"--shard i/N evaluates the i-th of N contiguous slices of the --limit images (0-based), each example\n" +
			"attacked exactly as in the whole run (randomness is drawn per example), and writes a partial eval.json;\n" +
			"sqnet merge combines the N folders into the whole run's report.",
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkEps(eps); err != nil {
				return err
			}
			if batch < 1 {
				return usageError{fmt.Errorf("--batch %d: want at least 1", batch)}
			}
			shard, err := parseShard(shardFlag)
			if err != nil {
				return usageError{err}
			}
			ck, set, err := loadTarget(ckPath, dataDir, limit)
			if err != nil {
				return err
			}
			total := set.N
			if shard != nil {
				set = shard.slice(set)
			}
			deploy, err := attack.ParseDeploy(deployFlag, ck)
			if err != nil {
				return usageError{err}
			}
			s, err := attack.NewSuite(suite, ck, eps, batch, seed)
			if err != nil {
				return usageError{err}
			}
			if shard != nil {
				s.SetFirstID(shard.First)
			}
			var sur *model.Checkpoint
			if surrogate != "" {
				if sur, _, err = loadTarget(surrogate, dataDir, 1); err != nil {
					return err
				}
			}
			if shard != nil && set.N == 0 {
				// More shards than images: this one has none. Its eval.json says so, for merge to count.
				fmt.Fprintf(c.OutOrStdout(), "shard %d/%d of the first %d images is empty: nothing to evaluate\n",
					shard.Index, shard.Count, total)
				if out == "" {
					return nil
				}
				return writeEvalJSON(out, &evalDoc{Checkpoint: ckPath, Eps: eps, Suite: suite, Arch: ck.Arch.Name,
					Method: ck.Method, Dataset: ck.Dataset, Quant: quantString(ck.Quant), Deploy: deploy, Seed: seed,
					Shard: shard, Commit: buildCommit(), Reports: []*attack.SuiteReport{}})
			}
			d, err := vk.Open(g.vkOptions())
			if err != nil {
				return err
			}
			defer d.Close()
			stdout := c.OutOrStdout()
			which := fmt.Sprintf("%d %s images", set.N, set.Name)
			if shard != nil {
				which = fmt.Sprintf("%s images %d–%d (shard %d/%d of the first %d)", set.Name, shard.First,
					shard.First+set.N-1, shard.Index, shard.Count, total)
			}
			fmt.Fprintf(stdout, "evaluating %s (%s, %s, quantizer %s, deployed %s) on %s at ε=%g on %s\n",
				ckPath, ck.Arch.Name, ck.Method, quantString(ck.Quant), deployList(ck, deploy), which, eps, d.Name())
			bar := newAttackProgress(c.ErrOrStderr(), progressFile)
			bar.mark("starting (" + suite + " suite)")
			lib := kernels.New(d)
			reps, err := attack.RunSuite(lib, ck, sur, s, deploy, set.Images, set.Labels, set.N,
				attack.SuiteHooks{
					Result: func(r *attack.Result) {
						bar.clear()
						bar.mark(r.Name + " done")
						fmt.Fprintf(stdout, "  %-22s %6.2f%%  (%.1f s)\n", tagged(r.Name, ck, deploy, r.Deploy),
							100*r.Accuracy, r.Seconds)
					},
					AutoAttack: func(aa *attack.AAReport) {
						bar.clear()
						writeAutoAttackLines(stdout, ck, deploy, aa)
					},
					Progress: bar.update,
				})
			bar.clear()
			if err != nil {
				return err
			}
			if bar.err != nil { // the progress file is for onlookers: losing it loses no result
				fmt.Fprintf(c.ErrOrStderr(), "warning: progress file: %v (the evaluation went on without it)\n", bar.err)
			}
			for _, rep := range reps {
				fmt.Fprintf(stdout, "  %-22s %6.2f%%  (every attack, per example)\n",
					tagged("worst case", ck, deploy, rep.Deploy), 100*rep.WorstAccuracy)
			}
			if out == "" {
				return nil
			}
			curve, err := measureCurve(lib, ck, deploy, set.Images, set.Labels, set.N, eps, batch, seed,
				curveSteps(suite), s.Attacks[0].FirstID)
			if err != nil {
				return err
			}
			doc := &evalDoc{Checkpoint: ckPath, Device: d.Name(), Eps: eps, Suite: suite,
				AutoAttack: s.HasAutoAttack(), Arch: ck.Arch.Name, Method: ck.Method, Dataset: ck.Dataset,
				Quant: quantString(ck.Quant), Deploy: deploy, N: set.N, Seed: seed, Shard: shard,
				Commit: buildCommit(), Reports: reps, Curve: curve}
			if err := writeEvalDoc(out, doc); err != nil {
				return err
			}
			return writeExamples(filepath.Join(out, "examples.png"), ck.Arch.H, ck.Arch.W, ck.Arch.C, set.Images,
				set.Labels, reps[0], eps)
		},
	}
	f := c.Flags()
	f.StringVar(&ckPath, "model", "", "checkpoint to evaluate")
	f.StringVar(&suite, "suite", "standard", "attack suite: "+strings.Join(attack.Suites, ", "))
	f.StringVar(&deployFlag, "deploy", "", "the classifier candidates are judged by: soft, hard or both (default: the "+
		"checkpoint's, soft when it says nothing)")
	f.StringVar(&surrogate, "surrogate", "", "also a transfer attack: PGD-40 crafted on this checkpoint")
	f.Float32Var(&eps, "eps", 0.3, "ℓ∞ radius ε in pixel units, 0 ≤ ε ≤ 1 (MNIST 0.3)")
	f.IntVar(&limit, "limit", 1000, "evaluate on the first N test images (0: all)")
	f.IntVar(&batch, "batch", 100, "images per attack batch")
	f.Uint64Var(&seed, "seed", 1, "seed of random starts and of Square's queries")
	f.StringVar(&dataDir, "data", "", "dataset folder (default: $SQNET_DATA, else its usual place)")
	f.StringVar(&out, "out", "", "folder for eval.json, eval.md, examples.png and accuracy-vs-eps.png")
	f.StringVar(&progressFile, "progress-file", "", "also write the attack under way to this file as JSON, every "+
		"few seconds (sqnet sweep status reads it)")
	f.StringVar(&shardFlag, "shard", "", "evaluate only slice i/N of the --limit images (0 ≤ i < N); combine with sqnet merge")
	return c
}

// evalDoc is eval.json.
type evalDoc struct {
	Checkpoint string                `json:"checkpoint"`
	Device     string                `json:"device"`
	Eps        float32               `json:"eps"`
	Suite      string                `json:"suite"`
	AutoAttack bool                  `json:"autoattack"` // whether the suite ran AutoAttack at its standard effort
	Arch       string                `json:"arch"`
	Method     string                `json:"method"`
	Dataset    string                `json:"dataset"`
	Quant      string                `json:"quant"`
	Deploy     []quant.Mode          `json:"deploy"`
	N          int                   `json:"n"`
	Seed       uint64                `json:"seed"`
	Shard      *shardSpec            `json:"shard,omitempty"`  // set in a shard's partial eval.json
	Commit     string                `json:"commit,omitempty"` // the commit sqnet was built from
	Reports    []*attack.SuiteReport `json:"reports"`          // one per deployed classifier
	Curve      []epsPoint            `json:"curve,omitempty"`  // accuracy-vs-eps.png's points
}

// writeEvalDoc writes eval.json, eval.md and accuracy-vs-eps.png into out, each atomically.
func writeEvalDoc(out string, doc *evalDoc) error {
	if err := writeEvalJSON(out, doc); err != nil {
		return err
	}
	var md strings.Builder
	writeSuiteMarkdown(&md, doc.Checkpoint, doc.Device, doc.Eps, doc.quantized(), doc.Reports)
	if err := writeFileAtomic(filepath.Join(out, "eval.md"), []byte(md.String())); err != nil {
		return err
	}
	return plotCurve(filepath.Join(out, "accuracy-vs-eps.png"), doc)
}

// writeEvalJSON writes doc as out/eval.json, atomically, creating out.
func writeEvalJSON(out string, doc *evalDoc) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return writeFileAtomic(filepath.Join(out, "eval.json"), append(b, '\n'))
}

// quantized reports whether the evaluated model has a quantizer (its deployed classifiers are then named by it).
func (d *evalDoc) quantized() bool { return d.Quant != "none" }

// curveSteps is the PGD steps of accuracy-vs-eps.png's points: 3 for the smoke suite, else 20.
func curveSteps(suite string) int {
	if suite == "smoke" {
		return 3
	}
	return 20
}

// checkEps validates an ℓ∞ radius flag: pixels live in [0, 1].
func checkEps(eps float32) error {
	if !(eps >= 0 && eps <= 1) {
		return usageError{fmt.Errorf("--eps %v: want 0 ≤ ε ≤ 1 (pixels are in [0, 1])", eps)}
	}
	return nil
}

// deployList names the deployed classifiers of an evaluation.
func deployList(ck *model.Checkpoint, deploy []quant.Mode) string {
	var s []string
	for _, m := range deploy {
		s = append(s, attack.DeployDesc(ck, m))
	}
	return strings.Join(s, " and ")
}

// tagged suffixes a line's name with its deployed classifier when an evaluation judges by more than one.
func tagged(name string, ck *model.Checkpoint, deploy []quant.Mode, m quant.Mode) string {
	if len(deploy) < 2 {
		return name
	}
	return name + " [" + m.String() + "]"
}

// writeAutoAttackLines prints AutoAttack's cumulative sequence against one deployed classifier.
func writeAutoAttackLines(w io.Writer, ck *model.Checkpoint, deploy []quant.Mode, aa *attack.AAReport) {
	fmt.Fprintf(w, "  %-22s %6.2f%%  (clean, the deployed classifier)\n", tagged("autoattack", ck, deploy, aa.Deploy),
		100*aa.CleanAccuracy)
	for _, s := range aa.Steps {
		extra := ""
		if s.Unconfirmed > 0 {
			extra = fmt.Sprintf(", %d claims unconfirmed", s.Unconfirmed)
		}
		fmt.Fprintf(w, "    %-20s %6.2f%%  (%d of %d broken, %.1f s, %s queries%s)\n", s.Attack, 100*s.Accuracy,
			s.Broken, s.Attacked, s.Seconds, humanCount(s.Queries), extra)
	}
}

// humanCount writes a count with a k or M suffix.
func humanCount(n int64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("%.0fM", float64(n)/1e6)
	case n >= 1_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// writeSuiteMarkdown renders suite reports (one per deployed classifier) as Markdown tables.
func writeSuiteMarkdown(w io.Writer, ckPath, device string, eps float32, quantized bool,
	reps []*attack.SuiteReport) {
	fmt.Fprintf(w, "Robust accuracy of `%s` at ε = %g on %d test images (%s), suite %s.\n", filepath.Base(ckPath), eps,
		reps[0].N, device, reps[0].Suite)
	for _, rep := range reps {
		fmt.Fprintf(w, "\n### Deployed: %s\n\n", attack.DeployName(quantized, rep.Deploy))
		if aa := rep.AutoAttack; aa != nil {
			fmt.Fprintf(w, "AutoAttack, each attack on the points still robust (cumulative):\n\n")
			fmt.Fprintf(w, "| attack | gradient | attacked | broken | robust accuracy | seconds | queries |\n")
			fmt.Fprintf(w, "|---|---|---|---|---|---|---|\n")
			fmt.Fprintf(w, "| clean | — | %d | %d | %.2f%% | | |\n", aa.N, aa.N-aa.Clean, 100*aa.CleanAccuracy)
			for _, s := range aa.Steps {
				fmt.Fprintf(w, "| %s | %s | %d | %d | %.2f%% | %.1f | %s |\n", s.Attack, s.Gradient, s.Attacked,
					s.Broken, 100*s.Accuracy, s.Seconds, humanCount(s.Queries))
			}
			fmt.Fprintf(w, "| **AutoAttack** | | | | **%.2f%%** | %.1f | |\n\n", 100*aa.Accuracy, aa.Seconds)
		}
		fmt.Fprintf(w, "| attack | robust accuracy | seconds |\n|---|---|---|\n")
		for _, r := range rep.Results {
			fmt.Fprintf(w, "| %s | %.2f%% | %.1f |\n", r.Name, 100*r.Accuracy, r.Seconds)
		}
		fmt.Fprintf(w, "| **worst case** (per example, every attack) | **%.2f%%** | %.1f |\n", 100*rep.WorstAccuracy,
			rep.Seconds)
	}
}

func newAuditCmd(g *globals) *cobra.Command {
	var ckPath, dataDir, out, surrogate, deployFlag string
	var limit, steps int
	var eps float32
	c := &cobra.Command{
		Use:   "audit",
		Short: "Run the gradient-masking checklist against a checkpoint (each item PASS or WARN with its numbers)",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkEps(eps); err != nil {
				return err
			}
			if !(eps > 0) || steps < 1 {
				return usageError{fmt.Errorf("--eps %v and --steps %d: need ε > 0 and at least one step", eps, steps)}
			}
			ck, set, err := loadTarget(ckPath, dataDir, limit)
			if err != nil {
				return err
			}
			deploy, err := attack.ParseDeploy(deployFlag, ck)
			if err != nil || len(deploy) > 1 {
				return usageError{fmt.Errorf("--deploy %q: want soft or hard (the audit judges one classifier)", deployFlag)}
			}
			opts := attack.AuditOptions{Eps: eps, Steps: steps, Seed: 1, Deploy: &deploy[0]}
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
			fmt.Fprintf(&md, "Gradient-masking audit of `%s` (deployed %s) at ε = %g on %d test images (%s): %d PASS, "+
				"%d WARN.\n\n", filepath.Base(ckPath), attack.DeployDesc(ck, deploy[0]), eps, set.N, d.Name(), rep.Passed,
				rep.Warned)
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
				"deploy": deploy[0], "audit": rep}, "", "  ")
			if err := writeFileAtomic(filepath.Join(out, "audit.json"), append(b, '\n')); err != nil {
				return err
			}
			return writeFileAtomic(filepath.Join(out, "audit.md"), []byte(md.String()))
		},
	}
	f := c.Flags()
	f.StringVar(&ckPath, "model", "", "checkpoint to audit")
	f.Float32Var(&eps, "eps", 0.3, "the claimed ℓ∞ radius ε, 0 < ε ≤ 1")
	f.IntVar(&steps, "steps", 40, "PGD steps of the audit's attacks")
	f.IntVar(&limit, "limit", 200, "audit on the first N test images (0: all)")
	f.StringVar(&surrogate, "surrogate", "", "a checkpoint to craft transfer attacks on (white-box ≥ transfer)")
	f.StringVar(&deployFlag, "deploy", "", "the classifier every check judges by: soft or hard (default: the checkpoint's)")
	f.StringVar(&dataDir, "data", "", "dataset folder (default: $SQNET_DATA, else its usual place)")
	f.StringVar(&out, "out", "", "folder for audit.json and audit.md")
	return c
}

// writeExamples draws the first examples against the deployed classifier of rep: clean, adversarial, amplified
// perturbation, with predictions — AutoAttack's adversarial examples when the suite ran it, else the strongest
// standalone attack's.
func writeExamples(path string, h, w, c int, images []float32, labels []uint8, rep *attack.SuiteReport, eps float32) error {
	var clean *attack.Result
	for _, r := range rep.Results {
		if r.Name == "clean" {
			clean = r
		}
	}
	adv, pred := []float32(nil), []uint32(nil)
	if aa := rep.AutoAttack; aa != nil {
		adv, pred = aa.Adv, aa.Pred
	} else if best := rep.Strongest(); best != nil {
		adv, pred = best.Adv, best.Pred
	}
	if clean == nil || adv == nil {
		return nil
	}
	sz := c * h * w
	var ex []report.Example
	for i := 0; i < min(10, rep.N); i++ {
		ex = append(ex, report.Example{Clean: images[i*sz : i*sz+h*w], Adv: adv[i*sz : i*sz+h*w],
			Label: int(labels[i]), Clean1: int(clean.Pred[i]), Adv1: int(pred[i])})
	}
	return report.Grid(path, ex, h, w, 3, eps)
}

// epsPoint is one point of accuracy-vs-eps.png: how many of n examples PGD at radius eps left robust against a
// deployed classifier. Counts (not accuracies) so shards add up.
type epsPoint struct {
	Deploy quant.Mode `json:"deploy"`
	Eps    float32    `json:"eps"`
	Robust int        `json:"robust"`
	N      int        `json:"n"`
}

// measureCurve measures PGD robust accuracy at five radii up to 4/3·ε against each deployed classifier (FGSM at
// radius 0: the clean accuracy), the examples drawing their random starts as ids firstID, firstID + 1, ….
func measureCurve(lib *kernels.Lib, ck *model.Checkpoint, deploy []quant.Mode, images []float32, labels []uint8,
	n int, eps float32, batch int, seed uint64, steps, firstID int) ([]epsPoint, error) {
	var pts []epsPoint
	for _, f := range []float32{0, 1.0 / 3, 2.0 / 3, 1, 4.0 / 3} {
		c := attack.PGDk(eps*f, steps, 1)
		c.Batch, c.Seed = batch, seed
		if f == 0 {
			c = attack.FGSM(0)
			c.Batch = batch
		}
		c.Deploy, c.FirstID = deploy, firstID
		a, err := attack.New(lib, ck, c)
		if err != nil {
			return nil, err
		}
		rs, err := a.RunAll(images, labels, nil, n)
		a.Close()
		if err != nil {
			return nil, err
		}
		for i, r := range rs {
			pts = append(pts, epsPoint{Deploy: deploy[min(i, len(deploy)-1)], Eps: eps * f, Robust: r.Correct, N: n})
		}
	}
	return pts, nil
}

// plotCurve draws doc's curve points, one line per deployed classifier.
func plotCurve(path string, doc *evalDoc) error {
	if len(doc.Curve) == 0 {
		return nil
	}
	var series []report.Series
	at := map[quant.Mode]int{}
	for _, p := range doc.Curve {
		i, ok := at[p.Deploy]
		if !ok {
			i = len(series)
			at[p.Deploy] = i
			name := doc.Method
			if doc.quantized() {
				name += ", " + attack.DeployName(true, p.Deploy)
			}
			series = append(series, report.Series{Name: name})
		}
		acc := 0.0
		if p.N > 0 {
			acc = float64(p.Robust) / float64(p.N)
		}
		series[i].X, series[i].Y = append(series[i].X, float64(p.Eps)), append(series[i].Y, acc)
	}
	return report.LinePlot(path, fmt.Sprintf("robust accuracy under PGD-%d", curveSteps(doc.Suite)), "ε (ℓ∞)", "accuracy",
		series, false)
}
