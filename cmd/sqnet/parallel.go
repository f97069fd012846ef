package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sqnet/sqnet/dist"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/train"
	"github.com/sqnet/sqnet/vk"
)

// parallelFlags are train's data-parallel flags: devices of this process, and the multi-process backend.
type parallelFlags struct {
	devices string // --devices: comma-separated selectors as --device takes them
	dist    string // --dist: none or mpi
	ordered bool   // --dist-ordered: sum in rank order
}

func (p *parallelFlags) register(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&p.devices, "devices", "", "data-parallel training on several devices of this process: a comma-separated "+
		"list of indexes or name parts from `sqnet devices` (or gpu:N); the batch (--batch, the global batch) is split "+
		"evenly over them and their gradients summed in list order. The same device twice gives two logical devices")
	f.StringVar(&p.dist, "dist", "none", "multi-process data-parallel training: none, or mpi (processes started by mpirun -np R "+
		"or srun; needs a binary built with -tags mpi); rank 0 writes the checkpoint and the output")
	f.BoolVar(&p.ordered, "dist-ordered", false, "--dist mpi: sum the ranks' gradients in rank order (MPI_Allgather) "+
		"instead of MPI_Allreduce's own order, so a run is bit-identical to its repeat on any network")
}

// selectors splits --devices.
func (p *parallelFlags) selectors() []string {
	if strings.TrimSpace(p.devices) == "" {
		return nil
	}
	return strings.Split(p.devices, ",")
}

// check validates the flags before any output or work, the batch's split included (over this process's devices
// times the job's processes, which the launcher's environment gives).
func (p *parallelFlags) check(g *globals, c *cobra.Command, batch int) error {
	sels := p.selectors()
	for _, s := range sels {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("--devices %q: an empty entry", p.devices)
		}
	}
	if len(sels) > 0 && c.Flags().Changed("device") {
		return fmt.Errorf("--device and --devices: give one (--devices lists every device the run uses)")
	}
	switch p.dist {
	case "none":
		if p.ordered {
			return fmt.Errorf("--dist-ordered: only with --dist mpi")
		}
	case "mpi":
		if !dist.Available() {
			return dist.ErrNoMPI
		}
		if !dist.Launched() {
			return dist.ErrNotLaunched
		}
	default:
		return fmt.Errorf("--dist %q: want none or mpi", p.dist)
	}
	r := max(len(sels), 1)
	if p.dist == "mpi" {
		r *= max(dist.LaunchedSize(), 1)
	}
	return train.CheckSplit(batch, r)
}

// openDevices opens the devices of this process: --devices' list, or the one --device (or its default) picks.
// Under --dist mpi with neither flag, each process of a node takes the GPU of its local rank when the node has
// that many GPUs (the usual one-rank-per-GPU layout), and the default device otherwise.
func (p *parallelFlags) openDevices(g *globals) ([]*vk.Device, error) {
	sels := p.selectors()
	if len(sels) == 0 {
		sel := g.device
		if p.dist == "mpi" && sel == "" && os.Getenv(vk.DeviceEnv) == "" {
			if r := dist.LocalRank(); r >= 0 {
				if in, err := vk.NewInstance(vk.InstanceOptions{}); err == nil {
					if devs, err := in.Devices(); err == nil {
						if _, err := vk.Choose(devs, fmt.Sprintf("gpu:%d", r)); err == nil {
							sel = fmt.Sprintf("gpu:%d", r)
						}
					}
					in.Close()
				}
			}
		}
		sels = []string{sel}
	}
	var out []*vk.Device
	for _, s := range sels {
		o := g.vkOptions()
		o.Device = strings.TrimSpace(s)
		d, err := vk.Open(o)
		if err != nil {
			for _, d := range out {
				d.Close()
			}
			return nil, fmt.Errorf("--devices %s: %w", s, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// libs wraps opened devices in kernel libraries: the first runs the step's replica 0, the rest ExtraDevices.
func libs(devs []*vk.Device) (*kernels.Lib, []*kernels.Lib) {
	var extra []*kernels.Lib
	for _, d := range devs[1:] {
		extra = append(extra, kernels.New(d))
	}
	return kernels.New(devs[0]), extra
}
