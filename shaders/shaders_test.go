package shaders

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/sqnet/sqnet/shaders/internal/build"
)

// TestSPIRVFresh recompiles every shader and fails when a committed .spv differs from what its source compiles to,
// or when a .spv has no source. Without glslc it fails with the install hint rather than skipping: a stale shader
// must never pass CI unnoticed.
func TestSPIRVFresh(t *testing.T) {
	if err := build.Tools(); err != nil {
		t.Fatal(err)
	}
	outs, err := build.Outputs(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) == 0 {
		t.Fatal("no shader sources found")
	}
	want := map[string]bool{}
	for _, o := range outs {
		want[o.Name] = true
		code, err := build.Compile(o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(o.Name + ".spv")
		if err != nil {
			t.Errorf("%s.spv is missing: run `go generate ./shaders`", o.Name)
			continue
		}
		if !bytes.Equal(got, code) {
			t.Errorf("%s.spv is stale (%d bytes committed, %d compiled from %s): run `go generate ./shaders`",
				o.Name, len(got), len(code), o.Source)
		}
	}
	spvs, _ := filepath.Glob("*.spv")
	for _, p := range spvs {
		if n := p[:len(p)-len(".spv")]; !want[n] {
			t.Errorf("%s has no source: run `go generate ./shaders` to remove it", p)
		}
	}
}

// TestEmbedded checks every embedded module is SPIR-V (magic number) and that lookups of unknown names fail.
func TestEmbedded(t *testing.T) {
	names := Names()
	if len(names) == 0 {
		t.Fatal("no SPIR-V embedded")
	}
	for _, n := range names {
		b, err := SPIRV(n)
		if err != nil {
			t.Fatal(err)
		}
		if m := binary.LittleEndian.Uint32(b); m != 0x07230203 {
			t.Errorf("%s: magic %#x, want 0x07230203", n, m)
		}
	}
	if _, err := SPIRV("no-such-shader"); err == nil {
		t.Error("SPIRV of an unknown name returned no error")
	}
}
