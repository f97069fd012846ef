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

// TestBetterOpenBLASCore: OpenBLAS's fallback kernels on a CPU with AVX-512 or AVX2 give way to the CPU's best;
// any kernel set OpenBLAS recognised stands.
func TestBetterOpenBLASCore(t *testing.T) {
	avx512 := strings.Fields("fpu sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl")
	for _, c := range []struct {
		core  string
		flags []string
		want  string
	}{
		{"Prescott", avx512, "SkylakeX"},
		{"Prescott", strings.Fields("sse2 avx avx2 fma avx512f"), "Haswell"}, // AVX-512 F alone is not SkylakeX
		{"Prescott", strings.Fields("sse2 sse3 avx"), ""},
		{"Prescott", nil, ""},
		{"Zen", avx512, ""},
		{"Haswell", avx512, ""},
		{"", avx512, ""},
	} {
		if got := BetterOpenBLASCore(c.core, c.flags); got != c.want {
			t.Errorf("BetterOpenBLASCore(%q, %v) = %q, want %q", c.core, c.flags, got, c.want)
		}
	}
}
