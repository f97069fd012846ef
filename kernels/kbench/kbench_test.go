package kbench

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sqnet/sqnet/vk"
	"github.com/sqnet/sqnet/vk/vktest"
)

// TestRunSmall runs a shrunken suite under validation and checks the report's structure: every benchmark
// present in order (GEMMs, the two peak rows, convolutions), positive rates, JSON round trip.
func TestRunSmall(t *testing.T) {
	d := vktest.Open(t)
	var lines []string
	rep, err := Run(d, Options{MinTime: time.Millisecond, GEMMSizes: []int{33}, Batches: []int{2}, NoPeer: true,
		PeakInvocations: 1000, PeakIters: 10}, func(s string) { lines = append(lines, s) })
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + 2 + 2*3; len(rep.Results) != want || len(lines) != want {
		t.Fatalf("%d results, %d progress lines, want %d", len(rep.Results), len(lines), want)
	}
	if rep.Device != d.Name() {
		t.Errorf("device %q, want %q", rep.Device, d.Name())
	}
	for _, r := range rep.Results {
		if strings.HasPrefix(r.Name, "peak/") {
			if r.GFLOPS <= 0 || r.Ms <= 0 || r.SlowestMs < r.Ms || r.SetupMs <= 0 || r.BLASGFLOPS != 0 || r.GEMM != [3]int{} {
				t.Errorf("implausible peak result %+v", r)
			}
			continue
		}
		if r.GFLOPS <= 0 || r.Ms <= 0 || r.SlowestMs < r.Ms || r.SetupMs <= 0 || r.BLASGFLOPS <= 0 ||
			r.GEMM[0]*r.GEMM[1]*r.GEMM[2] == 0 {
			t.Errorf("implausible result %+v", r)
		}
	}
	if rep.Results[1].Name != "peak/mad" || rep.Results[2].Name != "peak/fma" {
		t.Errorf("results 2 and 3: %q, %q, want peak/mad and peak/fma", rep.Results[1].Name, rep.Results[2].Name)
	}
	if want := 1000 * 10 * 80.0 / (rep.Results[1].Ms * 1e6); math.Abs(rep.Results[1].GFLOPS-want) > 1e-6*want {
		t.Errorf("peak/mad: %v GFLOP/s in %v ms, want %v (80 flops per invocation step)", rep.Results[1].GFLOPS,
			rep.Results[1].Ms, want)
	}
	if !strings.HasPrefix(rep.Results[3].Name, "conv1/forward") || rep.Results[3].GEMM != [3]int{32, 2 * 784, 25} {
		t.Errorf("fourth result %+v, want conv1/forward with GEMM 32×1568×25", rep.Results[3])
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || len(back.Results) != len(rep.Results) {
		t.Fatalf("JSON round trip: %v, %d results", err, len(back.Results))
	}
}

// TestRunFull runs the real suite without validation when SQNET_KBENCH=1 (minutes on lavapipe) and prints it.
func TestRunFull(t *testing.T) {
	if os.Getenv("SQNET_KBENCH") != "1" {
		t.Skip("set SQNET_KBENCH=1 to run the full kernel benchmark suite")
	}
	opts := vktest.Options()
	opts.Instance.Validation = vk.ValidationOff
	d := vktest.OpenWith(t, opts)
	rep, err := Run(d, Options{}, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("device: %s (%s)", rep.Device, rep.Driver)
}
