package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sqnet/sqnet/viewer"
	"github.com/sqnet/sqnet/vk"
)

func newViewCmd(g *globals) *cobra.Command {
	var ckPath, dataDir, attackName, shot string
	var o viewer.Options
	c := &cobra.Command{
		Use:   "view",
		Short: "Watch an attack happen: a window of clean, adversarial and perturbation images with live predictions",
		Long: "view opens a window (GLFW, drawn by a Vulkan compute shader) showing --n test images, three rows per\n" +
			"example: the clean image, the adversarial one and the perturbation amplified to full range (blue −ε,\n" +
			"white 0, red +ε), each with the predicted label and a green (right) or red (wrong) mark. The attack runs\n" +
			"live, --per-frame steps per frame, until --steps.\n\n" +
			"Keys: space next batch · ←/→ ε down/up by 0.05 · b toggle BPDA (models with a quantizer) · s save a PNG\n" +
			"screenshot (sqnet-view-NNN.png) · q or Esc quit.\n\n" +
			"Without a display, run it under Xvfb: xvfb-run -a sqnet view --model M --frames 20 --screenshot out.png",
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			o.Attack, o.Screenshot = attackName, shot
			ck, set, err := loadTarget(ckPath, dataDir, 0)
			if err != nil {
				return err
			}
			o.Checkpoint, o.Images, o.Labels = ck, set.Images, set.Labels
			o.VK = g.vkOptions()
			o.Log = c.ErrOrStderr()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			st, err := viewer.Run(ctx, o)
			if errors.Is(err, viewer.ErrNoDisplay) || errors.Is(err, vk.ErrNoPresent) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "view: %d frames, %d attack steps on %s; %d of %d examples still right; last picture %d×%d\n",
				st.Frames, st.Steps, st.Device, st.Robust, st.Shown, st.Width, st.Height)
			if shot != "" {
				fmt.Fprintf(c.OutOrStdout(), "screenshot: %s\n", shot)
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&ckPath, "model", "", "checkpoint to attack (safetensors written by sqnet train)")
	fl.StringVar(&dataDir, "data", "", "dataset folder (default: $SQNET_DATA, else its usual place)")
	fl.StringVar(&attackName, "attack", "pgd", "pgd, bpda (hard quantizer forward, identity backward) or fgsm")
	fl.Float32Var(&o.Eps, "eps", 0.3, "ℓ∞ radius")
	fl.IntVar(&o.Steps, "steps", 40, "PGD steps before the attack stops (step size 2.5·ε/steps)")
	fl.IntVar(&o.PerFrame, "per-frame", 1, "attack steps per frame")
	fl.IntVar(&o.N, "n", 8, "examples shown")
	fl.IntVar(&o.Offset, "offset", 0, "first test image shown")
	fl.IntVar(&o.Width, "width", 0, "window width in pixels (0: fit --n examples at 3× in one row)")
	fl.IntVar(&o.Height, "height", 0, "window height in pixels (0: fit)")
	fl.IntVar(&o.Frames, "frames", 0, "stop after N frames (0: run until the window is closed)")
	fl.StringVar(&shot, "screenshot", "", "write the last frame to this PNG file")
	return c
}
