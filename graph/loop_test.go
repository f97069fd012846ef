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

// TestStages runs a two-stage program: stage 0 copies a parameter into a state tensor, the host rewrites that
// tensor, and stage 1 adds it back into the parameter — the shape of a data-parallel step (backward, reduce on the
// host, optimizer). Run runs both stages; a stage boundary inside a repeated body is refused.
func TestStages(t *testing.T) {
	g := openGraph(t)
	const n = 8
	w := g.Param("w", n)
	s := g.State("s", n)
	g.Copy(s, w)
	g.Stage()
	g.Stage() // an empty stage is not made
	g.Axpy(w, s, 1)
	p, err := g.Compile()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Stages() != 2 {
		t.Fatalf("%d stages, want 2", p.Stages())
	}
	w0 := randn(3, n)
	if err := Write(p, w, w0); err != nil {
		t.Fatal(err)
	}
	if err := p.SubmitStage(1); err == nil {
		t.Fatal("stage 1 before stage 0 was accepted")
	}
	if err := p.Submit(); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, n)
	if err := Read(p, s, got); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] != w0[i] {
			t.Fatalf("after stage 0: s[%d] = %g, want %g", i, got[i], w0[i])
		}
	}
	host := randn(4, n)
	if err := Write(p, s, host); err != nil {
		t.Fatal(err)
	}
	if err := p.SubmitStage(1); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := Read(p, w, got); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if want := w0[i] + host[i]; got[i] != want {
			t.Fatalf("after stage 1: w[%d] = %g, want %g (the host's value, not stage 0's)", i, got[i], want)
		}
	}
	// Run: both stages, w doubles.
	if err := p.Run(); err != nil {
		t.Fatal(err)
	}
	prev := append([]float32(nil), got...)
	if err := Read(p, w, got); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] != 2*prev[i] {
			t.Fatalf("Run: w[%d] = %g, want %g", i, got[i], 2*prev[i])
		}
	}

	g2 := openGraph(t)
	a := g2.State("a", n)
	b := g2.State("b", n)
	g2.Repeat(2, func() {
		g2.Copy(b, a)
		g2.Stage()
		g2.Axpy(a, b, 1)
	})
	if _, err := g2.Compile(); err == nil || !strings.Contains(err.Error(), "repeated body") {
		t.Fatalf("stage inside a loop: %v", err)
	}
}
