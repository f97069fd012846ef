package kernels

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// adamWTol is Adam's parameter tolerance after 5 steps: the moments are exact (correctly rounded adds and
// multiplies only), but √v and m/denom may each be off by ~3 ulps on a conforming GPU, so each step's update
// (≤ lr·(1−β1)/√(1−β2) ≈ 3.2·lr here) can differ in its last bits: 5 steps · 3.2·lr · 1e-6 plus an ulp of w.
func adamWTol(lr float32) tol { return tol{Abs: 5 * 3.2 * float64(lr) * 1e-6, Rel: 2.4e-7} }

// TestOptimizers runs 5 steps of SGD (plain, momentum + weight decay, Nesterov) and Adam (with and without
// weight decay) from zero state, comparing with the references after all steps: SGD exactly, Adam's moments
// exactly and its parameters within adamWTol.
func TestOptimizers(t *testing.T) {
	l := openLib(t)
	sgds := []SGDParams{{LR: 0.1}, {LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4}, {LR: 0.01, Momentum: 0.9, Nesterov: true}}
	adams := []AdamParams{DefaultAdam(1e-3), {LR: 0.01, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, WeightDecay: 0.01}}
	const steps = 5
	for _, n := range append(edgeSizes, 128*257) {
		r := rng(uint64(n) + 100)
		w0 := uniform(r, n, -2, 2)
		grads := make([][]float32, steps)
		for s := range grads {
			grads[s] = uniform(r, n, -2, 2)
		}
		grads[0][0] = 0 // a zero gradient on the first step: Adam's update must be 0, not NaN
		for _, p := range sgds {
			bw, bv := upload(t, l, w0), zeros(t, l, n)
			bg := make([]*vk.Buffer, steps)
			for s := range bg {
				bg[s] = upload(t, l, grads[s])
			}
			run(t, l, func(rec *vk.Recorder) error {
				for s := range steps {
					if err := l.SGDStep(rec, bw.All(), bg[s].All(), bv.All(), n, p); err != nil {
						return err
					}
				}
				return nil
			})
			w, v := append([]float32(nil), w0...), make([]float32, n)
			for s := range steps {
				SGDStepRef(w, grads[s], v, p)
			}
			compare(t, "sgd w", download(t, bw, n), w, exact)
			compare(t, "sgd v", download(t, bv, n), v, exact)
		}
		for _, p := range adams {
			bw, bm, bv := upload(t, l, w0), zeros(t, l, n), zeros(t, l, n)
			bg := make([]*vk.Buffer, steps)
			for s := range bg {
				bg[s] = upload(t, l, grads[s])
			}
			run(t, l, func(rec *vk.Recorder) error {
				for s := range steps {
					if err := l.AdamStep(rec, bw.All(), bg[s].All(), bm.All(), bv.All(), n, s+1, p); err != nil {
						return err
					}
				}
				return nil
			})
			w, m, v := append([]float32(nil), w0...), make([]float32, n), make([]float32, n)
			for s := range steps {
				AdamStepRef(w, grads[s], m, v, s+1, p)
			}
			// m and v are exact only while w agrees exactly; with weight decay w feeds back into g', so an ulp
			// of w reaches the moments: compare them with Adam's tolerance then.
			mt := exact
			if p.WeightDecay != 0 {
				mt = tol{Abs: 1e-7, Rel: 1e-6}
			}
			compare(t, "adam m", download(t, bm, n), m, mt)
			compare(t, "adam v", download(t, bv, n), v, mt)
			compare(t, "adam w", download(t, bw, n), w, adamWTol(p.LR))
		}
	}
}

// TestOptimizerSemantics pins the references to PyTorch's semantics with values worked by hand, so a reference
// that drifted with its kernel would still fail.
func TestOptimizerSemantics(t *testing.T) {
	// SGD, w = 1, g = 0.5 twice, μ = 0.9, wd = 0.1, lr = 0.1:
	// step 1: g' = 0.6, v = 0.6, w = 0.94; step 2: g' = 0.594, v = 0.54 + 0.594 = 1.134, w = 0.8266.
	w, v := []float32{1}, []float32{0}
	p := SGDParams{LR: 0.1, Momentum: 0.9, WeightDecay: 0.1}
	SGDStepRef(w, []float32{0.5}, v, p)
	SGDStepRef(w, []float32{0.5}, v, p)
	compare(t, "sgd by hand w", w, []float32{0.8266}, tol{Abs: 1e-6})
	compare(t, "sgd by hand v", v, []float32{1.134}, tol{Abs: 1e-6})
	// Adam's first step from zero moments is lr·g/(|g| + ε) (the bias corrections undo the (1−β) factors);
	// its second with the same g is the same again.
	wa, m, va := []float32{1, 1, 1}, make([]float32, 3), make([]float32, 3)
	g := []float32{0.5, -2, 0}
	AdamStepRef(wa, g, m, va, 1, DefaultAdam(0.01))
	compare(t, "adam step 1", wa, []float32{1 - 0.01, 1 + 0.01, 1}, tol{Abs: 1e-6})
	AdamStepRef(wa, g, m, va, 2, DefaultAdam(0.01))
	compare(t, "adam step 2", wa, []float32{1 - 0.02, 1 + 0.02, 1}, tol{Abs: 1e-6})
}

func TestOptimizersDeterministic(t *testing.T) {
	l := openLib(t)
	const n = 4099
	w0, g := uniform(rng(21), n, -2, 2), uniform(rng(22), n, -2, 2)
	bg := upload(t, l, g)
	var outs [2][]float32
	for i := range outs {
		bw, bm, bv, bs := upload(t, l, w0), zeros(t, l, n), zeros(t, l, n), zeros(t, l, n)
		run(t, l, func(r *vk.Recorder) error {
			if err := l.SGDStep(r, bw.All(), bg.All(), bs.All(), n, SGDParams{LR: 0.1, Momentum: 0.9}); err != nil {
				return err
			}
			return l.AdamStep(r, bw.All(), bg.All(), bm.All(), bv.All(), n, 1, DefaultAdam(0.01))
		})
		outs[i] = download(t, bw, n)
	}
	sameBits(t, "", outs[0], outs[1])
}

func TestOptimizersBadInput(t *testing.T) {
	l := openLib(t)
	small, big := zeros(t, l, 4), zeros(t, l, 64)
	b, s := big.All(), small.All()
	rec := newRecorder(t, l)
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	sgd := SGDParams{LR: 0.1, Momentum: 0.9}
	adam := DefaultAdam(0.01)
	expectErr(t, "sgd zero size", l.SGDStep(rec, b, b, b, 0, sgd))
	expectErr(t, "sgd negative size", l.SGDStep(rec, b, b, b, -1, sgd))
	expectErr(t, "sgd w too small", l.SGDStep(rec, s, b, b, 64, sgd))
	expectErr(t, "sgd v too small", l.SGDStep(rec, b, b, s, 64, sgd))
	expectErr(t, "sgd negative lr", l.SGDStep(rec, b, b, b, 64, SGDParams{LR: -1}))
	expectErr(t, "sgd NaN momentum", l.SGDStep(rec, b, b, b, 64, SGDParams{LR: 1, Momentum: nan}))
	expectErr(t, "sgd infinite wd", l.SGDStep(rec, b, b, b, 64, SGDParams{LR: 1, WeightDecay: inf}))
	expectErr(t, "sgd nesterov without momentum", l.SGDStep(rec, b, b, b, 64, SGDParams{LR: 1, Nesterov: true}))
	expectErr(t, "adam zero size", l.AdamStep(rec, b, b, b, b, 0, 1, adam))
	expectErr(t, "adam m too small", l.AdamStep(rec, b, b, s, b, 64, 1, adam))
	expectErr(t, "adam g too small", l.AdamStep(rec, b, s, b, b, 64, 1, adam))
	expectErr(t, "adam step 0", l.AdamStep(rec, b, b, b, b, 64, 0, adam))
	expectErr(t, "adam beta1 = 1", l.AdamStep(rec, b, b, b, b, 64, 1, AdamParams{LR: 1, Beta1: 1, Beta2: 0.9}))
	expectErr(t, "adam negative beta2", l.AdamStep(rec, b, b, b, b, 64, 1, AdamParams{LR: 1, Beta2: -0.1}))
	expectErr(t, "adam negative eps", l.AdamStep(rec, b, b, b, b, 64, 1, AdamParams{LR: 1, Eps: -1}))
	expectErr(t, "adam NaN lr", l.AdamStep(rec, b, b, b, b, 64, 1, AdamParams{LR: nan}))
	expectErr(t, "adam nil buffer", l.AdamStep(rec, vk.Range{}, b, b, b, 4, 1, adam))
}

// TestAdamDynamic replays one recorded Adam step with the corrections buffer rewritten before each submit: after
// five replays the weights equal five baked AdamStep calls with t = 1..5, bit for bit.
func TestAdamDynamic(t *testing.T) {
	l := openLib(t)
	const n = 257
	p := AdamParams{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-4}
	w0, g := uniform(rng(41), n, -2, 2), uniform(rng(42), n, -2, 2)
	bw, bm, bv, bg := upload(t, l, w0), zeros(t, l, n), zeros(t, l, n), upload(t, l, g)
	corr := zeros(t, l, 2)
	rec := newRecorder(t, l)
	if err := l.AdamStepDynamic(rec, bw.All(), bg.All(), bm.All(), bv.All(), corr.All(), n, p); err != nil {
		t.Fatal(err)
	}
	cw, cm, cv := upload(t, l, w0), zeros(t, l, n), zeros(t, l, n)
	for step := 1; step <= 5; step++ {
		c := AdamCorrections(p, step)
		if err := vk.Upload(corr, c[:]); err != nil {
			t.Fatal(err)
		}
		if err := rec.Run(); err != nil {
			t.Fatal(err)
		}
		run(t, l, func(r *vk.Recorder) error { return l.AdamStep(r, cw.All(), bg.All(), cm.All(), cv.All(), n, step, p) })
	}
	got, want := download(t, bw, n), download(t, cw, n)
	if i := bitsEqual(got, want); i >= 0 {
		t.Fatalf("after 5 replayed steps w[%d] = %v, baked steps give %v", i, got[i], want[i])
	}
	fresh, err := l.dev.NewRecorder()
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	err = l.AdamStepDynamic(fresh, bw.All(), bg.All(), bm.All(), bv.All(), zeros(t, l, 1).Range(0, 4), n, p)
	if err == nil || !strings.Contains(err.Error(), "corr") {
		t.Fatalf("a one-float corrections buffer: %v", err)
	}
}

// TestSGDDynamic replays one recorded SGD step under a changing learning rate (a schedule) and checks it against
// the reference with each step's rate, bit for bit, Nesterov momentum and weight decay included.
func TestSGDDynamic(t *testing.T) {
	l := openLib(t)
	const n = 257
	p := SGDParams{Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true}
	w0, g := uniform(rng(43), n, -2, 2), uniform(rng(44), n, -2, 2)
	bw, bv, bg, lr := upload(t, l, w0), zeros(t, l, n), upload(t, l, g), zeros(t, l, 1)
	rec := newRecorder(t, l)
	if err := l.SGDStepDynamic(rec, bw.All(), bg.All(), bv.All(), lr.All(), n, p); err != nil {
		t.Fatal(err)
	}
	w, v := append([]float32(nil), w0...), make([]float32, n)
	for _, rate := range []float32{0.1, 0.05, 0.0125, 0} {
		if err := vk.Upload(lr, []float32{rate}); err != nil {
			t.Fatal(err)
		}
		if err := rec.Run(); err != nil {
			t.Fatal(err)
		}
		q := p
		q.LR = rate
		SGDStepRef(w, g, v, q)
	}
	if i := bitsEqual(download(t, bw, n), w); i >= 0 {
		t.Fatalf("after 4 replayed steps w[%d] differs from the reference", i)
	}
	if i := bitsEqual(download(t, bv, n), v); i >= 0 {
		t.Fatalf("after 4 replayed steps v[%d] differs from the reference", i)
	}
	rec2 := newRecorder(t, l)
	if err := l.SGDStepDynamic(rec2, bw.All(), bg.All(), bv.All(), lr.Range(0, 0), n, p); err == nil {
		t.Fatal("an empty learning-rate buffer was accepted")
	}
}

// TestAdamVec4SameBits: the vec4 variant (n % 4 == 0) gives the scalar variant's bits. Three steps over 64
// elements run adam4; the same 64 elements with one more (n = 65) run adam, element by element.
func TestAdamVec4SameBits(t *testing.T) {
	l := openLib(t)
	p := AdamParams{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-4}
	w0 := uniform(rng(51), 65, -2, 2)
	var ws [2][]float32
	for k, n := range []int{64, 65} {
		bw, bm, bv := upload(t, l, w0[:n]), zeros(t, l, n), zeros(t, l, n)
		for step := 1; step <= 3; step++ {
			bg := upload(t, l, uniform(rng(uint64(60+step)), 65, -2, 2)[:n])
			run(t, l, func(r *vk.Recorder) error { return l.AdamStep(r, bw.All(), bg.All(), bm.All(), bv.All(), n, step, p) })
		}
		ws[k] = download(t, bw, 64)
	}
	if i := bitsEqual(ws[0], ws[1]); i >= 0 {
		t.Fatalf("after 3 steps w[%d] = %v with adam4 (n = 64), %v with adam (n = 65)", i, ws[0][i], ws[1][i])
	}
}

// TestAdamTexels checks that Adam's texel reads (adam.comp's TEX: w, m and v read through texel views of the buffers
// it writes) give the same bits as its storage-buffer reads, fixed and dynamic corrections, with weight decay, over
// three steps (a step reading a stale or swapped element fails it).
func TestAdamTexels(t *testing.T) {
	l := openLib(t)
	const n, steps = 4 * 1031, 3
	if !l.texelFits(vk.Texel4, zeros(t, l, n).All()) {
		t.Skip("no vec4 texel reads on this device")
	}
	defer func() { adamTexelReads = true }()
	p := AdamParams{LR: 0.01, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, WeightDecay: 0.01}
	w0, g := uniform(rng(31), n, -2, 2), uniform(rng(32), n, -2, 2)
	bg := upload(t, l, g)
	for _, dynamic := range []bool{false, true} {
		var outs [2][3][]float32
		for k, tex := range []bool{false, true} {
			adamTexelReads = tex
			bw, bm, bv := upload(t, l, w0), zeros(t, l, n), zeros(t, l, n)
			corrs := make([]*vk.Buffer, steps)
			for s := range corrs {
				c := AdamCorrections(p, s+1)
				corrs[s] = upload(t, l, c[:])
			}
			run(t, l, func(r *vk.Recorder) error {
				for s := range steps {
					var err error
					if dynamic {
						err = l.AdamStepDynamic(r, bw.All(), bg.All(), bm.All(), bv.All(), corrs[s].All(), n, p)
					} else {
						err = l.AdamStep(r, bw.All(), bg.All(), bm.All(), bv.All(), n, s+1, p)
					}
					if err != nil {
						return err
					}
				}
				return nil
			})
			outs[k] = [3][]float32{download(t, bw, n), download(t, bm, n), download(t, bv, n)}
		}
		for i, name := range []string{"w", "m", "v"} {
			sameBits(t, fmt.Sprintf("adam (dynamic %v) %s, storage buffer against texels: ", dynamic, name),
				outs[0][i], outs[1][i])
		}
	}
}
