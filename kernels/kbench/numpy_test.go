package kbench

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestNumpyGEMMMissing: without an interpreter the peer is a sentence saying what to install, not an error.
func TestNumpyGEMMMissing(t *testing.T) {
	defer func(p []string) { numpyPythons = p }(numpyPythons)
	numpyPythons = []string{"/nonexistent/python3"}
	p := NumpyGEMM(context.Background(), []int{8}, time.Millisecond)
	if !strings.HasPrefix(p.Name, "not measured") || !strings.Contains(p.Name, "python3-numpy") || len(p.GFLOPS) != 0 {
		t.Fatalf("peer %+v, want a not-measured sentence naming python3-numpy", p)
	}
}

// TestNumpyGEMM measures a small product where numpy is installed (skipped where not: make test needs no Python).
func TestNumpyGEMM(t *testing.T) {
	if exec.Command("/usr/bin/python3", "-c", "import numpy").Run() != nil {
		t.Skip("no /usr/bin/python3 with numpy")
	}
	p := NumpyGEMM(context.Background(), []int{64, 128}, time.Millisecond)
	if !strings.HasPrefix(p.Name, "numpy ") || p.GFLOPS[64] <= 0 || p.GFLOPS[128] <= 0 {
		t.Fatalf("peer %+v, want numpy's GFLOP/s for 64 and 128", p)
	}
	t.Logf("%s: %v", p.Name, p.GFLOPS)
}
