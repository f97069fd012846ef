package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sqnet/sqnet/kernels/kbench"
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
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
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
	c.AddCommand(kern)
	return c
}
