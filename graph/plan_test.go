package graph

import (
	"math/rand/v2"
	"testing"
)

// checkPlan verifies that no two buffers alive at the same step overlap in memory and that all fit the peak.
func checkPlan(t *testing.T, lts []Lifetime, offs []uint64, peak uint64) {
	t.Helper()
	for i, a := range lts {
		if offs[i]%16 != 0 || offs[i]+a.Size > peak {
			t.Fatalf("buffer %d at %d (+%d) outside a %d-byte arena or misaligned", i, offs[i], a.Size, peak)
		}
		for j := i + 1; j < len(lts); j++ {
			b := lts[j]
			live := a.First <= b.Last && b.First <= a.Last
			mem := offs[i] < offs[j]+b.Size && offs[j] < offs[i]+a.Size
			if live && mem {
				t.Fatalf("buffers %d %+v at %d and %d %+v at %d are alive together and overlap", i, a, offs[i], j, b,
					offs[j])
			}
		}
	}
}

func TestPlanChainReusesMemory(t *testing.T) {
	// A chain a→b→c→d: each buffer is consumed by the next step, so two buffers suffice at any time.
	lts := []Lifetime{{1000, 0, 1}, {1000, 1, 2}, {1000, 2, 3}, {1000, 3, 4}}
	offs, peak, err := Plan(lts, 16)
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, lts, offs, peak)
	if peak != 2*1008 {
		t.Fatalf("peak %d, want %d (two live buffers of 1008 aligned bytes)", peak, 2*1008)
	}
}

func TestPlanRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		n := 1 + r.IntN(40)
		lts := make([]Lifetime, n)
		var sum uint64
		for i := range lts {
			first := r.IntN(50)
			lts[i] = Lifetime{Size: uint64(1 + r.IntN(5000)), First: first, Last: first + r.IntN(10)}
			sum += (lts[i].Size + 15) &^ 15
		}
		offs, peak, err := Plan(lts, 16)
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, lts, offs, peak)
		if peak > sum {
			t.Fatalf("peak %d exceeds the %d bytes of no reuse at all", peak, sum)
		}
	}
}

func TestPlanRejects(t *testing.T) {
	if _, _, err := Plan([]Lifetime{{10, 3, 2}}, 16); err == nil {
		t.Error("a lifetime ending before it starts was accepted")
	}
	if _, _, err := Plan(nil, 12); err == nil {
		t.Error("a non-power-of-two alignment was accepted")
	}
}
