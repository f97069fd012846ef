package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sqnet/sqnet/data"
	"github.com/sqnet/sqnet/dist"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/train"
	"github.com/sqnet/sqnet/vk"
)

func newTrainCmd(g *globals) *cobra.Command {
	cfg := train.Defaults()
	var quantFlag, alphaFlag, resultJSON, deployFlag string
	var par parallelFlags
	c := &cobra.Command{
		Use:   "train",
		Short: "Train a model: natural, noisy-sq (the paper's method), noise, pgd-at or fgsm-rs",
		Long: "train trains a model on a dataset and writes a safetensors checkpoint after every epoch (atomically).\n" +
			"Ctrl-C finishes the current step, saves the checkpoint and exits; --resume continues bit-identically.\n" +
			"MNIST is found with no flags after scripts/setup; --data DIR (or SQNET_DATA) points elsewhere.",
		Args: noArgs,
		// PreRunE checks every setting before any output or work (Run checks again, on the real config); sqnet
		// sweep calls it on each cell's flags before the first cell starts.
		PreRunE: func(c *cobra.Command, _ []string) error {
			q, as, err := parseQuantFlags(quantFlag, alphaFlag)
			if err != nil {
				return err
			}
			if err := par.check(g, c, cfg.Batch); err != nil {
				return usageError{err}
			}
			if q != nil {
				cfg.Quant = q
			}
			cfg.AlphaEpochs = as
			if deployFlag != "" {
				m, err := quant.ParseMode(deployFlag)
				if err != nil || (m != quant.Soft && m != quant.Hard) {
					return usageError{fmt.Errorf("--deploy %q: want soft or hard", deployFlag)}
				}
				cfg.Deploy = m
			}
			// A resumed run takes its settings from the checkpoint; a flag that contradicts them is an error.
			if cfg.Resume == "" {
				check := cfg
				if err := check.Validate(); err != nil {
					return usageError{err}
				}
				if c.Annotations[remoteData] == "" {
					if err := checkInit(check); err != nil {
						return usageError{err}
					}
				}
				// The data are there (an image folder: its train split lists classes), before the first line —
				// unless the run happens elsewhere (sweep submitting to a cluster whose nodes hold the data).
				if c.Annotations[remoteData] == "" {
					if _, err := data.Locate(check.Dataset, check.DataDir); err != nil {
						return usageError{err}
					}
					if _, _, _, _, err := data.ShapeOf(check.Dataset, check.DataDir, check.ImageSize); err != nil {
						return usageError{err}
					}
				}
			} else {
				if cfg.Init != "" {
					return usageError{train.ErrInitAndResume}
				}
				ck, err := model.Load(cfg.Resume)
				if err != nil {
					return usageError{err}
				}
				given := func(flag string) bool { return c.Flags().Changed(strings.TrimPrefix(flag, "--")) }
				if err := train.ResumeConflicts(cfg, ck, given); err != nil {
					return usageError{err}
				}
				if n, ok := train.PlannedEpochs(ck); ok && !given("--epochs") {
					cfg.Epochs = n
				}
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error {
			comm, err := dist.Open(par.dist, par.ordered)
			if err != nil {
				return usageError{err}
			}
			if comm != nil {
				defer comm.Close()
				cfg.Comm = comm
			}
			devs, err := par.openDevices(g)
			if err != nil {
				return err
			}
			defer func() {
				for _, d := range devs {
					d.Close()
				}
			}()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := c.OutOrStdout()
			cfg.Progress = os.Stderr
			cfg.Terminal = term.IsTerminal(int(os.Stderr.Fd()))
			if comm != nil && comm.Rank() > 0 {
				// Rank 0 speaks for the job; the others train in silence.
				out, cfg.Progress, cfg.ProgressFile, resultJSON = io.Discard, nil, "", ""
			}
			var names []string
			for _, d := range devs {
				names = append(names, d.Name())
			}
			where := strings.Join(names, " + ")
			if comm != nil {
				where = fmt.Sprintf("%d processes × %s", comm.Size(), where)
			}
			fmt.Fprintf(out, "training %s on %s (%s, batch %d, %s lr %g, %d epochs) on %s\n", cfg.Model,
				cfg.Dataset, cfg.Method, cfg.Batch, cfg.Optimizer.Kind, cfg.Optimizer.LR, cfg.Epochs, where)
			lib, extra := libs(devs)
			cfg.ExtraDevices = extra
			res, err := train.Run(ctx, lib, cfg)
			if errors.Is(err, train.ErrInterrupted) {
				fmt.Fprintf(out, "interrupted: checkpoint %s saved\n", cfg.Out)
				return err
			}
			if err != nil {
				return err
			}
			if len(res.Epochs) == 0 { // resumed at its last step: nothing left to train
				fmt.Fprintf(out, "checkpoint %s has trained all %d epochs: nothing to do\n", cfg.Out, cfg.Epochs)
				return writeTrainJSON(resultJSON, res)
			}
			last := res.Epochs[len(res.Epochs)-1]
			fmt.Fprintf(out, "test accuracy %.2f%% after %d epochs, %d steps, %.1f s; checkpoint %s\n",
				100*last.TestAcc, last.Epoch, res.Steps, res.Seconds, res.Checkpoint)
			fmt.Fprintf(out, "device memory: %s planned for temporaries (%s without reuse), %s kept; "+
				"%d dispatches per step\n", vk.HumanBytes(res.ArenaBytes), vk.HumanBytes(res.NaiveBytes),
				vk.HumanBytes(res.KeptBytes), res.Dispatches)
			return writeTrainJSON(resultJSON, res)
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.Model, "model", cfg.Model, "architecture: "+strings.Join(model.Archs, ", "))
	f.StringVar(&cfg.Dataset, "dataset", cfg.Dataset, "dataset: mnist, fashion-mnist, cifar10, or folder (an "+
		"ImageNet-style --data DIR with train/<class>/*.JPEG and val/<class>/*.JPEG, streamed from disk)")
	f.IntVar(&cfg.ImageSize, "image-size", 0, "folder: the side of the images fed to the model (default 64; 224 for "+
		"ImageNet): random-resized crop and flip in training, resize and centre crop in evaluation")
	f.StringVar(&cfg.DataDir, "data", "", "folder with the dataset's files (default: $SQNET_DATA, else its usual place)")
	f.StringVar(&cfg.Method, "method", cfg.Method, "training method: natural, noisy-sq (the paper), noise, pgd-at, fgsm-rs, gradreg")
	f.Float32Var(&cfg.NoiseEps, "noise-eps", 0, "noisy-sq/noise: ε_n of the uniform training noise (default --eps)")
	f.Float32Var(&cfg.Eps, "eps", cfg.Eps, "ℓ∞ radius of the threat model (pgd-at, fgsm-rs; noise default)")
	f.IntVar(&cfg.PGDSteps, "pgd-steps", cfg.PGDSteps, "pgd-at: inner PGD steps")
	f.Float32Var(&cfg.PGDStep, "pgd-step", cfg.PGDStep, "pgd-at: inner PGD step size η")
	f.Float32Var(&cfg.GradRegH, "gradreg-h", 0, "gradreg: finite-difference step along sign(∇x loss) (default --eps/10)")
	f.StringVar(&deployFlag, "deploy", "", "the classifier the checkpoint is deployed as, which evaluations judge by: "+
		"soft (as trained, the default) or hard (the hard quantizer at test time; needs --quant)")
	f.StringVar(&quantFlag, "quant", "", "soft-quantization layer after the input: L,alpha[,per-channel][,fixed] (e.g. 2,50; fixed: thresholds not learned)")
	f.StringVar(&alphaFlag, "alpha-epochs", "", "anneal the quantizer's α: one value per first epoch (e.g. 20,50), then --quant's α")
	f.IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "epochs to train (in total; with --resume, default the run's own)")
	f.IntVar(&cfg.Batch, "batch", cfg.Batch, "batch size")
	f.StringVar(&cfg.Optimizer.Kind, "optimizer", cfg.Optimizer.Kind, "optimizer: adam or sgd")
	f.Float32Var(&cfg.Optimizer.LR, "lr", cfg.Optimizer.LR, "learning rate")
	f.Float32Var(&cfg.Optimizer.Momentum, "momentum", 0.9, "SGD momentum")
	f.Float32Var(&cfg.Optimizer.WeightDecay, "weight-decay", 0, "L2 weight decay")
	f.BoolVar(&cfg.Optimizer.Nesterov, "nesterov", false, "sgd: Nesterov momentum")
	f.StringVar(&cfg.Augment, "augment", "", "training augmentation: none or crop-flip (4-pixel padded random crop, "+
		"horizontal flip; default crop-flip for cifar10, else none)")
	f.StringVar(&cfg.Optimizer.Schedule, "lr-schedule", "constant", "learning rate over the run: "+
		strings.Join(train.Schedules, ", ")+" (cosine: down to near 0 at the end; piecewise: ×0.1 at 50%, ×0.01 at 75%)")
	f.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of initialisation and shuffling")
	f.IntVar(&cfg.Limit, "limit", 0, "train on the first N examples only (0: all)")
	f.IntVar(&cfg.TestLimit, "test-limit", 0, "evaluate on the first N test examples only (0: all)")
	f.StringVar(&cfg.Out, "out", cfg.Out, "checkpoint to write (safetensors)")
	f.StringVar(&cfg.Resume, "resume", "", "checkpoint to continue from: every setting that defines the run comes from "+
		"it (a flag given with another value is an error); --epochs may extend it")
	f.StringVar(&cfg.Init, "init", "", "fine-tune: start from this checkpoint's network weights (same --model; a fresh "+
		"optimizer, and the quantizer from --quant, so a naturally trained network can get one)")
	f.StringVar(&resultJSON, "json", "", "also write the run's numbers as JSON to this file")
	par.register(c)
	f.StringVar(&cfg.ProgressFile, "progress-file", "", "also write the step, epoch and ETA to this file as JSON, "+
		"every few seconds (sqnet sweep status reads it)")
	return c
}

// remoteData, as an annotation on the train command, skips the checks of its data and --init files, which sqnet
// sweep's cluster backends leave to the nodes that run the cells.
const remoteData = "sqnet/remote-data"

// writeTrainJSON writes train --json's file (nothing without a path).
func writeTrainJSON(path string, res *train.Result) error {
	if path == "" {
		return nil
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	return writeFileAtomic(path, append(b, '\n'))
}

// parseQuantFlags reads --quant (nil when empty) and --alpha-epochs, as train and reproduce take them; a bad value
// is a usage error.
func parseQuantFlags(quantFlag, alphaFlag string) (*quant.Config, []float32, error) {
	var q *quant.Config
	if quantFlag != "" {
		c, err := quant.Parse(quantFlag)
		if err != nil {
			return nil, nil, usageError{err}
		}
		q = &c
	}
	as, err := train.ParseAlphas(alphaFlag)
	if err != nil {
		return nil, nil, usageError{err}
	}
	return q, as, nil
}

// checkInit checks --init before any work: the checkpoint parses and its tensors fit the model the run trains on
// the dataset's inputs (the error names the first that does not).
func checkInit(cfg train.Config) error {
	if cfg.Init == "" {
		return nil
	}
	ck, err := model.Load(cfg.Init)
	if err != nil {
		return err
	}
	c, h, w, classes, err := data.ShapeOf(cfg.Dataset, cfg.DataDir, cfg.ImageSize)
	if err != nil {
		return err
	}
	a, err := model.Lookup(cfg.Model, c, h, w, classes)
	if err != nil {
		return err
	}
	_, err = a.InitFrom(cfg.Quant, cfg.Seed, ck, cfg.Init)
	return err
}
