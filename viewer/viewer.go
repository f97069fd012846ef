// Package viewer is `sqnet view`: a GLFW window in which an attack runs live, a few PGD steps per frame, drawn by
// a Vulkan compute shader (kernels.ViewGrid) and presented through a swapchain — no OpenGL. Each example is a
// column of three cells: the clean image, the adversarial one and the perturbation amplified to full range, with
// the predicted labels and a green (right) or red (wrong) mark.
//
// GLFW must be called from the process's main thread: the caller runs Run there (cmd/sqnet locks it in init).
package viewer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log"
	"math"
	"os"
	"strings"

	"github.com/go-gl/glfw/v3.3/glfw"

	"github.com/sqnet/sqnet/attack"
	"github.com/sqnet/sqnet/internal/atomicfile"
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
	"github.com/sqnet/sqnet/vk"
)

// Options configure a viewing session.
type Options struct {
	Checkpoint *model.Checkpoint
	// Images (NCHW floats in [0, 1]) and Labels are the examples to attack, shown N at a time from Offset.
	Images []float32
	Labels []uint8
	Offset int
	N      int // examples per batch (default 8)

	Eps    float32 // ℓ∞ radius (0 means the default 0.3: an attack of radius 0 shows nothing; ← reaches it live)
	Attack string  // "pgd" (default), "bpda" (hard forward, identity backward) or "fgsm"
	Steps  int     // PGD steps before the attack stops (default 40); its step size is η = 2.5ε/Steps
	// PerFrame is the number of gradient steps per frame (default 1).
	PerFrame int
	// Width and Height are the window's initial size; 0 fits all N examples at scale 3 in one row.
	Width, Height int
	// Frames stops after that many frames (0: run until the window is closed or q/Esc is pressed).
	Frames int
	// Screenshot is a PNG written after the last frame ("" for none); the s key writes screenshots too.
	Screenshot string
	// VK selects the device and the validation layer; Present and the surface extensions are added.
	VK vk.Options
	// Log receives one line per event (key presses, screenshots, the final state); nil for silence.
	Log io.Writer

	// Test hooks: frame resizeAt asks the window system for size resizeTo, frame closeAt closes the window as its
	// close button would, and script presses keys at the frames it names.
	resizeAt, closeAt int
	resizeTo          [2]int
	script            map[int][]glfw.Key
}

// ErrNoDisplay reports that no window can be opened (no X server or Wayland compositor, or no Vulkan surface
// support in GLFW).
var ErrNoDisplay = errors.New("no display to open a window on: set DISPLAY, or run headless under Xvfb, e.g. xvfb-run -a sqnet view ...")

// Stats is what a session did.
type Stats struct {
	Frames, Steps int
	Width, Height int // the last picture's size
	Robust        int // examples still classified correctly on their adversarial image, last batch
	Shown         int // examples in the last batch
	Offset        int // the last batch's first example
	Eps           float32
	BPDA          bool
	Device        string
}

// epsStep is how much ← and → change ε.
const epsStep = 0.05

// Run opens the window and runs until it is closed, q/Esc is pressed, ctx is cancelled or opts.Frames frames
// have been shown.
func Run(ctx context.Context, opts Options) (st Stats, err error) {
	if err := opts.defaults(); err != nil {
		return st, err
	}
	if err := initGLFW(); err != nil {
		return st, err
	}
	defer glfw.Terminate()
	if !glfw.VulkanSupported() {
		return st, fmt.Errorf("%w (GLFW found no Vulkan loader)", ErrNoDisplay)
	}
	a := opts.Checkpoint.Arch
	if opts.Width == 0 || opts.Height == 0 {
		opts.Width, opts.Height = kernels.GridSize(opts.N, a.H, a.W, opts.N, 3)
	}
	glfw.WindowHint(glfw.ClientAPI, glfw.NoAPI) // Vulkan draws; no OpenGL context
	glfw.WindowHint(glfw.Resizable, glfw.True)
	win, err := glfw.CreateWindow(opts.Width, opts.Height, "sqnet view", nil, nil)
	if err != nil {
		return st, fmt.Errorf("%w (%v)", ErrNoDisplay, oneLine(err))
	}
	defer win.Destroy()
	exts := win.GetRequiredInstanceExtensions()
	if len(exts) == 0 {
		return st, fmt.Errorf("%w (GLFW knows no Vulkan surface extension for this window system)", ErrNoDisplay)
	}
	vo := opts.VK
	vo.Instance.Extensions = append(vo.Instance.Extensions, exts...)
	vo.Present = true
	in, err := vk.NewInstance(vo.Instance)
	if err != nil {
		return st, err
	}
	defer func() {
		in.Close()
		if msgs := in.Messages(); len(msgs) > 0 && err == nil {
			err = fmt.Errorf("view: %d validation message(s), the first: %s", len(msgs), msgs[0])
		}
	}()
	devs, err := in.Devices()
	if err != nil {
		return st, err
	}
	idx, err := vk.Choose(devs, vo.Device)
	if err != nil {
		return st, err
	}
	d, err := in.OpenDevice(devs[idx], vo)
	if err != nil {
		return st, err
	}
	defer d.Close()
	// The surface comes last: from here on the presenter owns it, so no error path leaves it behind.
	surfacePtr, err := win.CreateWindowSurface((*byte)(in.Handle()), nil)
	if err != nil {
		return st, fmt.Errorf("%w: create a surface for the window: %v", vk.ErrNoPresent, oneLine(err))
	}
	fw, fh := win.GetFramebufferSize()
	pres, err := d.NewPresenter(vk.SurfaceFromPointer(surfacePtr), fw, fh)
	if err != nil {
		return st, err
	}
	defer pres.Close()
	s := &session{opts: opts, lib: kernels.New(d), win: win, pres: pres,
		available: min(len(opts.Images)/(a.C*a.H*a.W), len(opts.Labels))}
	defer s.close()
	st.Device = d.Name()
	err = s.loop(ctx, &st)
	return st, err
}

// initGLFW initialises GLFW or says why there is no display. go-gl's Init does not return a platform error (a
// display that cannot be opened): it logs it and returns nil, and every later call panics. So the log is captured
// during Init and read.
func initGLFW() error {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return fmt.Errorf("%w (DISPLAY is not set)", ErrNoDisplay)
	}
	var logged bytes.Buffer
	out, flags := log.Writer(), log.Flags()
	log.SetOutput(&logged)
	log.SetFlags(0)
	err := glfw.Init()
	log.SetOutput(out)
	log.SetFlags(flags)
	if err == nil && logged.Len() > 0 {
		err = errors.New(strings.TrimSpace(logged.String()))
	}
	if err != nil {
		return fmt.Errorf("%w (%v)", ErrNoDisplay, oneLine(err))
	}
	return nil
}

func (o *Options) defaults() error {
	if o.Checkpoint == nil {
		return fmt.Errorf("view: no model")
	}
	a := o.Checkpoint.Arch
	if a.C != 1 {
		return fmt.Errorf("view: %s has %d channels; the viewer draws one-channel images (MNIST)", a.Name, a.C)
	}
	if o.N == 0 {
		o.N = 8
	}
	if o.Eps == 0 {
		o.Eps = 0.3
	}
	if o.Steps == 0 {
		o.Steps = 40
	}
	if o.PerFrame == 0 {
		o.PerFrame = 1
	}
	if o.Attack == "" {
		o.Attack = "pgd"
	}
	sz := a.C * a.H * a.W
	total := min(len(o.Images)/sz, len(o.Labels))
	switch {
	case o.N < 1 || o.N > 64:
		return fmt.Errorf("view: --n %d: want 1 to 64 examples", o.N)
	case o.Eps < 0 || o.Eps > 1 || math.IsNaN(float64(o.Eps)):
		return fmt.Errorf("view: --eps %v: want 0 to 1", o.Eps)
	case o.Steps < 1 || o.PerFrame < 1:
		return fmt.Errorf("view: --steps %d and --per-frame %d must be at least 1", o.Steps, o.PerFrame)
	case o.Attack != "pgd" && o.Attack != "bpda" && o.Attack != "fgsm":
		return fmt.Errorf("view: --attack %q: want pgd, bpda or fgsm", o.Attack)
	case o.Attack == "bpda" && o.Checkpoint.Quant == nil:
		return fmt.Errorf("view: --attack bpda needs a model with a quantizer; %s has none", a.Name)
	case o.Offset < 0 || o.Offset+o.N > total:
		return fmt.Errorf("view: examples %d to %d requested, the data holds %d", o.Offset, o.Offset+o.N-1, total)
	case o.Frames < 0:
		return fmt.Errorf("view: --frames %d: want ≥ 0", o.Frames)
	case (o.Width < 0 || o.Height < 0) || (o.Width == 0) != (o.Height == 0):
		return fmt.Errorf("view: window size %d×%d", o.Width, o.Height)
	}
	return nil
}

// session is the state of the running viewer.
type session struct {
	opts    Options
	lib     *kernels.Lib
	win     *glfw.Window
	pres    *vk.Presenter
	stepper *attack.Stepper
	rec     *vk.Recorder

	eps       float32
	bpda      bool
	offset    int
	available int        // examples in the data
	keys      []glfw.Key // pressed since the last frame

	clean, adv        []float32 // the batch on the host
	predClean, predAd []uint32
	bClean, bAdv      *vk.Buffer
	bInfo, bOut       *vk.Buffer
	layout            kernels.GridLayout
	shots             int
}

func (s *session) close() {
	if s.stepper != nil {
		s.stepper.Close()
	}
	if s.rec != nil {
		s.rec.Close()
	}
	for _, b := range []*vk.Buffer{s.bClean, s.bAdv, s.bInfo, s.bOut} {
		if b != nil {
			b.Free()
		}
	}
}

// config is the attack the stepper runs with the current ε and BPDA setting.
func (s *session) config() attack.Config {
	var c attack.Config
	if s.opts.Attack == "fgsm" {
		c = attack.FGSM(s.eps)
	} else {
		c = attack.PGDk(s.eps, s.opts.Steps, 1)
		c.Steps = s.opts.PerFrame
	}
	// Predictions are the deployed classifier's, whatever the gradient path (the one rule of attack/deploy.go).
	c.RandomStart, c.Batch, c.Deploy = false, s.opts.N, []quant.Mode{s.opts.Checkpoint.Deploy}
	if s.bpda && s.opts.Checkpoint.Quant != nil {
		c.Name += "+bpda"
		c.Through = quant.BPDAIdentity
	}
	return c
}

// total is the number of gradient steps after which the attack stops.
func (s *session) total() int {
	if s.opts.Attack == "fgsm" {
		return 1
	}
	return s.opts.Steps
}

// restart (re)builds the attack and loads the batch at s.offset.
func (s *session) restart() error {
	if s.stepper != nil {
		s.stepper.Close()
		s.stepper = nil
	}
	st, err := attack.NewStepper(s.lib, s.opts.Checkpoint, s.config())
	if err != nil {
		return err
	}
	s.stepper = st
	a := s.opts.Checkpoint.Arch
	sz := a.C * a.H * a.W
	n := s.opts.N
	s.clean = append(s.clean[:0], s.opts.Images[s.offset*sz:(s.offset+n)*sz]...)
	if err := st.Reset(s.clean, s.opts.Labels[s.offset:s.offset+n], n); err != nil {
		return err
	}
	s.adv = make([]float32, n*sz)
	s.predClean, s.predAd = make([]uint32, n), make([]uint32, n)
	if err := vk.Upload(s.bClean, s.clean); err != nil {
		return err
	}
	return s.step()
}

// step advances the attack (the first call after a restart only evaluates: it takes the first steps too, so the
// predictions shown are never stale) and uploads what the shader draws.
func (s *session) step() error {
	if s.stepper.Steps() >= s.total() {
		return nil
	}
	if err := s.stepper.Step(); err != nil {
		return err
	}
	if err := s.stepper.Read(s.adv, s.predClean, s.predAd); err != nil {
		return err
	}
	info := make([]uint32, 3*s.opts.N)
	for e := range s.opts.N {
		info[3*e], info[3*e+1], info[3*e+2] = uint32(s.opts.Labels[s.offset+e]), s.predClean[e], s.predAd[e]
	}
	if err := vk.Upload(s.bAdv, s.adv); err != nil {
		return err
	}
	return vk.Upload(s.bInfo, info)
}

func (s *session) loop(ctx context.Context, st *Stats) error {
	d := s.lib.Device()
	a := s.opts.Checkpoint.Arch
	n := s.opts.N * a.C * a.H * a.W
	var err error
	if s.bClean, err = d.Alloc(uint64(4 * n)); err != nil {
		return err
	}
	if s.bAdv, err = d.Alloc(uint64(4 * n)); err != nil {
		return err
	}
	if s.bInfo, err = d.Alloc(uint64(4 * 3 * s.opts.N)); err != nil {
		return err
	}
	if s.rec, err = d.NewRecorder(); err != nil {
		return err
	}
	s.eps, s.bpda, s.offset = s.opts.Eps, s.opts.Attack == "bpda", s.opts.Offset
	if err := s.restart(); err != nil {
		return err
	}
	s.win.SetKeyCallback(func(_ *glfw.Window, key glfw.Key, _ int, action glfw.Action, _ glfw.ModifierKey) {
		if action == glfw.Press || action == glfw.Repeat {
			s.keys = append(s.keys, key)
		}
	})
	for frame := 0; s.opts.Frames == 0 || frame < s.opts.Frames; frame++ {
		if ctx.Err() != nil || s.win.ShouldClose() {
			break
		}
		glfw.PollEvents()
		if frame == s.opts.resizeAt && s.opts.resizeTo[0] > 0 {
			s.win.SetSize(s.opts.resizeTo[0], s.opts.resizeTo[1])
		}
		if frame > 0 && frame == s.opts.closeAt {
			s.win.SetShouldClose(true)
			continue
		}
		s.keys = append(s.keys, s.opts.script[frame]...)
		quit, err := s.handleKeys()
		if err != nil {
			return err
		}
		if quit {
			break
		}
		if err := s.step(); err != nil {
			return err
		}
		shown, err := s.draw()
		if err != nil {
			return err
		}
		if !shown {
			glfw.WaitEventsTimeout(0.05) // minimised: nothing to draw until the window comes back
		}
		st.Frames++
		s.win.SetTitle(s.title())
	}
	st.Steps = s.stepper.Steps()
	st.Width, st.Height = s.layout.Width, s.layout.Height
	st.Shown, st.Offset, st.Eps, st.BPDA, st.Robust = s.opts.N, s.offset, s.eps, s.bpda, s.stillRight()
	if s.opts.Screenshot != "" {
		if err := s.screenshot(s.opts.Screenshot); err != nil {
			return err
		}
	}
	return nil
}

// handleKeys applies the keys pressed since the last frame and reports whether to quit.
func (s *session) handleKeys() (bool, error) {
	keys := s.keys
	s.keys = nil
	for _, k := range keys {
		restart := false
		switch k {
		case glfw.KeyQ, glfw.KeyEscape:
			return true, nil
		case glfw.KeySpace:
			s.offset += s.opts.N
			if s.offset+s.opts.N > s.available {
				s.offset = 0
			}
			restart = true
		case glfw.KeyLeft:
			s.eps, restart = max(0, s.eps-epsStep), true
		case glfw.KeyRight:
			s.eps, restart = min(1, s.eps+epsStep), true
		case glfw.KeyB:
			if s.opts.Checkpoint.Quant != nil {
				s.bpda, restart = !s.bpda, true
			}
		case glfw.KeyS:
			s.shots++
			name := fmt.Sprintf("sqnet-view-%03d.png", s.shots)
			if err := s.screenshot(name); err != nil {
				return false, err
			}
		}
		if restart {
			s.logf("%s", s.title())
			if err := s.restart(); err != nil {
				return false, err
			}
		}
	}
	return false, nil
}

// draw renders the picture at the swapchain's size and presents it; false when the window is minimised.
func (s *session) draw() (bool, error) {
	fw, fh := s.win.GetFramebufferSize()
	if w, h := s.pres.Size(); w != fw || h != fh {
		if err := s.pres.Resize(fw, fh); err != nil {
			return false, err
		}
	}
	w, h := s.pres.Size()
	if w == 0 || h == 0 {
		return false, nil
	}
	a := s.opts.Checkpoint.Arch
	if s.bOut == nil || s.layout.Width != w || s.layout.Height != h {
		if s.bOut != nil {
			s.bOut.Free()
			s.bOut = nil
		}
		var err error
		if s.bOut, err = s.lib.Device().Alloc(uint64(4 * w * h)); err != nil {
			return false, err
		}
		s.layout = kernels.FitGrid(s.opts.N, a.H, a.W, w, h)
	}
	if err := s.rec.Reset(); err != nil {
		return false, err
	}
	if err := s.lib.ViewGrid(s.rec, s.bClean.All(), s.bAdv.All(), s.bInfo.All(), s.bOut.All(), s.layout,
		s.pres.Order() == vk.BGRA, s.eps); err != nil {
		return false, err
	}
	if err := s.rec.Run(); err != nil {
		return false, err
	}
	err := s.pres.Present(s.bOut.All())
	if errors.Is(err, vk.ErrOutOfDate) {
		fw, fh := s.win.GetFramebufferSize()
		return true, s.pres.Resize(fw, fh) // the next frame draws at the new size
	}
	return err == nil, err
}

func (s *session) title() string {
	mode := ""
	if s.bpda {
		mode = " +BPDA"
	}
	return fmt.Sprintf("sqnet view — %s%s ε=%.2f step %d/%d — %d/%d still right — space next, ←→ ε, b BPDA, s save, q quit",
		s.opts.Attack, mode, s.eps, s.stepper.Steps(), s.total(), s.stillRight(), s.opts.N)
}

// stillRight counts the examples of the batch whose adversarial image is still classified correctly.
func (s *session) stillRight() int {
	n := 0
	for e := range s.opts.N {
		if s.predAd[e] == uint32(s.opts.Labels[s.offset+e]) {
			n++
		}
	}
	return n
}

// screenshot writes the current picture as a PNG, atomically.
func (s *session) screenshot(path string) error {
	if s.bOut == nil {
		return fmt.Errorf("screenshot: nothing drawn yet (the window is minimised)")
	}
	w, h := s.layout.Width, s.layout.Height
	px := make([]uint32, w*h)
	if err := vk.Download(s.bOut, px); err != nil {
		return err
	}
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	bgra := s.pres.Order() == vk.BGRA
	for i, p := range px {
		r, g, b := uint8(p), uint8(p>>8), uint8(p>>16)
		if bgra {
			r, b = b, r
		}
		img.Set(i%w, i/w, color.NRGBA{r, g, b, 255})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	if err := atomicfile.Write(path, buf.Bytes(), 0o644); err != nil {
		return err
	}
	s.logf("screenshot %s (%d×%d)", path, w, h)
	return nil
}

func (s *session) logf(format string, args ...any) {
	if s.opts.Log != nil {
		fmt.Fprintf(s.opts.Log, format+"\n", args...)
	}
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
