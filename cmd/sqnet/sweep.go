package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sqnet/sqnet/attack"
	"github.com/sqnet/sqnet/internal/atomicfile"
	"github.com/sqnet/sqnet/sweep"
)

// gridFile is the copy of the grid a sweep folder keeps, which status, report and later runs read.
const gridFile = "grid.yaml"

func newSweepCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "sweep",
		Short: "Run a grid of train+eval cells locally, on Slurm or on Kubernetes; show their status; report mean ± std over seeds",
		Long: "sweep runs every combination of a grid file's axes as a cell — sqnet train, then sqnet eval — in its own\n" +
			"folder DIR/cells/ID, ID a hash of the cell's flags. run skips done cells, so a crashed or killed sweep\n" +
			"reruns only what is missing; status lists each cell's state (with a running cell's epoch and ETA);\n" +
			"report writes the mean ± std over the replicate axis (seed) of clean, worst-case and AutoAttack\n" +
			"accuracy and training time per setting. docs/sweep.md describes the grid file and the backends.",
		Args: noArgs,
	}
	c.AddCommand(newSweepRunCmd(g), newSweepStatusCmd(), newSweepReportCmd(), newSweepExecCmd(g))
	return c
}

// loadSweep reads the grid a sweep folder keeps.
func loadSweep(dir string) (*sweep.Grid, error) {
	p := filepath.Join(dir, gridFile)
	if _, err := os.Stat(p); err != nil {
		return nil, usageError{fmt.Errorf("%s is not a sweep folder (no %s: sqnet sweep run GRID --out %s starts one)",
			dir, gridFile, dir)}
	}
	g, err := sweep.Load(p)
	if err != nil {
		return nil, usageError{err}
	}
	return g, nil
}

// checkCells checks every cell's flags as train and eval would, before the first cell starts: names, types and
// values (train's own checks; eval's suite and ε — its checkpoint does not exist yet).
func checkCells(cells []sweep.Cell, remote bool) error {
	for _, c := range cells {
		tc := newTrainCmd(&globals{})
		tc.SetOut(io.Discard)
		if remote {
			tc.Annotations = map[string]string{remoteData: "1"}
		}
		if err := tc.ParseFlags(sweep.Args(c.Train)); err != nil {
			return fmt.Errorf("cell %s (%s): train: %w", c.ID, c.Label(), err)
		}
		if err := tc.PreRunE(tc, nil); err != nil {
			return fmt.Errorf("cell %s (%s): train: %w", c.ID, c.Label(), err)
		}
		ec := newEvalCmd(&globals{})
		if err := ec.ParseFlags(sweep.Args(c.Eval)); err != nil {
			return fmt.Errorf("cell %s (%s): eval: %w", c.ID, c.Label(), err)
		}
		f := ec.Flags()
		if s, _ := f.GetString("suite"); !slices.Contains(attack.Suites, s) {
			return fmt.Errorf("cell %s (%s): eval: --suite %q: want one of %s", c.ID, c.Label(), s,
				strings.Join(attack.Suites, ", "))
		}
		if eps, _ := f.GetFloat32("eps"); checkEps(eps) != nil {
			return fmt.Errorf("cell %s (%s): eval: %w", c.ID, c.Label(), checkEps(eps))
		}
	}
	return nil
}

func newSweepRunCmd(g *globals) *cobra.Command {
	var out, backend, bin, devices string
	var retry, wait bool
	var so sweep.SlurmOptions
	var ko sweep.K8sOptions
	c := &cobra.Command{
		Use:   "run GRID.yaml --out DIR",
		Short: "Run (or submit) the grid's cells that are not done",
		Long: "run copies GRID.yaml into DIR and starts the cells that are pending or were interrupted (and failed ones\n" +
			"with --retry-failed); done, running and queued cells are left alone. Backends: local runs them here, one\n" +
			"worker per --devices entry; slurm submits one sbatch --array job (task k runs the k-th cell; --gres gives\n" +
			"each a GPU) and with --wait follows it to the end; k8s writes an Indexed Job manifest for kubectl apply.",
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if out == "" {
				return usageError{errors.New("--out DIR: the sweep folder is required")}
			}
			if !slices.Contains([]string{"local", "slurm", "k8s"}, backend) {
				return usageError{fmt.Errorf("--backend %q: want local, slurm or k8s", backend)}
			}
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return usageError{err}
			}
			grid, err := sweep.Parse(raw)
			if err != nil {
				return usageError{fmt.Errorf("grid %s: %w", args[0], err)}
			}
			devs := splitList(devices)
			if backend != "local" && devices != "" {
				return usageError{fmt.Errorf("--devices is for the local backend (%s picks devices itself)", backend)}
			}
			if backend == "k8s" && (ko.Image == "" || ko.PVC == "") {
				return usageError{errors.New("--backend k8s needs --image and --pvc")}
			}
			if so.CPUs < 0 || ko.GPUs < 0 || ko.Parallelism < 0 {
				return usageError{errors.New("--cpus-per-task, --gpus and --parallelism must be ≥ 0")}
			}
			cells := grid.Cells()
			if err := checkCells(cells, backend != "local"); err != nil {
				return usageError{err}
			}
			ko.Bin = bin // k8s: the image's sqnet ("" is sqnet on its PATH)
			if bin == "" {
				if bin, err = os.Executable(); err != nil {
					return err
				}
			}
			if old, err := os.ReadFile(filepath.Join(out, gridFile)); err == nil && !bytes.Equal(old, raw) {
				fmt.Fprintf(c.OutOrStdout(), "the grid in %s changed: cells with unchanged settings keep their results\n", out)
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			if err := atomicfile.Write(filepath.Join(out, gridFile), raw, 0o644); err != nil {
				return err
			}
			// Cells an earlier Slurm submission still holds are left to it, whatever the backend now.
			sts, err := sweep.Survey(out, grid, cells)
			if err != nil {
				return err
			}
			todo := sweep.Todo(sts, retry)
			n := sweep.Counts(sts)
			stdout := c.OutOrStdout()
			fmt.Fprintf(stdout, "sweep %s: %d cells — %d done, %d running, %d queued, %d failed; %d to run (%s backend)\n",
				grid.Name, len(cells), n[sweep.Done], n[sweep.Running], n[sweep.Queued], n[sweep.Failed], len(todo), backend)
			if n[sweep.Failed] > 0 && !retry {
				fmt.Fprintf(stdout, "  %d failed cells are left alone: --retry-failed reruns them\n", n[sweep.Failed])
			}
			if len(todo) == 0 {
				return nil
			}
			switch backend {
			case "local":
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				if len(devs) == 0 && g.device != "" {
					devs = []string{g.device}
				}
				err := sweep.RunLocal(ctx, out, todo, sweep.LocalOptions{Bin: bin, Devices: devs, Out: stdout})
				if ctx.Err() != nil {
					fmt.Fprintln(stdout, "interrupted: rerun the same command to finish the missing cells")
				}
				return err
			case "slurm":
				so.Bin = bin
				sub, err := sweep.SubmitSlurm(out, grid, todo, so)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "submitted Slurm array job %s (%d tasks, script %s)\n", sub.Job, sub.Cells, sub.Script)
				if !wait {
					fmt.Fprintf(stdout, "follow it with: sqnet sweep status %s\n", out)
					return nil
				}
				return waitSlurm(stdout, out, grid, cells, sub)
			default:
				path, err := sweep.WriteK8s(out, grid, todo, ko)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "wrote %s (%d cells); with %s as the root of volume claim %s:\n  kubectl apply -f %s\n",
					path, len(todo), out, ko.PVC, path)
				return nil
			}
		},
	}
	f := c.Flags()
	f.StringVar(&out, "out", "", "the sweep folder (grid copy, cells/, slurm/, k8s/, report)")
	f.StringVar(&backend, "backend", "local", "where cells run: local, slurm or k8s")
	f.StringVar(&bin, "bin", "", "the sqnet binary cells run, as the nodes see it (default: this one; k8s: the "+
		"image's sqnet on its PATH)")
	f.BoolVar(&retry, "retry-failed", false, "also rerun (resubmit) failed cells")
	f.StringVar(&devices, "devices", "", "local: comma-separated devices, one worker each (e.g. gpu:0,gpu:1; default: --device)")
	f.BoolVar(&wait, "wait", false, "slurm: wait for the array job to finish and print the outcome")
	f.StringVar(&so.Gres, "gres", "", "slurm: generic resources per task, e.g. gpu:1")
	f.StringVar(&so.Partition, "partition", "", "slurm: partition")
	f.StringVar(&so.Time, "time", "", "slurm: time limit per cell (e.g. 2:00:00)")
	f.IntVar(&so.CPUs, "cpus-per-task", 0, "slurm: CPUs per cell")
	f.StringArrayVar(&so.Extra, "sbatch-arg", nil, "slurm: one more sbatch option for the script (repeatable)")
	f.StringVar(&ko.Image, "image", "", "k8s: container image with sqnet and a Vulkan driver")
	f.StringVar(&ko.PVC, "pvc", "", "k8s: PersistentVolumeClaim whose root is the sweep folder")
	f.StringVar(&ko.Mount, "mount", "/sweep", "k8s: where pods mount the volume")
	f.StringVar(&ko.GPUResource, "gpu-resource", "nvidia.com/gpu", "k8s: the GPU extended resource")
	f.IntVar(&ko.GPUs, "gpus", 1, "k8s: GPUs per pod (0: a CPU driver runs the cells)")
	f.IntVar(&ko.Parallelism, "parallelism", 0, "k8s: pods at once (0: every cell)")
	return c
}

// waitSlurm follows a submitted array job until none of its tasks is queued or running, printing each change
// of the counts, and fails if a cell did not finish.
func waitSlurm(w io.Writer, dir string, grid *sweep.Grid, cells []sweep.Cell, sub *sweep.Submission) error {
	mine, err := sweep.ReadList(sub.List)
	if err != nil {
		return err
	}
	last := ""
	for {
		sts, err := sweep.Survey(dir, grid, mine)
		if err != nil {
			return err
		}
		n := sweep.Counts(sts)
		now := fmt.Sprintf("%d done, %d running, %d queued, %d failed, %d interrupted", n[sweep.Done], n[sweep.Running],
			n[sweep.Queued], n[sweep.Failed], n[sweep.Interrupted])
		if now != last {
			fmt.Fprintf(w, "  %s  job %s: %s\n", time.Now().Format("15:04:05"), sub.Job, now)
			last = now
		}
		if n[sweep.Running]+n[sweep.Queued] == 0 {
			if bad := len(mine) - n[sweep.Done]; bad > 0 {
				return fmt.Errorf("%d of the job's %d cells did not finish: sqnet sweep status %s shows why", bad,
					len(mine), dir)
			}
			return nil
		}
		time.Sleep(2 * time.Second)
	}
}

func newSweepStatusCmd() *cobra.Command {
	var slurm bool
	c := &cobra.Command{
		Use:   "status DIR",
		Short: "List the sweep's cells: pending, queued, running (epoch, ETA), done, failed (error line) or interrupted",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			grid, err := loadSweep(args[0])
			if err != nil {
				return err
			}
			cells := grid.Cells()
			var sts []sweep.CellStatus
			if slurm {
				sts, err = sweep.Survey(args[0], grid, cells)
			} else {
				sts, err = sweep.Status(args[0], cells, nil)
			}
			if err != nil {
				return err
			}
			w := c.OutOrStdout()
			n := sweep.Counts(sts)
			fmt.Fprintf(w, "sweep %s: %d cells — %d done, %d running, %d queued, %d pending, %d failed, %d interrupted\n",
				grid.Name, len(cells), n[sweep.Done], n[sweep.Running], n[sweep.Queued], n[sweep.Pending],
				n[sweep.Failed], n[sweep.Interrupted])
			for _, s := range sts {
				line := fmt.Sprintf("  %-12s %-11s %s", s.Cell.ID, s.State, s.Cell.Label())
				if s.Detail != "" {
					line += "  — " + s.Detail
				}
				fmt.Fprintln(w, line)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&slurm, "slurm", true, "ask squeue about submitted cells (when the sweep has Slurm submissions)")
	return c
}

func newSweepReportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "report DIR",
		Short: "Aggregate the done cells: mean ± std over seeds per setting → DIR/report.md, report.json, report.png",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			grid, err := loadSweep(args[0])
			if err != nil {
				return err
			}
			sts, err := sweep.Status(args[0], grid.Cells(), nil)
			if err != nil {
				return err
			}
			r, err := sweep.BuildReport(args[0], grid, sts)
			if err != nil {
				return err
			}
			if err := r.Write(args[0]); err != nil {
				return err
			}
			r.Markdown(c.OutOrStdout())
			return nil
		},
	}
}

// newSweepExecCmd is what every backend finally runs: one cell, from a cell list by index (a Slurm array task, a
// k8s Indexed Job pod) or from the sweep's grid by id.
func newSweepExecCmd(g *globals) *cobra.Command {
	var dir, list, index, id, job string
	c := &cobra.Command{
		Use:    "exec --dir DIR (--list FILE --index K | --cell ID)",
		Short:  "Run one cell of a sweep (what the backends' tasks run)",
		Hidden: true,
		Args:   noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" || (id == "") == (list == "") {
				return usageError{errors.New("want --dir and either --list with --index or --cell")}
			}
			var cell *sweep.Cell
			if list != "" {
				if index == "" {
					index = os.Getenv("SLURM_ARRAY_TASK_ID")
				}
				if index == "" {
					index = os.Getenv("JOB_COMPLETION_INDEX")
				}
				k, err := strconv.Atoi(index)
				if err != nil {
					return usageError{fmt.Errorf("--index %q: want a cell number", index)}
				}
				cells, err := sweep.ReadList(list)
				if err != nil {
					return usageError{err}
				}
				if k < 0 || k >= len(cells) {
					return usageError{fmt.Errorf("--index %d: %s lists %d cells", k, list, len(cells))}
				}
				cell = &cells[k]
			} else {
				grid, err := loadSweep(dir)
				if err != nil {
					return err
				}
				for _, x := range grid.Cells() {
					if x.ID == id {
						cell = &x
					}
				}
				if cell == nil {
					return usageError{fmt.Errorf("--cell %s: not a cell of %s", id, filepath.Join(dir, gridFile))}
				}
			}
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(c.OutOrStdout(), "cell %s: %s\n", cell.ID, cell.Label())
			st, err := sweep.Exec(ctx, dir, *cell, bin, g.device, job)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "cell %s %s in %.1f s\n", cell.ID, st.State, st.Seconds)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&dir, "dir", "", "the sweep folder")
	f.StringVar(&list, "list", "", "a cell list written at submission (slurm/*.cells, k8s/*.cells)")
	f.StringVar(&index, "index", "", "the cell's line in --list (default $SLURM_ARRAY_TASK_ID, else $JOB_COMPLETION_INDEX)")
	f.StringVar(&id, "cell", "", "the cell's id in the sweep's grid")
	f.StringVar(&job, "job", "", "the scheduler's name for this task, recorded in the cell's state")
	return c
}

// splitList splits a comma-separated flag value, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
