package graph

import (
	"strings"
	"testing"
)

// TestRepeat records an in-place accumulation 7 times in one command buffer: the state must count to 7, and the
// barriers between iterations must be there (the validation layer's synchronization checks would report a
// missing one).
func TestRepeat(t *testing.T) {
	g := openGraph(t)
	c := g.State("counter", 3)
	one := g.Const("one", []float32{1, 2, 3}, 3)
	g.Repeat(7, func() { g.accumulate(one, c) })
	g.Keep(c)
	p, err := g.Compile()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for run := 1; run <= 2; run++ {
		if err := p.Run(); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, 3)
		if err := Read(p, c, got); err != nil {
			t.Fatal(err)
		}
		for i, want := range []float32{1, 2, 3} {
			if got[i] != want*float32(7*run) {
				t.Fatalf("run %d: counter %v, want %v×%d", run, got, []float32{1, 2, 3}, 7*run)
			}
		}
	}
	if st := p.Stats(); st.Dispatches != 7 || st.Barriers != 6 {
		t.Errorf("stats %+v: want 7 dispatches and 6 barriers", st)
	}
}

func TestRepeatRejectsCrossingTemporaries(t *testing.T) {
	g := openGraph(t)
	x := g.Input("x", F32, 4)
	h := g.ReLU(x)                    // a temporary made outside the loop …
	g.Repeat(2, func() { g.ReLU(h) }) // … and read inside it
	if _, err := g.Compile(); err == nil || !strings.Contains(err.Error(), "inside and outside") {
		t.Fatalf("compile: %v", err)
	}
}
