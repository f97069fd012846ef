package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sqnet/sqnet/vk"
	"github.com/sqnet/sqnet/vk/vktest"
)

// Shared test helpers for every kernel: a device under validation, seeded inputs, uploads, comparisons that print
// the first mismatching index, finite differences and determinism checks.

// edgeSizes are the sizes every kernel test covers (issue: 1, 3, 17, 31, 64, 257).
var edgeSizes = []int{1, 3, 17, 31, 64, 257}

// openLib opens the test device (validation on unless SQNET_VALIDATION=0) and its kernel library.
func openLib(t testing.TB) *Lib {
	t.Helper()
	return New(vktest.Open(t))
}

// rng returns a seeded generator; each test names its own seed so failures reproduce.
func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

// uniform returns n values uniform in [lo, hi).
func uniform(r *rand.Rand, n int, lo, hi float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = lo + (hi-lo)*r.Float32()
	}
	return out
}

// upload allocates a device buffer holding data (at least 4 bytes) and frees it at cleanup.
func upload(t testing.TB, l *Lib, data []float32) *vk.Buffer { return uploadOf(t, l, data) }

// uploadU32 is upload for uint32 data.
func uploadU32(t testing.TB, l *Lib, data []uint32) *vk.Buffer { return uploadOf(t, l, data) }

func uploadOf[T ~float32 | ~uint32](t testing.TB, l *Lib, data []T) *vk.Buffer {
	t.Helper()
	b, err := l.dev.Alloc(uint64(max(4*len(data), 4)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Free)
	if err := vk.Upload(b, data); err != nil {
		t.Fatal(err)
	}
	return b
}

// zeros allocates a device buffer of n floats set to zero.
func zeros(t testing.TB, l *Lib, n int) *vk.Buffer { return upload(t, l, make([]float32, n)) }

// download reads n floats.
func download(t testing.TB, b *vk.Buffer, n int) []float32 {
	t.Helper()
	out := make([]float32, n)
	if err := vk.Download(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// downloadU32 reads n uint32 values.
func downloadU32(t testing.TB, b *vk.Buffer, n int) []uint32 {
	t.Helper()
	out := make([]uint32, n)
	if err := vk.Download(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// newRecorder opens a recorder on the test device, closed at cleanup (the bad-input tables record into it).
func newRecorder(t testing.TB, l *Lib) *vk.Recorder {
	t.Helper()
	rec, err := l.dev.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Close)
	return rec
}

// run records with fn, submits and waits, failing the test on error.
func run(t testing.TB, l *Lib, fn func(r *vk.Recorder) error) {
	t.Helper()
	if err := l.Run(fn); err != nil {
		t.Fatal(err)
	}
}

// tol is a per-op tolerance: |got − want| ≤ Abs + Rel·|want|.
type tol struct{ Abs, Rel float64 }

// exact is the tolerance of ops that must match bit for bit.
var exact = tol{}

// mismatch returns a description of the first element outside tolerance, or "".
func mismatch(got, want []float32, tl tol) string {
	if len(got) != len(want) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) != math.IsNaN(w) || math.Abs(g-w) > tl.Abs+tl.Rel*math.Abs(w) ||
			(tl == exact && got[i] != want[i] && !math.IsNaN(g)) {
			return fmt.Sprintf("first mismatch at index %d: got %.9g, want %.9g (|diff| %.3g, tolerance %.3g + %.3g·|want|)",
				i, g, w, math.Abs(g-w), tl.Abs, tl.Rel)
		}
	}
	return ""
}

// compare fails the test at the first element of got outside tolerance of want.
func compare(t testing.TB, what string, got, want []float32, tl tol) {
	t.Helper()
	if m := mismatch(got, want, tl); m != "" {
		t.Fatalf("%s: %s", what, m)
	}
}

// compareU32 fails the test at the first differing element.
func compareU32(t testing.TB, what string, got, want []uint32) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: first mismatch at index %d: got %d, want %d", what, i, got[i], want[i])
		}
	}
}

// numericGrad returns the central-difference gradient of f at x with step h, in float64.
func numericGrad(f func(x []float64) float64, x []float64, h float64) []float64 {
	g := make([]float64, len(x))
	for i := range x {
		old := x[i]
		x[i] = old + h
		fp := f(x)
		x[i] = old - h
		fm := f(x)
		x[i] = old
		g[i] = (fp - fm) / (2 * h)
	}
	return g
}

// gradCheck compares an analytic gradient (from a backward kernel) with a numeric one, failing at the first
// element outside tolerance.
func gradCheck(t testing.TB, what string, analytic []float32, numeric []float64, tl tol) {
	t.Helper()
	want := make([]float32, len(numeric))
	for i, v := range numeric {
		want[i] = float32(v)
	}
	if m := mismatch(analytic, want, tl); m != "" {
		t.Fatalf("%s: finite-difference check: %s", what, m)
	}
}

// bitsEqual reports whether two runs produced identical bits.
func bitsEqual(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// sameBits fails the test unless two runs produced identical bits (no float atomics, fixed reduction order).
func sameBits(t testing.TB, what string, a, b []float32) {
	t.Helper()
	if i := bitsEqual(a, b); i >= 0 {
		t.Fatalf("%stwo runs differ at %d: %v vs %v", what, i, a[i], b[i])
	}
}

// expectErr fails unless err is non-nil; used for the bad-input tables.
func expectErr(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
	}
}
