package kbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// numpyScript times numpy's float32 matmul (the BLAS numpy is linked to: OpenBLAS when libopenblas0-pthread or
// another optimised BLAS provides libblas.so.3) on square sizes given as arguments, the fastest of the repeats
// after one warm-up (as fastest does), and reports the BLAS libraries the process mapped. One JSON line out.
const numpyScript = `
import json, os, sys, time
import numpy as np
min_time = float(sys.argv[1])
out = {"numpy": np.__version__, "gflops": {}}
rng = np.random.default_rng(1)
for s in map(int, sys.argv[2:]):
    a = rng.random((s, s), dtype=np.float32) * 2 - 1
    b = rng.random((s, s), dtype=np.float32) * 2 - 1
    a @ b
    best, n, start = 0.0, 0, time.perf_counter()
    while n < 2 or time.perf_counter() - start < min_time:
        t0 = time.perf_counter(); a @ b; dt = time.perf_counter() - t0
        best = dt if n == 0 or dt < best else best
        n += 1
    out["gflops"][str(s)] = 2 * s ** 3 / best / 1e9
libs = set()
with open("/proc/self/maps") as f:
    for line in f:
        p = line.split()[-1]
        if p.startswith("/") and "blas" in os.path.basename(p):
            libs.add(os.path.realpath(p))
out["blas"] = sorted(libs)
for p in sorted(libs):
    if "openblas" in os.path.basename(p):
        import ctypes
        try:
            f = ctypes.CDLL(p).openblas_get_corename
            f.restype = ctypes.c_char_p
            out["core"] = f().decode()
        except (OSError, AttributeError):
            pass
print(json.dumps(out))
`

// Peer is the same-run CPU reference of the GEMM rows that runs outside this process: numpy's matmul (on
// OpenBLAS when installed) through a Python interpreter.
type Peer struct {
	// Name says what was measured ("numpy 1.24.2 on libopenblasp-r0.3.21.so") or why nothing was (no python3
	// with numpy on this machine: how to get it).
	Name string `json:"name"`
	// GFLOPS is the peer's GFLOP/s per square GEMM size; empty when not measured.
	GFLOPS map[int]float64 `json:"gflops,omitempty"`
}

// numpyPythons are the interpreters tried in order: Debian's own first (a pyenv python3 earlier on PATH usually
// lacks numpy), then whatever python3 is on PATH.
var numpyPythons = []string{"/usr/bin/python3", "python3"}

// pinnedBLASEnv are variables that pin OpenBLAS to a kernel or cache size that may not be this CPU's (some CI
// images set them); the peer runs without them so that OpenBLAS picks its own, as a user's numpy would (and pins
// a better one only where OpenBLAS fell back to Prescott's: BetterOpenBLASCore).
var pinnedBLASEnv = []string{"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}

// OpenBLASFallback is the kernel set OpenBLAS (DYNAMIC_ARCH) runs on an x86-64 CPU it cannot identify: Prescott's
// SSE3 kernels. 0.3.21 (Debian 12) takes a 2026 Xeon (family 6, model 207) for one, and its sgemm 1024³ runs at
// 33–60 GFLOP/s there against 296–316 with the SkylakeX kernels the CPU can run.
const OpenBLASFallback = "Prescott"

// BetterOpenBLASCore returns the OpenBLAS kernel set to pin (OPENBLAS_CORETYPE) when OpenBLAS chose core for this
// CPU and the CPU's flags (/proc/cpuinfo's) allow a faster one: SkylakeX with AVX-512 F, CD, BW, DQ and VL, else
// Haswell with AVX2 and FMA. It returns "" when OpenBLAS's own choice should stand.
func BetterOpenBLASCore(core string, flags []string) string {
	if core != OpenBLASFallback {
		return ""
	}
	has := map[string]bool{}
	for _, f := range flags {
		has[f] = true
	}
	switch {
	case has["avx512f"] && has["avx512cd"] && has["avx512bw"] && has["avx512dq"] && has["avx512vl"]:
		return "SkylakeX"
	case has["avx2"] && has["fma"]:
		return "Haswell"
	}
	return ""
}

// cpuFlags returns the first "flags" line of /proc/cpuinfo, split (nil where there is none).
func cpuFlags() []string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			return strings.Fields(v)
		}
	}
	return nil
}

// NumpyGEMM times numpy's matmul on the square sizes, each for at least minTime. It never fails the benchmark:
// without a usable interpreter or numpy, the Peer's Name says so and how to install it. Where OpenBLAS did not
// recognise the CPU and ran its fallback kernels (BetterOpenBLASCore), it measures again with the kernels the CPU
// can run, and the Name says so: the reference is OpenBLAS at its best, not at a misdetection.
func NumpyGEMM(ctx context.Context, sizes []int, minTime time.Duration) Peer {
	p, core := numpyGEMM(ctx, sizes, minTime, "")
	if better := BetterOpenBLASCore(core, cpuFlags()); better != "" {
		if q, _ := numpyGEMM(ctx, sizes, minTime, better); len(q.GFLOPS) > 0 {
			q.Name += fmt.Sprintf(" (OPENBLAS_CORETYPE=%s: OpenBLAS took this CPU for a %s)", better, core)
			return q
		}
	}
	return p
}

// numpyGEMM is one NumpyGEMM measurement, with OPENBLAS_CORETYPE set to coretype when it is not empty; it also
// returns the kernel set OpenBLAS reported ("" when numpy is not on OpenBLAS).
func numpyGEMM(ctx context.Context, sizes []int, minTime time.Duration, coretype string) (Peer, string) {
	args := []string{"-c", numpyScript, fmt.Sprintf("%g", minTime.Seconds())}
	for _, s := range sizes {
		args = append(args, fmt.Sprint(s))
	}
	var env []string
	for _, kv := range os.Environ() {
		pinned := false
		for _, p := range pinnedBLASEnv {
			pinned = pinned || strings.HasPrefix(kv, p+"=")
		}
		if !pinned {
			env = append(env, kv)
		}
	}
	if coretype != "" {
		env = append(env, "OPENBLAS_CORETYPE="+coretype)
	}
	why := "no python3 found"
	for _, py := range numpyPythons {
		path, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		cmd := exec.CommandContext(ctx, path, args...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			if ctx.Err() != nil {
				return Peer{Name: "not measured: " + ctx.Err().Error()}, ""
			}
			why = fmt.Sprintf("%s: %s", path, lastLine(stderr.String(), err))
			continue
		}
		var out struct {
			Numpy  string             `json:"numpy"`
			GFLOPS map[string]float64 `json:"gflops"`
			BLAS   []string           `json:"blas"`
			Core   string             `json:"core"`
		}
		if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &out); err != nil {
			why = fmt.Sprintf("%s: unreadable output: %v", path, err)
			continue
		}
		p := Peer{Name: "numpy " + out.Numpy + " on " + blasName(out.BLAS), GFLOPS: map[int]float64{}}
		for _, s := range sizes {
			p.GFLOPS[s] = out.GFLOPS[fmt.Sprint(s)]
		}
		return p, out.Core
	}
	return Peer{Name: "not measured (" + why + "): apt install python3-numpy libopenblas0-pthread for numpy + OpenBLAS"}, ""
}

// blasName names the BLAS numpy mapped by its file name: libopenblasp-r0.3.21.so, or libblas.so.3 (the reference
// BLAS when no optimised one provides it).
func blasName(libs []string) string {
	var names []string
	for _, l := range libs {
		names = append(names, l[strings.LastIndex(l, "/")+1:])
	}
	if len(names) == 0 {
		return "no BLAS library mapped"
	}
	// libblas.so.3 next to libopenblas*.so is OpenBLAS's own libblas: name the one that does the work.
	for _, n := range names {
		if strings.Contains(n, "openblas") {
			return n
		}
	}
	return strings.Join(names, ", ")
}

func lastLine(s string, err error) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.Error()
		}
		return err.Error()
	}
	return s
}
