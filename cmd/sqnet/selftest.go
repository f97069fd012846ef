package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/spf13/cobra"

	"github.com/sqnet/sqnet/vk"
)

func newSelftestCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "selftest",
		Short: "Dispatch real shaders on the chosen device and check their results exactly",
		Long: "selftest opens the chosen device, runs a few shaders (an index fill over an odd-sized grid, an upload →\n" +
			"axpy → download round trip, a chain of 1000 dependent dispatches in one command buffer) and checks every\n" +
			"result exactly. With --validate (or SQNET_VALIDATION=1) any validation-layer message fails it too.",
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return selftest(c.OutOrStdout(), g.vkOptions())
		},
	}
}

// selftest runs the checks and returns an error naming the first that failed.
func selftest(w io.Writer, opts vk.Options) (err error) {
	d, err := vk.Open(opts)
	if err != nil {
		return err
	}
	inst := d.Instance()
	defer func() {
		if cerr := d.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if msgs := inst.Messages(); len(msgs) > 0 && err == nil {
			for _, m := range msgs {
				fmt.Fprintln(w, "  validation:", m)
			}
			err = fmt.Errorf("self-test: %d validation message(s)", len(msgs))
		}
	}()
	validation := "off"
	if inst.Validation() {
		validation = "on"
	}
	fmt.Fprintf(w, "self-test on %s (validation %s)\n", d.Name(), validation)
	local := min(256, d.Info().Limits.MaxWorkgroupInvocations)
	for _, check := range []struct {
		name string
		run  func(*vk.Device, uint32) (string, error)
	}{
		{"iota", checkIota},
		{"round trip", checkRoundTrip},
		{"dependent chain", checkChain},
	} {
		start := time.Now()
		detail, err := check.run(d, local)
		if err != nil {
			fmt.Fprintf(w, "  FAIL %-16s %v\n", check.name, err)
			return fmt.Errorf("self-test %s: %w", check.name, err)
		}
		fmt.Fprintf(w, "  PASS %-16s %s (%.1f ms)\n", check.name, detail, time.Since(start).Seconds()*1e3)
	}
	fmt.Fprintln(w, "self-test passed")
	return nil
}

// run records one dispatch-building function into a recorder, submits it and waits.
func run(d *vk.Device, record func(*vk.Recorder) error) (*vk.Recorder, error) {
	r, err := d.NewRecorder()
	if err != nil {
		return nil, err
	}
	if err := record(r); err != nil {
		r.Close()
		return nil, err
	}
	if err := r.Run(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func checkIota(d *vk.Device, local uint32) (string, error) {
	const nx, ny = 1001, 999 // neither divides any workgroup size
	p, err := d.Pipeline(vk.PipelineSpec{Shader: "iota", Bindings: []vk.Access{vk.Write}, PushSize: 16,
		Local: [3]uint32{local, 1, 1}})
	if err != nil {
		return "", err
	}
	buf, err := d.Alloc(4 * nx * ny)
	if err != nil {
		return "", err
	}
	defer buf.Free()
	r, err := run(d, func(r *vk.Recorder) error {
		return r.Dispatch(p, p.Groups(nx, ny, 1), struct{ Nx, Ny, Nz, Base uint32 }{nx, ny, 1, 7}, buf.All())
	})
	if err != nil {
		return "", err
	}
	r.Close()
	got := make([]uint32, nx*ny)
	if err := vk.Download(buf, got); err != nil {
		return "", err
	}
	for i, v := range got {
		if v != 7+uint32(i) {
			return "", fmt.Errorf("element %d = %d, want %d", i, v, 7+i)
		}
	}
	return fmt.Sprintf("%d×%d grid, workgroup %d, every element exact", nx, ny, local), nil
}

func checkRoundTrip(d *vk.Device, local uint32) (string, error) {
	const n = 1 << 20
	p, err := d.Pipeline(vk.PipelineSpec{Shader: "axpy", Bindings: []vk.Access{vk.Read, vk.ReadWrite}, PushSize: 8,
		Local: [3]uint32{local, 1, 1}})
	if err != nil {
		return "", err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	x, y := make([]float32, n), make([]float32, n)
	for i := range x {
		x[i], y[i] = rng.Float32()*4-2, rng.Float32()*4-2
	}
	bx, err := d.Alloc(4 * n)
	if err != nil {
		return "", err
	}
	defer bx.Free()
	by, err := d.Alloc(4 * n)
	if err != nil {
		return "", err
	}
	defer by.Free()
	if err := vk.Upload(bx, x); err != nil {
		return "", err
	}
	if err := vk.Upload(by, y); err != nil {
		return "", err
	}
	r, err := run(d, func(r *vk.Recorder) error {
		return r.Dispatch(p, p.Groups(n, 1, 1), struct {
			N uint32
			A float32
		}{n, 2}, bx.All(), by.All())
	})
	if err != nil {
		return "", err
	}
	r.Close()
	got := make([]float32, n)
	if err := vk.Download(by, got); err != nil {
		return "", err
	}
	for i := range got {
		if want := 2*x[i] + y[i]; got[i] != want {
			return "", fmt.Errorf("y[%d] = %v, want %v", i, got[i], want)
		}
	}
	return fmt.Sprintf("%d floats, y = 2x + y bit-exact", n), nil
}

func checkChain(d *vk.Device, local uint32) (string, error) {
	const n, times = 4099, 1000
	p, err := d.Pipeline(vk.PipelineSpec{Shader: "addscalar", Bindings: []vk.Access{vk.ReadWrite}, PushSize: 8,
		Local: [3]uint32{local, 1, 1}})
	if err != nil {
		return "", err
	}
	buf, err := d.Alloc(4 * n)
	if err != nil {
		return "", err
	}
	defer buf.Free()
	if err := vk.Upload(buf, make([]float32, n)); err != nil {
		return "", err
	}
	r, err := run(d, func(r *vk.Recorder) error {
		if err := r.Timestamp("start"); err != nil {
			return err
		}
		for range times {
			if err := r.Dispatch(p, p.Groups(n, 1, 1), struct {
				N uint32
				V float32
			}{n, 1}, buf.All()); err != nil {
				return err
			}
		}
		return r.Timestamp("end")
	})
	if err != nil {
		return "", err
	}
	defer r.Close()
	got := make([]float32, n)
	if err := vk.Download(buf, got); err != nil {
		return "", err
	}
	for i, v := range got {
		if v != times {
			return "", fmt.Errorf("element %d = %v after %d increments", i, v, times)
		}
	}
	ts, err := r.Timings()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d dispatches, %d barriers, one submit, %.1f µs/dispatch on the device", r.Dispatches(),
		r.Barriers(), ts[1].Ns/1e3/times), nil
}
