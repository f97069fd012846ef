// Package xvfb starts a private headless X server (Xvfb) for tests that open windows (sqnet view).
package xvfb

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Server is a running Xvfb.
type Server struct {
	Display string // e.g. ":99"
	cmd     *exec.Cmd
}

// Start runs Xvfb on a free display (it picks one itself and reports it through -displayfd) with a 1280×1024
// 24-bit screen that outlives its clients, and stops it when the test ends. A machine without Xvfb fails the test: scripts/setup installs
// it (package xvfb), and a window test that silently skipped would prove nothing in CI.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("Xvfb")
	if err != nil {
		t.Fatalf("Xvfb is not installed (apt-get install xvfb; scripts/setup does): %v", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// -noreset: by default the server resets when its last client disconnects, and a client connecting during
	// the reset fails ("failed to open display") — a second window in the same test would be flaky.
	cmd := exec.Command(bin, "-displayfd", "3", "-screen", "0", "1280x1024x24", "-nolisten", "tcp", "-noreset")
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Xvfb: %v", err)
	}
	w.Close()
	s := &Server{cmd: cmd}
	t.Cleanup(s.Stop)
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(r).ReadString('\n')
		line <- l
		r.Close()
	}()
	select {
	case l := <-line:
		if n := strings.TrimSpace(l); n != "" {
			s.Display = ":" + n
			return s
		}
		t.Fatal("Xvfb exited without reporting a display")
	case <-time.After(20 * time.Second):
		t.Fatal("Xvfb did not report a display within 20 s")
	}
	return nil
}

// Stop kills the server (also called at the end of the test); stopping twice is harmless.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// Env is the environment entry that points X clients at this server.
func (s *Server) Env() string { return fmt.Sprintf("DISPLAY=%s", s.Display) }
