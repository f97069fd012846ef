package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sqnet/sqnet/attack"
	"github.com/sqnet/sqnet/data"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/kernels/kbench"
	"github.com/sqnet/sqnet/model"
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
		Short: "GFLOP/s of GEMM 256³/512³/1024³ and the madry model's conv passes, next to gonum measured in the same run",
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
			fmt.Fprintf(out, "%-26s %-34s %10s %9s %12s %7s\n", "kernel", "shape", "GFLOP/s", "ms", "gonum GFLOP/s", "ratio")
			for _, r := range rep.Results {
				ratio := ""
				if r.BLASGFLOPS > 0 {
					ratio = fmt.Sprintf("%.2f×", r.GFLOPS/r.BLASGFLOPS)
				}
				fmt.Fprintf(out, "%-26s %-34s %10.1f %9.2f %12.1f %7s\n", r.Name, r.Shape, r.GFLOPS, r.Ms, r.BLASGFLOPS, ratio)
			}
			return nil
		},
	}
	kern.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	kern.Flags().BoolVar(&quick, "quick", false, "fewer repeats (for smoke tests)")
	c.AddCommand(kern, newBenchAttackCmd(g))
	return c
}

func newBenchAttackCmd(g *globals) *cobra.Command {
	var images, steps int
	var asJSON bool
	c := &cobra.Command{
		Use:   "attack",
		Short: "PGD attack speed (images/s, seconds, queue submits) on small and madry, batches of up to 100",
		Long: "bench attack times PGD (ε=0.3, η=0.01, random start) on freshly initialised small and madry models\n" +
			"(the speed does not depend on the weights) over real MNIST test images, one batch of 100 images per\n" +
			"submit, and reports images/s, seconds and queue submits per attack.",
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if images < 1 || steps < 1 {
				return usageError{fmt.Errorf("--images %d and --steps %d must be ≥ 1", images, steps)}
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
				Model        string  `json:"model"`
				Images       int     `json:"images"`
				Steps        int     `json:"steps"`
				Seconds      float64 `json:"seconds"`
				ImagesPerSec float64 `json:"images_per_second"`
				Submits      int     `json:"submits"`
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
				// One warm-up batch compiles the pipelines; the timed run is the whole set.
				if _, err := at.Run(set.Images, set.Labels, nil, min(set.N, cfg.Batch)); err != nil {
					at.Close()
					return err
				}
				res, err := at.Run(set.Images, set.Labels, nil, set.N)
				at.Close()
				if err != nil {
					return err
				}
				rows = append(rows, row{name, set.N, steps, res.Seconds, float64(set.N) / res.Seconds, res.Submits})
			}
			out := c.OutOrStdout()
			if asJSON {
				return printJSON(out, map[string]any{"device": d.Name(), "results": rows})
			}
			fmt.Fprintf(out, "device: %s\n%-6s %7s %6s %9s %9s %8s\n", d.Name(), "model", "images", "steps", "seconds",
				"images/s", "submits")
			for _, r := range rows {
				fmt.Fprintf(out, "%-6s %7d %6d %9.2f %9.1f %8d\n", r.Model, r.Images, r.Steps, r.Seconds, r.ImagesPerSec,
					r.Submits)
			}
			return nil
		},
	}
	c.Flags().IntVar(&images, "images", 100, "test images to attack")
	c.Flags().IntVar(&steps, "steps", 40, "PGD steps")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
