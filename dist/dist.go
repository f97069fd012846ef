// Package dist is how the processes of a data-parallel training job talk: a Comm sums a packed buffer over every
// process (MPI_Allreduce) and broadcasts one from rank 0. The MPI backend (mpi.go) links against the system's MPI
// through cgo and is compiled only with the build tag mpi (`go build -tags mpi ./cmd/sqnet`, needs Debian's
// libopenmpi-dev), so the default binary needs no MPI. Processes are started by the job's own launcher — mpirun,
// or srun under Slurm — never by sqnet: dist has no scheduler and no protocol of its own.
package dist

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Comm connects the processes of one job.
type Comm interface {
	// Rank is this process's index, 0 to Size−1; rank 0 owns output, checkpoints and logs.
	Rank() int
	// Size is the number of processes.
	Size() int
	// SumFloats replaces buf, on every process, by the element-wise sum over every process's buf. With the
	// ordered reduction the sum is taken in rank order (rank 0 + rank 1 + …) on every process, so its result is
	// bit-identical run to run whatever the network; otherwise MPI chooses the order (MPI_Allreduce).
	SumFloats(buf []float32) error
	// Broadcast replaces buf on every process by rank 0's.
	Broadcast(buf []float32) error
	// Close ends the process's part in the job (MPI_Finalize).
	Close() error
}

// Backends are the values of --dist: none (one process) and mpi.
var Backends = []string{"none", "mpi"}

// ErrNoMPI is --dist mpi in a binary built without MPI.
var ErrNoMPI = errors.New("--dist mpi: this sqnet was built without MPI; build it with `go build -tags mpi ./cmd/sqnet` " +
	"(needs libopenmpi-dev) or drop --dist")

// ErrNotLaunched is --dist mpi in a process that mpirun or srun did not start.
var ErrNotLaunched = errors.New("--dist mpi: not started by mpirun or srun (no OMPI_COMM_WORLD_SIZE, PMIX_RANK or " +
	"PMI_RANK in the environment); run it as `mpirun -np R sqnet train --dist mpi …`")

// Launched reports whether an MPI launcher started this process: Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE,
// PMIx launchers (srun --mpi=pmix, prterun) PMIX_RANK, and PMI-1/2 launchers PMI_RANK.
func Launched() bool {
	for _, v := range []string{"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"} {
		if os.Getenv(v) != "" {
			return true
		}
	}
	return false
}

// LaunchedSize is the job's number of processes as the launcher's environment gives it (Open MPI, Slurm, PMI),
// before MPI is initialised: what flags are checked against. 0 when none says.
func LaunchedSize() int {
	n, ok := envInt("OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS", "PMI_SIZE")
	if !ok || n < 1 {
		return 0
	}
	return n
}

// LocalRank is this process's index among the job's processes on its node (Open MPI, Slurm, MPICH); −1 when no
// launcher says.
func LocalRank() int {
	n, ok := envInt("OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID")
	if !ok || n < 0 {
		return -1
	}
	return n
}

// envInt returns the integer value of the first of the variables that holds one.
func envInt(vars ...string) (int, bool) {
	for _, v := range vars {
		if n, err := strconv.Atoi(strings.TrimSpace(os.Getenv(v))); err == nil {
			return n, true
		}
	}
	return 0, false
}

// Open connects to the job: backend "mpi" (ordered: the rank-order reduction of SumFloats), or "none"/"" for a
// single process (nil Comm).
func Open(backend string, ordered bool) (Comm, error) {
	switch backend {
	case "", "none":
		return nil, nil
	case "mpi":
		if !Launched() {
			return nil, ErrNotLaunched
		}
		return openMPI(ordered)
	}
	return nil, fmt.Errorf("--dist %q: want none or mpi", backend)
}

// Available reports whether this binary has the MPI backend.
func Available() bool { return mpiBuilt }

// sumInRankOrder adds the size blocks of n values in all, block 0 first, into out: the ordered reduction.
func sumInRankOrder(out, all []float32, size int) {
	n := len(out)
	copy(out, all[:n])
	for r := 1; r < size; r++ {
		blk := all[r*n : (r+1)*n]
		for i := range out {
			out[i] += blk[i]
		}
	}
}
