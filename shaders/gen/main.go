// Command gen compiles every shader in the shaders folder to SPIR-V, validates it, and writes the .spv files that
// changed (and removes ones no source produces). Run it as `go generate ./shaders`; with -check it writes nothing
// and exits 1 when any committed .spv is stale, missing or orphaned.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sqnet/sqnet/shaders/internal/build"
)

func main() {
	dir := flag.String("dir", ".", "the shaders folder")
	check := flag.Bool("check", false, "only report stale SPIR-V; exit 1 if any")
	only := flag.String("only", "", "comma-separated output names to compile (default all); orphans are then left alone")
	flag.Parse()
	var names map[string]bool
	if *only != "" {
		names = map[string]bool{}
		for _, n := range strings.Split(*only, ",") {
			names[strings.TrimSpace(n)] = true
		}
	}
	if err := run(*dir, *check, names); err != nil {
		fmt.Fprintln(os.Stderr, "shaders:", err)
		os.Exit(1)
	}
}

func run(dir string, check bool, only map[string]bool) error {
	if err := build.Tools(); err != nil {
		return err
	}
	outs, err := build.Outputs(dir)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	var stale []string
	for _, o := range outs {
		want[o.Name+".spv"] = true
		if only != nil && !only[o.Name] {
			continue
		}
		code, err := build.Compile(o)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, o.Name+".spv")
		old, _ := os.ReadFile(path)
		if bytes.Equal(old, code) {
			continue
		}
		stale = append(stale, o.Name+".spv")
		if !check {
			if err := os.WriteFile(path, code, 0o644); err != nil {
				return err
			}
			fmt.Printf("shaders: wrote %s (%d bytes)\n", path, len(code))
		}
	}
	existing, _ := filepath.Glob(filepath.Join(dir, "*.spv"))
	if only != nil {
		existing = nil
	}
	for _, p := range existing {
		if want[filepath.Base(p)] {
			continue
		}
		stale = append(stale, filepath.Base(p)+" (no source)")
		if !check {
			if err := os.Remove(p); err != nil {
				return err
			}
			fmt.Printf("shaders: removed %s (no source produces it)\n", p)
		}
	}
	if check && len(stale) > 0 {
		return fmt.Errorf("committed SPIR-V is stale: %s; run `go generate ./shaders`", strings.Join(stale, ", "))
	}
	if check {
		fmt.Printf("shaders: %d SPIR-V files match their sources\n", len(outs))
	}
	return nil
}
