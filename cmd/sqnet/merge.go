package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sqnet/sqnet/attack"
	"github.com/sqnet/sqnet/data"
)

// shardSpec is an evaluation's slice of the test set: shard Index of Count, its examples First … First+N−1 of the
// Total evaluated by the whole run.
type shardSpec struct {
	Index int `json:"index"`
	Count int `json:"count"`
	First int `json:"first"`
	Total int `json:"total"`
}

// parseShard reads --shard i/N (empty: no sharding).
func parseShard(s string) (*shardSpec, error) {
	if s == "" {
		return nil, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return nil, fmt.Errorf("--shard %q: want i/N with 0 ≤ i < N, e.g. 0/4", s)
	}
	return &shardSpec{Index: i, Count: n}, nil
}

// slice cuts the shard's contiguous part out of the evaluated set (examples ⌊i·n/N⌋ up to ⌊(i+1)·n/N⌋, empty when
// N > n leaves this shard nothing) and fills in First and Total.
func (s *shardSpec) slice(set *data.Set) *data.Set {
	n := set.N
	lo, hi := s.Index*n/s.Count, (s.Index+1)*n/s.Count
	s.First, s.Total = lo, n
	sz := set.ImageSize()
	part := *set
	part.N, part.Images, part.Labels = hi-lo, set.Images[lo*sz:hi*sz], set.Labels[lo:hi]
	return &part
}

func newMergeCmd() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "merge DIR...",
		Short: "Combine the partial eval.json of every shard of an evaluation (eval --shard i/N) into the whole run's",
		Long: "merge reads DIR/eval.json of each shard of one evaluation (sqnet eval --shard i/N, every i from 0 to\n" +
			"N−1 exactly once, the same checkpoint, suite, ε, seed, classifiers and build) and writes the whole run's\n" +
			"eval.json, eval.md and accuracy-vs-eps.png into --out, and the first non-empty shard's examples.png. Every example is\n" +
			"attacked with its own randomness, so the merged eval.json equals the unsharded run's except for seconds\n" +
			"and submits.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, dirs []string) error {
			if out == "" {
				return usageError{fmt.Errorf("--out: a folder for the merged report is required")}
			}
			docs := make([]*evalDoc, len(dirs))
			for i, d := range dirs {
				doc, err := readEvalDoc(d)
				if err != nil {
					return usageError{err}
				}
				docs[i] = doc
			}
			merged, firstDir, err := mergeDocs(docs, dirs)
			if err != nil {
				return usageError{err}
			}
			if err := writeEvalDoc(out, merged); err != nil {
				return err
			}
			if b, err := os.ReadFile(filepath.Join(firstDir, "examples.png")); err == nil {
				if err := writeFileAtomic(filepath.Join(out, "examples.png"), b); err != nil {
					return err
				}
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			stdout := c.OutOrStdout()
			fmt.Fprintf(stdout, "merged %d shards of %s (%d images, suite %s) into %s\n", len(docs),
				merged.Checkpoint, merged.N, merged.Suite, out)
			for _, r := range merged.Reports {
				fmt.Fprintf(stdout, "  worst case [%s] %6.2f%%  (every attack, per example)\n",
					attack.DeployName(merged.quantized(), r.Deploy), 100*r.WorstAccuracy)
			}
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "folder for the merged eval.json, eval.md, examples.png and accuracy-vs-eps.png")
	return c
}

// readEvalDoc reads DIR/eval.json (or the file itself when given one).
func readEvalDoc(path string) (*evalDoc, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "eval.json")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc evalDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: not an eval.json: %v", path, err)
	}
	if doc.Shard == nil {
		return nil, fmt.Errorf("%s: not a shard (written by eval without --shard)", path)
	}
	if len(doc.Reports) == 0 && doc.N > 0 {
		return nil, fmt.Errorf("%s: no reports for %d images", path, doc.N)
	}
	return &doc, nil
}

// mergeDocs checks that docs are every shard of one evaluation and combines them; it also returns the folder of
// the first shard with images (whose examples.png the merged report keeps).
func mergeDocs(docs []*evalDoc, dirs []string) (*evalDoc, string, error) {
	order := make([]int, len(docs))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return docs[order[a]].Shard.Index < docs[order[b]].Shard.Index })
	// The first shard with images is the one the others are checked against (an empty shard ran nothing).
	ref := order[0]
	for _, i := range order {
		if docs[i].N > 0 {
			ref = i
			break
		}
	}
	d0 := docs[ref]
	count := d0.Shard.Count
	if len(docs) != count {
		return nil, "", fmt.Errorf("%d shards given, the evaluation has %d", len(docs), count)
	}
	next := 0
	var parts [][]*attack.SuiteReport
	var curves [][]epsPoint
	devices := []string{}
	for k, i := range order {
		d, dir := docs[i], dirs[i]
		same := func(what string, a, b any) error {
			if fmt.Sprint(a) != fmt.Sprint(b) {
				return fmt.Errorf("%s: %s %v, but %s has %v", dir, what, a, dirs[ref], b)
			}
			return nil
		}
		for _, chk := range []error{
			same("checkpoint", d.Checkpoint, d0.Checkpoint), same("suite", d.Suite, d0.Suite),
			same("ε", d.Eps, d0.Eps), same("seed", d.Seed, d0.Seed), same("deployed", d.Deploy, d0.Deploy),
			same("quantizer", d.Quant, d0.Quant), same("build", d.Commit, d0.Commit),
			same("shard count", d.Shard.Count, count), same("images", d.Shard.Total, d0.Shard.Total),
		} {
			if chk != nil {
				return nil, "", chk
			}
		}
		if d.Shard.Index != k {
			return nil, "", fmt.Errorf("shard %d/%d is missing (or %s repeats shard %d)", k, count, dir, d.Shard.Index)
		}
		if d.Shard.First != next || d.N < 0 {
			return nil, "", fmt.Errorf("%s: shard %d starts at image %d with %d images, expected to start at %d", dir,
				k, d.Shard.First, d.N, next)
		}
		next += d.N
		if d.N == 0 {
			continue // an empty shard adds nothing
		}
		parts = append(parts, d.Reports)
		curves = append(curves, d.Curve)
		if !slices.Contains(devices, d.Device) {
			devices = append(devices, d.Device)
		}
	}
	if next != d0.Shard.Total {
		return nil, "", fmt.Errorf("the shards cover %d of %d images", next, d0.Shard.Total)
	}
	if len(parts) == 0 {
		return nil, "", fmt.Errorf("every shard is empty: nothing was evaluated")
	}
	reps, err := attack.MergeReports(parts)
	if err != nil {
		return nil, "", err
	}
	curve, err := mergeCurves(curves)
	if err != nil {
		return nil, "", err
	}
	m := *d0
	m.Device, m.N, m.Shard, m.Reports, m.Curve = strings.Join(devices, " + "), next, nil, reps, curve
	return &m, dirs[ref], nil
}

// mergeCurves adds the shards' curve counts point by point.
func mergeCurves(curves [][]epsPoint) ([]epsPoint, error) {
	out := append([]epsPoint(nil), curves[0]...)
	for k, c := range curves[1:] {
		if len(c) != len(out) {
			return nil, fmt.Errorf("shard %d has %d curve points, shard 0 has %d", k+1, len(c), len(out))
		}
		for j, p := range c {
			if p.Deploy != out[j].Deploy || p.Eps != out[j].Eps {
				return nil, fmt.Errorf("shard %d's curve point %d is at ε = %v, shard 0's at %v", k+1, j, p.Eps, out[j].Eps)
			}
			out[j].Robust += p.Robust
			out[j].N += p.N
		}
	}
	return out, nil
}
