//go:build mpi

package dist

/*
#cgo pkg-config: ompi-c
#include <mpi.h>

// MPI_THREAD_SERIALIZED: Go may call from any OS thread, and Comm serializes the calls.
static int sq_init(int *provided) {
	int done = 0;
	MPI_Initialized(&done);
	if (done) {
		*provided = MPI_THREAD_SERIALIZED;
		return MPI_SUCCESS;
	}
	return MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, provided);
}
static int sq_rank(int *r) { return MPI_Comm_rank(MPI_COMM_WORLD, r); }
static int sq_size(int *s) { return MPI_Comm_size(MPI_COMM_WORLD, s); }
static int sq_sum(float *buf, int n) {
	return MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}
static int sq_gather(float *in, float *out, int n) {
	return MPI_Allgather(in, n, MPI_FLOAT, out, n, MPI_FLOAT, MPI_COMM_WORLD);
}
static int sq_bcast(float *buf, int n) { return MPI_Bcast(buf, n, MPI_FLOAT, 0, MPI_COMM_WORLD); }
static int sq_threads(void) { return MPI_THREAD_SERIALIZED; }
static int sq_finalize(void) { return MPI_Finalize(); }
*/
import "C"

import (
	"fmt"
	"math"
	"os"
	"sync"
	"unsafe"
)

const mpiBuilt = true

type mpiComm struct {
	mu         sync.Mutex
	rank, size int
	ordered    bool
	all        []float32 // the ordered reduction's gathered blocks
	closed     bool
}

func openMPI(ordered bool) (Comm, error) {
	// A rank waiting in MPI_Allreduce busy-polls by default; with a CPU Vulkan driver (lavapipe, SwiftShader) the
	// spinning rank takes the cores the other ranks' shaders run on — measured here: 20 steps of small in 166 s
	// with polling, 1.0 s yielding. Yield unless the user chose (Open MPI reads its MCA parameters from the
	// environment in MPI_Init).
	if os.Getenv("OMPI_MCA_mpi_yield_when_idle") == "" {
		os.Setenv("OMPI_MCA_mpi_yield_when_idle", "1")
	}
	var provided C.int
	if rc := C.sq_init(&provided); rc != C.MPI_SUCCESS {
		return nil, fmt.Errorf("MPI_Init_thread failed (error %d)", int(rc))
	}
	if provided < C.sq_threads() {
		return nil, fmt.Errorf("--dist mpi: this MPI library gives thread level %d, sqnet needs MPI_THREAD_SERIALIZED",
			int(provided))
	}
	var r, s C.int
	if rc := C.sq_rank(&r); rc != C.MPI_SUCCESS {
		return nil, fmt.Errorf("MPI_Comm_rank failed (error %d)", int(rc))
	}
	if rc := C.sq_size(&s); rc != C.MPI_SUCCESS {
		return nil, fmt.Errorf("MPI_Comm_size failed (error %d)", int(rc))
	}
	return &mpiComm{rank: int(r), size: int(s), ordered: ordered}, nil
}

func (c *mpiComm) Rank() int { return c.rank }
func (c *mpiComm) Size() int { return c.size }

// call runs one collective MPI call on buf (nothing for an empty one), serialized with the others.
func (c *mpiComm) call(buf []float32, what string, f func(p *C.float, n C.int) C.int) error {
	if len(buf) == 0 {
		return nil
	}
	if len(buf) > math.MaxInt32 {
		return fmt.Errorf("mpi: %d values in one call; at most %d", len(buf), math.MaxInt32)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if rc := f((*C.float)(unsafe.Pointer(&buf[0])), C.int(len(buf))); rc != C.MPI_SUCCESS {
		return fmt.Errorf("%s of %d values failed (MPI error %d)", what, len(buf), int(rc))
	}
	return nil
}

func (c *mpiComm) SumFloats(buf []float32) error {
	if !c.ordered {
		return c.call(buf, "MPI_Allreduce", func(p *C.float, n C.int) C.int { return C.sq_sum(p, n) })
	}
	return c.call(buf, "MPI_Allgather", func(p *C.float, n C.int) C.int {
		if len(c.all) != len(buf)*c.size {
			c.all = make([]float32, len(buf)*c.size)
		}
		rc := C.sq_gather(p, (*C.float)(unsafe.Pointer(&c.all[0])), n)
		if rc == C.MPI_SUCCESS {
			sumInRankOrder(buf, c.all, c.size)
		}
		return rc
	})
}

func (c *mpiComm) Broadcast(buf []float32) error {
	return c.call(buf, "MPI_Bcast", func(p *C.float, n C.int) C.int { return C.sq_bcast(p, n) })
}

func (c *mpiComm) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if rc := C.sq_finalize(); rc != C.MPI_SUCCESS {
		return fmt.Errorf("MPI_Finalize failed (error %d)", int(rc))
	}
	return nil
}
