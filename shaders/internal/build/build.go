// Package build compiles sqnet's GLSL compute shaders to SPIR-V with glslc and validates them with spirv-val. It is
// shared by the generator (go generate ./shaders) and the freshness test.
package build

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// TargetEnv is the Vulkan version the SPIR-V targets: sqnet runs on any Vulkan 1.1 device.
const TargetEnv = "vulkan1.1"

// InstallHint tells a user how to get the shader tools.
const InstallHint = "install them with `apt-get install glslc spirv-tools` (or run scripts/setup)"

// Output is one SPIR-V file to produce: a source compiled with some defines.
type Output struct {
	Name    string   // base name of the .spv
	Source  string   // the .comp file
	Defines []string // -D arguments
}

// Outputs lists what the .comp files in dir compile to, sorted by name. It fails on two outputs with one name.
func Outputs(dir string) ([]Output, error) {
	srcs, err := filepath.Glob(filepath.Join(dir, "*.comp"))
	if err != nil {
		return nil, err
	}
	var outs []Output
	seen := map[string]string{}
	for _, src := range srcs {
		vs, err := variants(src)
		if err != nil {
			return nil, err
		}
		for _, o := range vs {
			if prev, dup := seen[o.Name]; dup {
				return nil, fmt.Errorf("%s and %s both produce %s.spv", prev, src, o.Name)
			}
			seen[o.Name] = src
			outs = append(outs, o)
		}
	}
	sort.Slice(outs, func(i, j int) bool { return outs[i].Name < outs[j].Name })
	return outs, nil
}

func variants(src string) ([]Output, error) {
	f, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var outs []Output
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "// sqnet:variant ")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("%s: sqnet:variant line without a name", src)
		}
		for _, d := range fields[1:] {
			if !strings.HasPrefix(d, "-D") {
				return nil, fmt.Errorf("%s: variant %s: %q is not a -D define", src, fields[0], d)
			}
		}
		outs = append(outs, Output{Name: fields[0], Source: src, Defines: fields[1:]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(outs) == 0 {
		outs = []Output{{Name: strings.TrimSuffix(filepath.Base(src), ".comp"), Source: src}}
	}
	return outs, nil
}

// Tools checks that glslc and spirv-val are on PATH.
func Tools() error {
	for _, t := range []string{"glslc", "spirv-val"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("%s not found: %s", t, InstallHint)
		}
	}
	return nil
}

// Compile compiles one output with glslc and validates the result with spirv-val, returning the SPIR-V bytes.
func Compile(o Output) ([]byte, error) {
	tmp, err := os.CreateTemp("", "sqnet-*.spv")
	if err != nil {
		return nil, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	args := []string{"--target-env=" + TargetEnv, "-O", "-fshader-stage=compute", "-I", filepath.Dir(o.Source)}
	args = append(args, o.Defines...)
	args = append(args, "-o", tmp.Name(), o.Source)
	if out, err := exec.Command("glslc", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("glslc %s (%s): %v\n%s", o.Source, o.Name, err, bytes.TrimSpace(out))
	}
	if out, err := exec.Command("spirv-val", "--target-env", TargetEnv, tmp.Name()).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("spirv-val %s (%s): %v\n%s", o.Source, o.Name, err, bytes.TrimSpace(out))
	}
	return os.ReadFile(tmp.Name())
}
