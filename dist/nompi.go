//go:build !mpi

package dist

const mpiBuilt = false

func openMPI(bool) (Comm, error) { return nil, ErrNoMPI }
