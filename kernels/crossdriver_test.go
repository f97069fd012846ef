package kernels

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sqnet/sqnet/vk"
	"github.com/sqnet/sqnet/vk/vktest"
)

// driverManifests finds the ICD manifests of lavapipe and SwiftShader (SQNET_SWIFTSHADER_ICD, else
// ../shared/swiftshader beside the repository), or returns "" for a missing one.
func driverManifests() (lavapipe, swiftshader string) {
	if m, _ := filepath.Glob("/usr/share/vulkan/icd.d/lvp_icd.*.json"); len(m) > 0 {
		lavapipe = m[0]
	}
	swiftshader = os.Getenv("SQNET_SWIFTSHADER_ICD")
	if swiftshader == "" {
		if p, err := filepath.Abs("../../shared/swiftshader/vk_swiftshader_icd.json"); err == nil {
			swiftshader = p
		}
	}
	if _, err := os.Stat(swiftshader); err != nil {
		swiftshader = ""
	}
	return lavapipe, swiftshader
}

// crossCase is one kernel run on a device, returning its outputs for comparison across drivers.
type crossCase struct {
	name string
	tl   tol
	run  func(t *testing.T, l *Lib) []float32
}

// TestCrossDriver runs the same seeded inputs through a set of kernels on lavapipe and on SwiftShader, both
// exposed by one instance (VK_ICD_FILENAMES lists both manifests), and requires the two drivers to agree within
// each op's tolerance: the promise that results do not depend on the Vulkan implementation.
func TestCrossDriver(t *testing.T) {
	lvp, ss := driverManifests()
	if lvp == "" || ss == "" {
		t.Skipf("needs both lavapipe (%q) and SwiftShader (%q); scripts/setup installs lavapipe, "+
			"SQNET_SWIFTSHADER_ICD points at SwiftShader", lvp, ss)
	}
	t.Setenv("VK_ICD_FILENAMES", lvp+string(os.PathListSeparator)+ss)
	t.Setenv("VK_DRIVER_FILES", lvp+string(os.PathListSeparator)+ss)
	opts := vktest.Options()
	in, err := vk.NewInstance(opts.Instance)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		in.Close()
		vktest.CheckMessages(t, in.Messages())
	}()
	devs, err := in.Devices()
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) < 2 {
		t.Fatalf("one instance over both manifests lists %d device(s), want 2", len(devs))
	}
	var libs []*Lib
	for _, info := range devs[:2] {
		d, err := in.OpenDevice(info, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		libs = append(libs, New(d))
	}
	t.Logf("comparing %s with %s", devs[0].Name, devs[1].Name)
	for _, c := range crossCases() {
		a, b := c.run(t, libs[0]), c.run(t, libs[1])
		if m := mismatch(a, b, c.tl); m != "" {
			t.Errorf("%s: %s vs %s: %s", c.name, devs[0].Name, devs[1].Name, m)
		}
	}
}

func crossCases() []crossCase {
	// Tolerances: twice each op's tolerance against its CPU reference (each driver may err either way).
	return []crossCase{
		{"gemm 31×257×17 (transB, bias)", tol{Abs: 2e-4, Rel: 2e-5}, func(t *testing.T, l *Lib) []float32 {
			const m, n, k = 31, 257, 17
			a, b, bias := upload(t, l, uniform(rng(1), m*k, -2, 2)), upload(t, l, uniform(rng(2), n*k, -2, 2)),
				upload(t, l, uniform(rng(3), n, -2, 2))
			c := zeros(t, l, m*n)
			run(t, l, func(r *vk.Recorder) error {
				return l.Gemm(r, a.All(), b.All(), c.All(), m, n, k, GemmOpts{TransB: true, Bias: bias.All()})
			})
			return download(t, c, m*n)
		}},
		{"conv 5×5 pad 2, its backwards", tol{Abs: 1e-3, Rel: 2e-5}, func(t *testing.T, l *Lib) []float32 {
			s := ConvShape{B: 3, Cin: 4, H: 9, W: 7, Cout: 5, KH: 5, KW: 5, PadH: 2, PadW: 2}
			x, w := upload(t, l, uniform(rng(4), s.InLen(), -2, 2)), upload(t, l, uniform(rng(5), s.WLen(), -2, 2))
			dy := upload(t, l, uniform(rng(6), s.OutLen(), -2, 2))
			y, dx, dw := zeros(t, l, s.OutLen()), zeros(t, l, s.InLen()), zeros(t, l, s.WLen())
			run(t, l, func(r *vk.Recorder) error {
				if err := l.Conv2D(r, x.All(), w.All(), y.All(), s, ConvOpts{}); err != nil {
					return err
				}
				if err := l.Conv2DBackwardData(r, dy.All(), w.All(), dx.All(), s, ConvOpts{}); err != nil {
					return err
				}
				return l.Conv2DBackwardFilter(r, x.All(), dy.All(), dw.All(), s, ConvOpts{})
			})
			return append(append(download(t, y, s.OutLen()), download(t, dx, s.InLen())...), download(t, dw, s.WLen())...)
		}},
		{"maxpool and softmax cross-entropy", tol{Abs: 4e-5, Rel: 2e-5}, func(t *testing.T, l *Lib) []float32 {
			const b, c, h, w = 2, 3, 7, 6
			x := upload(t, l, uniform(rng(7), b*c*h*w, -2, 2))
			y := zeros(t, l, b*c*3*3)
			logits := upload(t, l, uniform(rng(8), 17*10, -2, 2))
			labels := uploadU32(t, l, []uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6})
			loss, dl := zeros(t, l, 17), zeros(t, l, 170)
			run(t, l, func(r *vk.Recorder) error {
				if err := l.MaxPool2x2(r, x.All(), y.All(), b, c, h, w); err != nil {
					return err
				}
				if err := l.SoftmaxXent(r, logits.All(), labels.All(), loss.All(), 17, 10); err != nil {
					return err
				}
				return l.SoftmaxXentBackward(r, logits.All(), labels.All(), vk.Range{}, dl.All(), 17, 10, 1.0/17)
			})
			return append(append(download(t, y, b*c*9), download(t, loss, 17)...), download(t, dl, 170)...)
		}},
		{"soft quantizer forward and backward", tol{Abs: 1e-5, Rel: 2e-5}, func(t *testing.T, l *Lib) []float32 {
			s := QuantShape{N: 4, C: 3, H: 5, W: 5, Levels: 3, PerChannel: true}
			x, thr := upload(t, l, uniform(rng(9), s.Elems(), 0, 1)), upload(t, l, s.InitThresholds())
			dy := upload(t, l, uniform(rng(10), s.Elems(), -2, 2))
			y, dx, dthr := zeros(t, l, s.Elems()), zeros(t, l, s.Elems()), zeros(t, l, s.Thresholds())
			scratch := zeros(t, l, max(l.SoftQuantScratch(s), 1))
			run(t, l, func(r *vk.Recorder) error {
				if err := l.SoftQuant(r, x.All(), thr.All(), y.All(), s, 5); err != nil {
					return err
				}
				return l.SoftQuantBackward(r, x.All(), thr.All(), dy.All(), dx.All(), dthr.All(), scratch.All(), s, 5)
			})
			return append(append(download(t, y, s.Elems()), download(t, dx, s.Elems())...), download(t, dthr, s.Thresholds())...)
		}},
		{"uniform noise, PGD step (exact)", exact, func(t *testing.T, l *Lib) []float32 {
			const n = 1000
			x0 := upload(t, l, uniform(rng(11), n, 0, 1))
			x, g := zeros(t, l, n), upload(t, l, uniform(rng(12), n, -2, 2))
			run(t, l, func(r *vk.Recorder) error {
				if err := l.UniformNoise(r, x0.All(), x.All(), n, 0.3, RNG{Seed: 7, Stream: 1, Step: 2}); err != nil {
					return err
				}
				return l.PGDStep(r, x.All(), g.All(), x0.All(), n, 0.01, 0.3)
			})
			return download(t, x, n)
		}},
	}
}
