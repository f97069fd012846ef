// Package sweep runs a grid of experiments — every combination of some train and eval flags, each a cell that is
// `sqnet train` then `sqnet eval` in its own folder — on the schedulers research groups already have: the local
// machine (one worker per Vulkan device), Slurm (one array job) or Kubernetes (one Indexed Job). It never schedules
// anything itself across machines: it writes what the scheduler runs, and every backend ends in the same command,
// `sqnet sweep exec`, which runs one cell and records its state in the cell's folder. A cell's id is a hash of its
// settings, so a finished cell is never run twice (a crashed sweep reruns only what is missing) and a grid that
// grows keeps its finished cells.
package sweep

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Setting is one flag and its value, as the command line takes it (--Flag=Value).
type Setting struct {
	Flag  string `json:"flag"`
	Value string `json:"value"`
}

// Axis is one dimension of the grid: a flag and the values it takes. A flag named eval.NAME is eval's --NAME;
// any other is train's.
type Axis struct {
	Flag   string   `json:"flag"`
	Values []string `json:"values"`
}

// Grid is a grid file.
type Grid struct {
	Name  string    // names the grid in reports and job names
	Train []Setting // train flags every cell shares, in the file's order
	Eval  []Setting // eval flags every cell shares
	Axes  []Axis    // in the file's order: the first varies slowest
	// Replicate is the axis the report averages over (mean ± std per setting of the other axes); "seed" when the
	// file names none. It need not be an axis (then every cell is its own row).
	Replicate string
}

// Cell is one point of the grid.
type Cell struct {
	ID    string    `json:"id"`
	Index int       `json:"index"` // its place in the grid's order
	Axes  []Setting `json:"axes"`  // the axes' values, in the grid's axis order
	Train []Setting `json:"train"` // every train flag, sorted by name
	Eval  []Setting `json:"eval"`  // every eval flag, sorted by name
}

// Reserved are the flags sweep sets itself on every cell, which a grid file may not set.
var Reserved = map[string][]string{
	"train": {"out", "json", "resume", "progress-file", "device", "validate"},
	"eval":  {"model", "out", "progress-file", "shard", "device", "validate"},
}

// rawGrid is the file's shape; the flag maps stay YAML nodes so their order survives.
type rawGrid struct {
	Name      string    `yaml:"name"`
	Train     yaml.Node `yaml:"train"`
	Eval      yaml.Node `yaml:"eval"`
	Axes      yaml.Node `yaml:"axes"`
	Replicate string    `yaml:"replicate"`
}

// Load reads a grid file.
func Load(path string) (*Grid, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	g, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("grid %s: %w", path, err)
	}
	return g, nil
}

// Parse reads a grid from YAML:
//
//	name: alpha-seeds
//	train: {model: small, method: noisy-sq, epochs: 1}
//	eval: {suite: quick, limit: 1000}
//	axes:
//	  quant: ["2,20", "2,50", "2,200"]
//	  seed: [1, 2, 3]
//
// Unknown top-level keys, nested values and empty axes are errors.
func Parse(b []byte) (*Grid, error) {
	var raw rawGrid
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}
	g := &Grid{Name: strings.TrimSpace(raw.Name), Replicate: raw.Replicate}
	if g.Name == "" {
		return nil, fmt.Errorf("no name")
	}
	if strings.ContainsAny(g.Name, " /\\\t\n'\"$`") {
		return nil, fmt.Errorf("name %q: use letters, digits, '-', '_' or '.'", g.Name)
	}
	if g.Replicate == "" {
		g.Replicate = "seed"
	}
	var err error
	if g.Train, err = flagMap(&raw.Train, "train"); err != nil {
		return nil, err
	}
	if g.Eval, err = flagMap(&raw.Eval, "eval"); err != nil {
		return nil, err
	}
	if raw.Axes.Kind != 0 {
		if raw.Axes.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("line %d: axes: want a map of flag: [values]", raw.Axes.Line)
		}
		for i := 0; i+1 < len(raw.Axes.Content); i += 2 {
			k, v := raw.Axes.Content[i], raw.Axes.Content[i+1]
			a := Axis{Flag: k.Value}
			if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
				return nil, fmt.Errorf("line %d: axis %s: want a non-empty list of values", v.Line, k.Value)
			}
			for _, e := range v.Content {
				if e.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("line %d: axis %s: a value must be a number or a string", e.Line, k.Value)
				}
				a.Values = append(a.Values, e.Value)
			}
			g.Axes = append(g.Axes, a)
		}
	}
	seen := map[string]bool{}
	check := func(flag string) error {
		cmd, name := split(flag)
		if name == "" {
			return fmt.Errorf("empty flag name")
		}
		for _, r := range Reserved[cmd] {
			if name == r {
				return fmt.Errorf("%s --%s: sweep sets it on every cell", cmd, name)
			}
		}
		if seen[flag] {
			return fmt.Errorf("%s --%s is set twice", cmd, name)
		}
		seen[flag] = true
		return nil
	}
	for _, s := range g.Train {
		if err := check(s.Flag); err != nil {
			return nil, err
		}
	}
	for _, s := range g.Eval {
		if err := check("eval." + s.Flag); err != nil {
			return nil, err
		}
	}
	for _, a := range g.Axes {
		if err := check(a.Flag); err != nil {
			return nil, err
		}
		dup := map[string]bool{}
		for _, v := range a.Values {
			if dup[v] {
				return nil, fmt.Errorf("axis %s lists %q twice", a.Flag, v)
			}
			dup[v] = true
		}
	}
	return g, nil
}

// flagMap reads a map of flag: value (scalars only) in order.
func flagMap(n *yaml.Node, section string) ([]Setting, error) {
	if n.Kind == 0 {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: %s: want a map of flag: value", n.Line, section)
	}
	var out []Setting
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: %s.%s: want a number or a string (an axis goes under axes)", v.Line, section,
				k.Value)
		}
		out = append(out, Setting{Flag: k.Value, Value: v.Value})
	}
	return out, nil
}

// split tells which command a grid flag belongs to: eval.NAME is eval's, anything else train's.
func split(flag string) (cmd, name string) {
	if n, ok := strings.CutPrefix(flag, "eval."); ok {
		return "eval", n
	}
	return "train", flag
}

// Cells lists the grid's cells in order (the last axis varies fastest).
func (g *Grid) Cells() []Cell {
	n := 1
	for _, a := range g.Axes {
		n *= len(a.Values)
	}
	cells := make([]Cell, n)
	for i := range cells {
		c := Cell{Index: i}
		rest := i
		picks := make([]Setting, len(g.Axes))
		for k := len(g.Axes) - 1; k >= 0; k-- {
			a := g.Axes[k]
			picks[k] = Setting{Flag: a.Flag, Value: a.Values[rest%len(a.Values)]}
			rest /= len(a.Values)
		}
		c.Axes = picks
		c.Train = append(c.Train, g.Train...)
		for _, s := range g.Eval {
			c.Eval = append(c.Eval, s)
		}
		for _, p := range picks {
			cmd, name := split(p.Flag)
			if cmd == "eval" {
				c.Eval = append(c.Eval, Setting{Flag: name, Value: p.Value})
			} else {
				c.Train = append(c.Train, p)
			}
		}
		sortSettings(c.Train)
		sortSettings(c.Eval)
		c.ID = cellID(c.Train, c.Eval)
		cells[i] = c
	}
	return cells
}

func sortSettings(s []Setting) { sort.Slice(s, func(i, j int) bool { return s[i].Flag < s[j].Flag }) }

// cellID hashes what a cell runs — its train and eval flags, nothing else — so the same settings get the same id
// in any grid, and a change of any flag a new one.
func cellID(train, eval []Setting) string {
	h := sha256.New()
	for _, s := range train {
		fmt.Fprintf(h, "train --%s=%s\n", s.Flag, s.Value)
	}
	for _, s := range eval {
		fmt.Fprintf(h, "eval --%s=%s\n", s.Flag, s.Value)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Args turns settings into command-line arguments (--flag=value, which boolean flags need too).
func Args(s []Setting) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = "--" + x.Flag + "=" + x.Value
	}
	return out
}

// Label is the cell's axis values as a person reads them, e.g. "quant=2,20 seed=1".
func (c Cell) Label() string { return label(c.Axes) }

func label(s []Setting) string {
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = x.Flag + "=" + x.Value
	}
	if len(parts) == 0 {
		return "(single cell)"
	}
	return strings.Join(parts, " ")
}
