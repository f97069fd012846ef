package kernels

import (
	"fmt"
	"testing"

	"github.com/sqnet/sqnet/vk"
)

// DLR tolerance: one subtraction, a sum, two divisions in float32 against the float64 reference — a few ulp of
// values that the ratio can scale up (ties make the denominator 1e-12), so relative 1e-5 and a small absolute floor.
var dlrTol = tol{Abs: 1e-5, Rel: 1e-5}

// targetsFor returns a target per row, never the label (APGD-T and FAB-T aim at another class), seeded.
func targetsFor(seed uint64, labels []uint32, k int) []uint32 {
	r := rng(seed)
	t := make([]uint32, len(labels))
	for i, y := range labels {
		t[i] = (y + 1 + uint32(r.IntN(k-1))) % uint32(k)
	}
	return t
}

// TestDLRLoss compares the three losses and both backward variants with the float64 reference on every loss case
// (ties on the coarse grid included: the shader must pick the same sorted indices as the reference).
func TestDLRLoss(t *testing.T) {
	l := openLib(t)
	for _, kind := range []DLRKind{DLR, DLRTargeted, TargetMargin} {
		for ci, c := range lossCases(kind.MinClasses()) {
			t.Run(fmt.Sprintf("%s/%d_B%d_K%d", kind, ci, c.b, c.k), func(t *testing.T) {
				var tg []uint32
				var bt vk.Range
				if kind.Targeted() {
					tg = targetsFor(uint64(ci), c.labels, c.k)
					bt = uploadU32(t, l, tg).All()
				}
				dloss := uniform(rng(uint64(ci)+7), c.b, -2, 2)
				bz, by, bd := upload(t, l, c.logits), uploadU32(t, l, c.labels), upload(t, l, dloss)
				bl, bg, bgu := zeros(t, l, c.b), zeros(t, l, c.b*c.k), zeros(t, l, c.b*c.k)
				run(t, l, func(r *vk.Recorder) error {
					if err := l.DLRLoss(r, kind, bz.All(), by.All(), bt, bl.All(), c.b, c.k); err != nil {
						return err
					}
					if err := l.DLRLossBackward(r, kind, bz.All(), by.All(), bt, vk.Range{}, bg.All(), c.b, c.k,
						0.25); err != nil {
						return err
					}
					return l.DLRLossBackward(r, kind, bz.All(), by.All(), bt, bd.All(), bgu.All(), c.b, c.k, 2)
				})
				compare(t, "forward", download(t, bl, c.b), DLRLossRef(kind, c.logits, c.labels, tg, c.b, c.k), dlrTol)
				compare(t, "backward (scale)", download(t, bg, c.b*c.k),
					DLRLossBackwardRef(kind, c.logits, c.labels, tg, nil, c.b, c.k, 0.25), dlrTol)
				compare(t, "backward (upstream)", download(t, bgu, c.b*c.k),
					DLRLossBackwardRef(kind, c.logits, c.labels, tg, dloss, c.b, c.k, 2), dlrTol)
			})
		}
	}
}

// TestDLRLossGradient checks each backward kernel against central differences of the float64 forward, with
// per-example upstream weights, on logits far enough apart that a step of h never reorders them.
func TestDLRLossGradient(t *testing.T) {
	l := openLib(t)
	const b, k = 6, 10
	for _, kind := range []DLRKind{DLR, DLRTargeted, TargetMargin} {
		t.Run(kind.String(), func(t *testing.T) {
			r := rng(31 + uint64(kind))
			z := make([]float32, b*k)
			for i := range b {
				for j, p := range r.Perm(k) { // distinct values 0.5 apart plus jitter: no reordering at h = 1e-3
					z[i*k+j] = 0.5*float32(p) + 0.1*r.Float32()
				}
			}
			labels := make([]uint32, b)
			for i := range labels {
				labels[i] = uint32(r.IntN(k))
			}
			var tg []uint32
			var bt vk.Range
			if kind.Targeted() {
				tg = targetsFor(5, labels, k)
				bt = uploadU32(t, l, tg).All()
			}
			w := uniform(r, b, -1, 1)
			bz, by, bw, bg := upload(t, l, z), uploadU32(t, l, labels), upload(t, l, w), zeros(t, l, b*k)
			run(t, l, func(rec *vk.Recorder) error {
				return l.DLRLossBackward(rec, kind, bz.All(), by.All(), bt, bw.All(), bg.All(), b, k, 1)
			})
			f := func(zs []float64) float64 {
				s := 0.0
				for i := range b {
					tt := 0
					if tg != nil {
						tt = int(tg[i])
					}
					v, _ := dlrRow64(kind, zs[i*k:(i+1)*k], int(labels[i]), tt)
					s += float64(w[i]) * v
				}
				return s
			}
			gradCheck(t, kind.String(), download(t, bg, b*k), numericGrad(f, to64s(z), 1e-3), tol{Abs: 1e-5, Rel: 1e-4})
		})
	}
}

// TestDLRLossBadInput: wrong kinds, too few classes, missing or extra targets and short buffers are errors.
func TestDLRLossBadInput(t *testing.T) {
	l := openLib(t)
	rec := newRecorder(t, l)
	z, y, tg, loss := zeros(t, l, 40), zeros(t, l, 4), zeros(t, l, 4), zeros(t, l, 4)
	expectErr(t, "unknown kind", l.DLRLoss(rec, DLRKind(9), z.All(), y.All(), vk.Range{}, loss.All(), 4, 10))
	expectErr(t, "K = 3 targeted", l.DLRLoss(rec, DLRTargeted, z.All(), y.All(), tg.All(), loss.All(), 4, 3))
	expectErr(t, "K = 2 untargeted", l.DLRLoss(rec, DLR, z.All(), y.All(), vk.Range{}, loss.All(), 4, 2))
	expectErr(t, "no targets", l.DLRLoss(rec, DLRTargeted, z.All(), y.All(), vk.Range{}, loss.All(), 4, 10))
	expectErr(t, "targets to DLR", l.DLRLoss(rec, DLR, z.All(), y.All(), tg.All(), loss.All(), 4, 10))
	expectErr(t, "short logits", l.DLRLoss(rec, DLR, z.All(), y.All(), vk.Range{}, loss.All(), 5, 10))
	expectErr(t, "overlap", l.DLRLoss(rec, TargetMargin, z.All(), y.All(), y.All(), z.Range(0, 16), 4, 10))
	expectErr(t, "short dlogits", l.DLRLossBackward(rec, DLR, z.All(), y.All(), vk.Range{}, vk.Range{}, loss.All(), 4, 10, 1))
}
