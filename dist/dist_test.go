package dist

import (
	"errors"
	"testing"
)

// TestSumInRankOrder checks the ordered reduction adds the blocks in rank order: with values whose float32 sum
// depends on the order, the result is (r0 + r1) + r2, not any other grouping.
func TestSumInRankOrder(t *testing.T) {
	all := []float32{1e8, 1, 2, -1e8, 3, 4, 1, 5, 6}
	out := make([]float32, 3)
	sumInRankOrder(out, all, 3)
	want := []float32{(1e8 + -1e8) + 1, (1 + 3) + 5, (2 + 4) + 6}
	for i := range out {
		if out[i] != want[i] {
			t.Fatalf("element %d: %v, want %v", i, out[i], want[i])
		}
	}
	if float32(1e8)+(float32(-1e8)+1) == want[0] {
		t.Fatal("the test values do not depend on the order")
	}
}

// TestOpen: none is a single process; mpi outside a launcher is refused, and inside one a binary without MPI
// says how to build one.
func TestOpen(t *testing.T) {
	if c, err := Open("none", false); c != nil || err != nil {
		t.Fatalf("none: %v, %v", c, err)
	}
	if _, err := Open("nccl", false); err == nil {
		t.Fatal("an unknown backend was accepted")
	}
	for _, v := range []string{"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"} {
		t.Setenv(v, "")
	}
	if _, err := Open("mpi", false); !errors.Is(err, ErrNotLaunched) {
		t.Fatalf("mpi outside a launcher: %v", err)
	}
	if !Available() {
		t.Setenv("PMI_RANK", "0")
		if _, err := Open("mpi", false); !errors.Is(err, ErrNoMPI) {
			t.Fatalf("mpi in a binary without it: %v", err)
		}
	}
}

// TestLoopback runs three ranks in goroutines through a sum and a broadcast, twice.
func TestLoopback(t *testing.T) {
	comms := Loopback(3)
	errs := make(chan error, 3)
	got := make([][]float32, 3)
	for r, c := range comms {
		go func() {
			buf := []float32{float32(r), 1}
			if err := c.SumFloats(buf); err != nil {
				errs <- err
				return
			}
			b2 := []float32{float32(10 + r)}
			if err := c.Broadcast(b2); err != nil {
				errs <- err
				return
			}
			got[r] = append(buf, b2...)
			errs <- nil
		}()
	}
	for range comms {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for r, g := range got {
		if g[0] != 3 || g[1] != 3 || g[2] != 10 {
			t.Fatalf("rank %d: %v, want [3 3 10]", r, g)
		}
	}
	// A closed job fails the others' calls instead of hanging them.
	comms = Loopback(2)
	comms[1].Close()
	if err := comms[0].SumFloats([]float32{1}); err == nil {
		t.Fatal("a call in a closed job succeeded")
	}
}

// TestLauncherEnvironment: the job's size and the local rank come from the first launcher variable that holds a
// number; without one they are 0 and −1.
func TestLauncherEnvironment(t *testing.T) {
	for _, v := range []string{"OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS", "PMI_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
		"SLURM_LOCALID", "MPI_LOCALRANKID"} {
		t.Setenv(v, "")
	}
	if LaunchedSize() != 0 || LocalRank() != -1 {
		t.Fatalf("no launcher: size %d, local rank %d", LaunchedSize(), LocalRank())
	}
	t.Setenv("SLURM_NTASKS", "8")
	t.Setenv("SLURM_LOCALID", " 3")
	if LaunchedSize() != 8 || LocalRank() != 3 {
		t.Fatalf("Slurm: size %d, local rank %d", LaunchedSize(), LocalRank())
	}
	t.Setenv("OMPI_COMM_WORLD_SIZE", "4")
	t.Setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1")
	if LaunchedSize() != 4 || LocalRank() != 1 {
		t.Fatalf("Open MPI first: size %d, local rank %d", LaunchedSize(), LocalRank())
	}
}
