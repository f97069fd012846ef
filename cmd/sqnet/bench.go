package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/sqnet/sqnet/graph"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/kernels/kbench"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/train"
	"github.com/sqnet/sqnet/vk"
)

func newBenchCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "bench",
		Short: "Measure sqnet's speed on the chosen device",
	}
	var asJSON, quick bool
	kern := &cobra.Command{
		Use:   "kernels",
		Short: "GFLOP/s of GEMM 256³/512³/1024³, the device's multiply-add ceiling and the madry model's conv passes, next to gonum (and numpy + OpenBLAS) measured in the same run",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			opts := g.vkOptions()
			opts.Instance.Validation = vk.ValidationOff // the layer would dominate every timing
			d, err := vk.Open(opts)
			if err != nil {
				return err
			}
			defer d.Close()
			bo := kbench.Options{}
			if quick {
				bo.MinTime = time.Millisecond // one warm-up and two timed repeats each
			}
			progress := func(s string) { fmt.Fprintln(os.Stderr, "bench:", s) }
			rep, err := kbench.Run(d, bo, progress)
			if err != nil {
				return err
			}
			out := c.OutOrStdout()
			if asJSON {
				return printJSON(out, rep)
			}
			fmt.Fprintf(out, "device: %s (%s)\n", rep.Device, rep.Driver)
			if rep.Peer != nil {
				fmt.Fprintf(out, "GEMM peer (same run, same CPU): %s\n", rep.Peer.Name)
			}
			fmt.Fprintf(out, "fastest repeat after an untimed first run; slowest repeat and setup (recording, pipeline compilation, first run) beside it\n")
			fmt.Fprintf(out, "peak/*: multiply-adds with every operand in registers, the device's ceiling (found, not proven) for the kernels here; numpy column: its fastest GEMM\n")
			fmt.Fprintf(out, "%-26s %-34s %10s %9s %9s %9s %12s %7s %12s %7s\n", "kernel", "shape", "GFLOP/s", "ms",
				"slowest", "setup ms", "gonum GFLOP/s", "ratio", "numpy GFLOP/s", "ratio")
			for _, r := range rep.Results {
				gonum, ratio, peer, peerRatio := "", "", "", ""
				if r.BLASGFLOPS > 0 {
					gonum, ratio = fmt.Sprintf("%.1f", r.BLASGFLOPS), fmt.Sprintf("%.2f×", r.GFLOPS/r.BLASGFLOPS)
				}
				if r.PeerGFLOPS > 0 {
					peer, peerRatio = fmt.Sprintf("%.1f", r.PeerGFLOPS), fmt.Sprintf("%.2f×", r.GFLOPS/r.PeerGFLOPS)
				}
				fmt.Fprintf(out, "%-26s %-34s %10.1f %9.2f %9.2f %9.1f %12s %7s %12s %7s\n", r.Name, r.Shape, r.GFLOPS,
					r.Ms, r.SlowestMs, r.SetupMs, gonum, ratio, peer, peerRatio)
			}
			return nil
		},
	}
	kern.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	kern.Flags().BoolVar(&quick, "quick", false, "fewer repeats (for smoke tests)")
	c.AddCommand(kern, newBenchAttackCmd(g), newBenchTrainCmd(g))
	return c
}

func newBenchAttackCmd(g *globals) *cobra.Command {
	var images, steps, apgdIters, squareIters, rounds int
	var asJSON, profile bool
	c := &cobra.Command{
		Use:   "attack",
		Short: "Attack speed (images/s, seconds, queue submits) of PGD, APGD-CE and Square on small and madry",
		Long: "bench attack times PGD-k (ε=0.3, η=0.01, random start), AutoAttack's APGD-CE (--apgd-iters) and the\n" +
			"Square Attack on freshly initialised small and madry models (the speed does not depend on the weights) over\n" +
			"real MNIST test images, batches of up to 100, in one run on one device. PGD and APGD report images/s for\n" +
			"the whole attack; Square reports forward queries/s at a full batch, the images/s of a point it never\n" +
			"breaks (--square-iters + 1 queries each), and the share of its time spent outside the model's forward\n" +
			"passes (its own kernels and the host between chunks). PGD and APGD run --rounds times after an untimed\n" +
			"warm-up batch (PGD's wall time, mostly pipeline compilation, is printed) and report the median round and\n" +
			"the spread; Square's chunks are its rounds.",
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if images < 1 || steps < 1 || apgdIters < 1 || squareIters < 1 || rounds < 1 {
				return usageError{fmt.Errorf("--images %d, --steps %d, --apgd-iters %d, --square-iters %d and --rounds %d "+
					"must be ≥ 1", images, steps, apgdIters, squareIters, rounds)}
			}
			set, err := data.Load("mnist", "", data.Test)
			if err != nil {
				return usageError{err}
			}
			set = set.Subset(images)
			opts := g.vkOptions()
			opts.Instance.Validation = vk.ValidationOff
			d, err := vk.Open(opts)
			if err != nil {
				return err
			}
			defer d.Close()
			lib := kernels.New(d)
			type row struct {
				Model          string    `json:"model"`
				Attack         string    `json:"attack"`
				Images         int       `json:"images"`
				Steps          int       `json:"steps"`
				Seconds        float64   `json:"seconds"`                  // the median round
				RoundSeconds   []float64 `json:"round_seconds,omitempty"`  // every round (PGD, APGD)
				WarmupSeconds  float64   `json:"warmup_seconds,omitempty"` // PGD's untimed first batch
				ImagesPerSec   float64   `json:"images_per_second"`
				Submits        int       `json:"submits"`
				QueriesPerSec  float64   `json:"queries_per_second,omitempty"`
				ElsewhereShare *float64  `json:"elsewhere_share,omitempty"`
			}
			var rows []row
			for _, name := range []string{"small", "madry"} {
				a, _ := model.Lookup(name, 1, 28, 28, 10)
				ck := &model.Checkpoint{Arch: a, Weights: a.Init(nil, 1)}
				cfg := attack.PGD(0.3, 0.01, steps, 1)
				cfg.Batch = min(cfg.Batch, set.N) // 50 images run as one batch of 50, not a padded 100
				at, err := attack.New(lib, ck, cfg)
				if err != nil {
					return err
				}
				// One warm-up batch compiles the pipelines; each timed round is the whole set.
				start := time.Now()
				if _, err := at.Run(set.Images, set.Labels, nil, min(set.N, cfg.Batch)); err != nil {
					at.Close()
					return err
				}
				pr := row{Model: name, Attack: fmt.Sprintf("pgd-%d", steps), Images: set.N, Steps: steps,
					WarmupSeconds: time.Since(start).Seconds()}
				var res *attack.Result
				for range rounds {
					if res, err = at.Run(set.Images, set.Labels, nil, set.N); err != nil {
						break
					}
					pr.RoundSeconds = append(pr.RoundSeconds, res.Seconds)
				}
				if err == nil && profile {
					err = printProfile(c.ErrOrStderr(), name, at, res.Seconds/float64(res.Submits))
				}
				at.Close()
				if err != nil {
					return err
				}
				pr.Seconds, pr.Submits = median(pr.RoundSeconds), res.Submits
				pr.ImagesPerSec = float64(set.N) / pr.Seconds
				rows = append(rows, pr)
				ac := attack.NewAPGD("ce", 0.3, quant.Soft, 1, cfg.Batch)
				ac.Iters = apgdIters
				ar := row{Model: name, Attack: ac.Name, Steps: apgdIters}
				for range rounds {
					sp, err := attack.APGDSpeed(lib, ck, ac, set.Images, set.Labels, set.N)
					if err != nil {
						return err
					}
					ar.RoundSeconds, ar.Images, ar.Submits = append(ar.RoundSeconds, sp.Seconds), sp.Images, sp.Submits
				}
				ar.Seconds = median(ar.RoundSeconds)
				ar.ImagesPerSec = float64(ar.Images) / ar.Seconds
				rows = append(rows, ar)
				sq := attack.NewSquare(0.3, quant.Soft, 1, cfg.Batch)
				sq.Iters = squareIters
				sp, err := attack.SquareSpeed(lib, ck, sq, set.Images, set.Labels, 5)
				if err != nil {
					return err
				}
				rows = append(rows, row{Model: name, Attack: "square", Images: sp.Images, Steps: squareIters,
					Seconds: sp.Seconds, ImagesPerSec: sp.ImagesPerSec, Submits: sp.Submits, QueriesPerSec: sp.QueriesPerSec,
					ElsewhereShare: &sp.ElsewhereShare})
			}
			out := c.OutOrStdout()
			if asJSON {
				return printJSON(out, map[string]any{"device": d.Name(), "results": rows})
			}
			fmt.Fprintf(out, "device: %s; PGD and APGD: median of %d rounds (spread: fastest–slowest)\n", d.Name(), rounds)
			fmt.Fprintf(out, "%-6s %-8s %7s %6s %9s %13s %9s %8s %9s %10s %10s\n", "model", "attack", "images",
				"steps", "seconds", "spread", "images/s", "submits", "warm-up", "queries/s", "elsewhere")
			for _, r := range rows {
				q, e, spread, warm := "", "", spreadOf(r.RoundSeconds), ""
				if r.QueriesPerSec > 0 {
					q, e = fmt.Sprintf("%.0f", r.QueriesPerSec), fmt.Sprintf("%.1f%%", 100*(*r.ElsewhereShare))
				}
				if r.WarmupSeconds > 0 {
					warm = fmt.Sprintf("%.2f s", r.WarmupSeconds)
				}
				fmt.Fprintf(out, "%-6s %-8s %7d %6d %9.2f %13s %9.2f %8d %9s %10s %10s\n", r.Model, r.Attack, r.Images,
					r.Steps, r.Seconds, spread, r.ImagesPerSec, r.Submits, warm, q, e)
			}
			return nil
		},
	}
	c.Flags().IntVar(&images, "images", 100, "test images to attack")
	c.Flags().IntVar(&steps, "steps", 40, "PGD steps")
	c.Flags().IntVar(&apgdIters, "apgd-iters", 100, "APGD-CE iterations (AutoAttack: 100)")
	c.Flags().IntVar(&squareIters, "square-iters", 5000, "Square iterations per image for its images/s (AutoAttack: 5000)")
	c.Flags().IntVar(&rounds, "rounds", 3, "timed rounds of PGD and APGD (each reports its median round and the spread)")
	c.Flags().BoolVar(&profile, "profile", false, "also print the device time of each kind of op (to stderr)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// trainBenchRow is one method's line of bench train.
type trainBenchRow struct {
	Method       string  `json:"method"`
	Images       int     `json:"train_images"`  // images actually trained on (whole batches)
	Seconds      float64 `json:"train_seconds"` // the median of the rounds
	ImagesPerSec float64 `json:"images_per_second"`
	// RoundSeconds is the training time of every round, in order.
	RoundSeconds []float64 `json:"round_seconds"`
	// CostVsNoisySQ is the training time per image relative to noisy-sq's (absent when noisy-sq was not run).
	CostVsNoisySQ float64 `json:"cost_vs_noisy_sq,omitempty"`
	// WarmupSeconds is the wall time of the untimed warm-up run (two batches, evaluation and checkpoint
	// included) in which the step's pipelines were first compiled and dispatched.
	WarmupSeconds float64 `json:"warmup_seconds"`
	// Profile times every op of one more step after the last round (--profile).
	Profile *train.StepProfile `json:"profile,omitempty"`
	// PlannedBytes is the device memory the step's temporaries take (the planner's arena), KeptBytes what
	// persists (parameters, optimizer state, buffers).
	PlannedBytes uint64 `json:"planned_bytes"`
	KeptBytes    uint64 `json:"kept_bytes"`
}

func newBenchTrainCmd(g *globals) *cobra.Command {
	var methods []string
	var arch, quantFlag string
	var images, pgdSteps, rounds, batch int
	var asJSON, profile bool
	c := &cobra.Command{
		Use:   "train",
		Short: "Training speed of each method (images/s, cost per image relative to noisy-sq) in one run",
		Long: "bench train trains each method for one epoch on the first --images MNIST training images, on one device\n" +
			"in one run, and reports the training time (evaluation excluded), images/s and the cost per training\n" +
			"image relative to noisy-sq. pgd-at runs PGD-k inside every step (k = --pgd-steps), so it trains on a\n" +
			"tenth of the images (at least two batches); per-image costs compare fairly across the counts.\n" +
			"The methods take turns for --rounds rounds and each reports its median round: a CPU driver's speed\n" +
			"drifts by 10–20% within minutes, and one slow stretch would otherwise skew one method's time.",
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkTrainBench(methods, arch, images, pgdSteps, batch, rounds); err != nil {
				return usageError{err}
			}
			q, _, err := parseQuantFlags(quantFlag, "")
			if err != nil {
				return err
			}
			// noisy-sq's quantizer as train resolves it (its default where --quant is absent), for the report.
			nsq := train.Defaults()
			nsq.Method, nsq.Quant = "noisy-sq", q
			if err := nsq.Validate(); err != nil {
				return usageError{err}
			}
			opts := g.vkOptions()
			opts.Instance.Validation = vk.ValidationOff // the layer would dominate every timing
			d, err := vk.Open(opts)
			if err != nil {
				return err
			}
			defer d.Close()
			tmp, err := os.MkdirTemp("", "sqnet-bench-train-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			lib := kernels.New(d)
			rows := make([]trainBenchRow, len(methods))
			// Round 0 is the warm-up: each method trains two batches untimed, so that the pipelines a CPU driver
			// compiles on their first dispatch (lavapipe does) are built before any round is timed — one round then
			// measures what three do. Its wall time is reported apart.
			for round := 0; round <= rounds; round++ {
				for i, m := range methods {
					cfg := train.Defaults()
					cfg.Model, cfg.Method, cfg.Epochs, cfg.TestLimit, cfg.PGDSteps = arch, m, 1, 100, pgdSteps
					cfg.Batch = batch
					cfg.Limit = benchTrainImages(m, images, batch)
					if round == 0 {
						cfg.Limit = 2 * batch
					}
					if m == "noisy-sq" {
						cfg.Quant = nsq.Quant
					}
					cfg.Profile = profile && round == rounds // one step of the last round, after it is timed
					cfg.Out = filepath.Join(tmp, m+".safetensors")
					if round == 0 {
						fmt.Fprintf(os.Stderr, "bench: warming up %s (two batches, untimed)\n", m)
					} else {
						fmt.Fprintf(os.Stderr, "bench: training %s on %d images (round %d of %d)\n", m, cfg.Limit, round, rounds)
					}
					start := time.Now()
					res, err := train.Run(ctx, lib, cfg)
					if errors.Is(err, train.ErrInterrupted) {
						// Not train's message: the checkpoint it saved is in tmp, about to be removed.
						return fmt.Errorf("interrupted while training %s; nothing measured", m)
					}
					if err != nil {
						return fmt.Errorf("%s: %w", m, err)
					}
					r := &rows[i]
					if round == 0 {
						r.WarmupSeconds = time.Since(start).Seconds()
						continue
					}
					r.Method, r.Images = m, res.Steps*cfg.Batch
					r.RoundSeconds = append(r.RoundSeconds, res.Epochs[len(res.Epochs)-1].TrainSeconds)
					r.Profile = res.Profile
					r.PlannedBytes, r.KeptBytes = res.ArenaBytes, res.KeptBytes
				}
			}
			for i := range rows {
				rows[i].Seconds = median(rows[i].RoundSeconds)
				rows[i].ImagesPerSec = float64(rows[i].Images) / rows[i].Seconds
			}
			if i := slices.IndexFunc(rows, func(r trainBenchRow) bool { return r.Method == "noisy-sq" }); i >= 0 {
				ref := rows[i].Seconds / float64(rows[i].Images)
				for j := range rows {
					rows[j].CostVsNoisySQ = rows[j].Seconds / float64(rows[j].Images) / ref
				}
			}
			out := c.OutOrStdout()
			if asJSON {
				return printJSON(out, map[string]any{"device": d.Name(), "model": arch, "batch": batch,
					"pgd_steps": pgdSteps, "rounds": rounds, "noisy_sq_quant": quantFlag, "results": rows})
			}
			writeTrainBench(out, d.Name(), arch, *nsq.Quant, batch, pgdSteps, rounds, rows)
			for _, r := range rows {
				if p := r.Profile; p != nil {
					writeProfile(c.ErrOrStderr(), fmt.Sprintf("a %s step on %s", r.Method, arch), &p.Profile,
						p.StepSeconds)
				}
			}
			return nil
		},
	}
	c.Flags().StringSliceVar(&methods, "methods", []string{"natural", "noisy-sq", "pgd-at", "fgsm-rs"},
		"training methods to time, comma-separated (any of "+strings.Join(train.Methods, ", ")+")")
	c.Flags().StringVar(&arch, "model", "small", "architecture: "+strings.Join(model.Archs, ", ")+
		" (on MNIST's 1×28×28 images)")
	c.Flags().IntVar(&images, "images", 2000, "training images per method (pgd-at: a tenth, at least two batches)")
	c.Flags().IntVar(&pgdSteps, "pgd-steps", train.Defaults().PGDSteps, "pgd-at: inner PGD steps per training step")
	c.Flags().IntVar(&rounds, "rounds", 3, "rounds in which the methods take turns; each reports its median round")
	c.Flags().IntVar(&batch, "batch", train.Defaults().Batch, "batch size")
	c.Flags().StringVar(&quantFlag, "quant", "", "noisy-sq's quantizer, as train's --quant (default: train's, 2,50)")
	c.Flags().BoolVar(&profile, "profile", false, "also time every op of one step of each method (to stderr; with "+
		"--json, in each result)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// median returns the median of xs (not empty), the mean of the middle two for an even count.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// checkTrainBench validates bench train's flags before any device work.
func checkTrainBench(methods []string, arch string, images, pgdSteps, batch, rounds int) error {
	if len(methods) == 0 {
		return fmt.Errorf("--methods: name at least one of %s", strings.Join(train.Methods, ", "))
	}
	for i, m := range methods {
		if !slices.Contains(train.Methods, m) {
			return fmt.Errorf("--methods: unknown method %q (known: %s)", m, strings.Join(train.Methods, ", "))
		}
		if slices.Contains(methods[:i], m) {
			return fmt.Errorf("--methods: %s is listed twice", m)
		}
	}
	if !slices.Contains(model.Archs, arch) {
		return fmt.Errorf("--model %q: want one of %s", arch, strings.Join(model.Archs, ", "))
	}
	if batch < 1 {
		return fmt.Errorf("--batch %d: must be ≥ 1", batch)
	}
	if images < batch {
		return fmt.Errorf("--images %d: must be at least one batch (%d)", images, batch)
	}
	if pgdSteps < 1 {
		return fmt.Errorf("--pgd-steps %d: must be ≥ 1", pgdSteps)
	}
	if rounds < 1 {
		return fmt.Errorf("--rounds %d: must be ≥ 1", rounds)
	}
	return nil
}

// benchTrainImages is how many images a method trains on in bench train: pgd-at costs about 25 times as much per
// image (PGD-40 inside every step), so it gets a tenth of them — but at least two batches (or all of them, if
// fewer), so that its time is not a single step's.
func benchTrainImages(method string, images, batch int) int {
	if method != "pgd-at" {
		return images
	}
	return max(images/10, min(images, 2*batch))
}

// spreadOf formats rounds' fastest–slowest seconds, or "" for fewer than two rounds.
func spreadOf(rounds []float64) string {
	if len(rounds) < 2 {
		return ""
	}
	return fmt.Sprintf("%.2f–%.2f", slices.Min(rounds), slices.Max(rounds))
}

// writeTrainBench prints bench train's table.
func writeTrainBench(w io.Writer, dev, arch string, q quant.Config, batch, pgdSteps, rounds int, rows []trainBenchRow) {
	fmt.Fprintf(w, "device: %s\n", dev)
	fmt.Fprintf(w, "%s, batch %d, one epoch over the first N MNIST training images each (pgd-at: PGD-%d inside every "+
		"step; noisy-sq: quantizer %s), median of %d rounds (spread: fastest–slowest) after an untimed warm-up "+
		"(compilation; its wall time last); training time only, evaluation excluded\n", arch, batch, pgdSteps, q, rounds)
	fmt.Fprintf(w, "%-9s %7s %9s %13s %9s %9s  %-16s %9s  %s\n", "method", "images", "seconds", "spread", "images/s",
		"ms/image", "cost per image", "warm-up", "memory: planned / kept")
	for _, r := range rows {
		cost := "—"
		if r.CostVsNoisySQ > 0 {
			cost = fmt.Sprintf("%.1f× noisy-sq", r.CostVsNoisySQ)
		}
		spread := spreadOf(r.RoundSeconds)
		if spread == "" {
			spread = "—"
		}
		fmt.Fprintf(w, "%-9s %7d %9.2f %13s %9.1f %9.3f  %-16s %7.2f s  %s / %s\n", r.Method, r.Images, r.Seconds,
			spread, r.ImagesPerSec, 1000*r.Seconds/float64(r.Images), cost, r.WarmupSeconds,
			vk.HumanBytes(r.PlannedBytes), vk.HumanBytes(r.KeptBytes))
	}
}

// printProfile prints where an attack's device time goes, by op name, from one more run of its last batch, next to
// the wall time a batch took in the timed run.
func printProfile(w io.Writer, model string, at *attack.Attacker, batchSeconds float64) error {
	prof, err := at.Profile()
	if err != nil {
		return err
	}
	writeProfile(w, fmt.Sprintf("PGD on %s, one batch", model), prof, batchSeconds)
	return nil
}

// writeProfile prints a profile's table: per op name its count, device time (from the previous op's timestamp to
// its own, so the barrier in front of it included) and share, and its achieved rate — GFLOP/s for the GEMM-shaped
// ops (convolutions, linear layers), GB/s (each input and output counted once) for the rest. Then the time outside
// the command buffer: the profiled run's wall time against its timestamps' span (submission, the wait, the
// driver), and the wall time of a batch or step of the timed run (which has no timestamps to pay for, but
// includes the host's uploads and work between submits).
func writeProfile(w io.Writer, what string, p *graph.Profile, timedSeconds float64) {
	device, flops := 0.0, 0.0
	for _, t := range p.Ops {
		device += t.Seconds
		flops += t.Flops
	}
	fmt.Fprintf(w, "profile of %s: %d ops, %.1f ms of device time", what, p.Recorded, 1e3*device)
	if flops > 0 && device > 0 {
		fmt.Fprintf(w, ", %.1f GFLOP/s overall", flops/device/1e9)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  %-32s %6s %10s %6s %14s\n", "op", "count", "ms", "share", "rate")
	for _, t := range p.Ops {
		rate := ""
		switch {
		case t.Seconds <= 0:
		case t.Flops > 0:
			rate = fmt.Sprintf("%.1f GFLOP/s", t.Flops/t.Seconds/1e9)
		case t.Bytes > 0:
			rate = fmt.Sprintf("%.1f GB/s", t.Bytes/t.Seconds/1e9)
		}
		share := 0.0
		if device > 0 {
			share = 100 * t.Seconds / device
		}
		fmt.Fprintf(w, "  %-32s %6d %10.2f %5.1f%% %14s\n", t.Name, t.Count, 1e3*t.Seconds, share, rate)
	}
	if p.WallSeconds > 0 {
		out := max(0, p.WallSeconds-p.SpanSeconds)
		fmt.Fprintf(w, "  outside the command buffer: %.2f ms of the profiled run's %.2f ms wall time (%.1f%%)", 1e3*out,
			1e3*p.WallSeconds, 100*out/p.WallSeconds)
		if timedSeconds > 0 {
			fmt.Fprintf(w, "; a timed one took %.2f ms", 1e3*timedSeconds)
		}
		fmt.Fprintln(w)
	}
}
