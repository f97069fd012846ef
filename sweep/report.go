package sweep

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sqnet/sqnet/internal/atomicfile"
	"github.com/sqnet/sqnet/report"
)

// Stat is a mean and the sample standard deviation (n − 1; 0 for one value) over a setting's replicates.
type Stat struct {
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
}

func stat(v []float64) Stat {
	if len(v) == 0 {
		return Stat{Mean: math.NaN(), Std: math.NaN()}
	}
	var s float64
	for _, x := range v {
		s += x
	}
	m := s / float64(len(v))
	if len(v) == 1 {
		return Stat{Mean: m}
	}
	var q float64
	for _, x := range v {
		q += (x - m) * (x - m)
	}
	return Stat{Mean: m, Std: math.Sqrt(q / float64(len(v)-1))}
}

// Row is one setting (every axis but the replicate one) and deployed classifier, over its replicates.
type Row struct {
	Setting    []Setting `json:"setting"`
	Deploy     string    `json:"deploy,omitempty"`
	Cells      int       `json:"cells"`      // the setting's cells in the grid
	Done       int       `json:"done"`       // of which evaluated
	Replicates []string  `json:"replicates"` // the replicate axis's values of the done cells
	Suite      string    `json:"suite"`
	Images     int       `json:"images"`
	Clean      *Stat     `json:"clean_accuracy,omitempty"` // nil until a cell of the setting is done
	Worst      *Stat     `json:"worst_case_accuracy,omitempty"`
	WorstEach  []float64 `json:"worst_case_each"` // per replicate, in Replicates' order
	AutoAttack *Stat     `json:"autoattack_accuracy,omitempty"`
	Train      *Stat     `json:"train_seconds,omitempty"`
}

// Report is a sweep's aggregate: report.json.
type Report struct {
	Grid      string         `json:"grid"`
	Replicate string         `json:"replicate"`
	Counts    map[string]int `json:"cells"` // cells by state
	Rows      []Row          `json:"rows"`
}

// BuildReport aggregates every evaluated cell of grid g in sweep folder dir. Cells not done are counted, not
// guessed at.
func BuildReport(dir string, g *Grid, sts []CellStatus) (*Report, error) {
	r := &Report{Grid: g.Name, Replicate: g.Replicate, Counts: Counts(sts)}
	type acc struct {
		row                   Row
		clean, worst, aa, trn []float64
		aaAll, trnAll         bool
	}
	var order []string
	groups := map[string]*acc{}
	for _, s := range sts {
		var setting []Setting
		rep := ""
		for _, a := range s.Cell.Axes {
			if a.Flag == g.Replicate {
				rep = a.Value
			} else {
				setting = append(setting, a)
			}
		}
		var entries []report.Entry
		if s.State == Done {
			cdir := CellDir(dir, s.Cell.ID)
			es, err := report.EvalEntries(filepath.Join(cdir, EvalDir, "eval.json"), filepath.Join(cdir, TrainJSON))
			if err != nil {
				return nil, err
			}
			entries = es
		}
		deploys := []string{""}
		if len(entries) > 0 {
			deploys = deploys[:0]
			for _, e := range entries {
				deploys = append(deploys, e.Deploy)
			}
		}
		for i, d := range deploys {
			key := label(setting) + "\x00" + d
			a, ok := groups[key]
			if !ok {
				a = &acc{row: Row{Setting: setting, Deploy: d}, aaAll: true, trnAll: true}
				groups[key] = a
				order = append(order, key)
			}
			a.row.Cells++
			if len(entries) == 0 {
				continue
			}
			e := entries[i]
			a.row.Done++
			a.row.Replicates = append(a.row.Replicates, rep)
			a.row.Suite, a.row.Images = e.Suite, e.N
			a.clean = append(a.clean, e.Clean)
			a.worst = append(a.worst, e.Worst)
			if e.AA != nil && e.AutoAttack { // a smoke suite's token AutoAttack is not one
				a.aa = append(a.aa, *e.AA)
			} else {
				a.aaAll = false
			}
			if e.TrainSeconds != nil {
				a.trn = append(a.trn, *e.TrainSeconds)
			} else {
				a.trnAll = false
			}
		}
	}
	// A cell not yet evaluated was counted under deploy "" only; fold those counts into the setting's real rows.
	for _, k := range order {
		a := groups[k]
		if a.row.Deploy != "" || a.row.Done > 0 {
			continue
		}
		n, folded := a.row.Cells, false
		for _, k2 := range order {
			b := groups[k2]
			if k2 != k && b.row.Deploy != "" && label(b.row.Setting) == label(a.row.Setting) {
				b.row.Cells += n
				folded = true
			}
		}
		if folded {
			a.row.Cells = -1
		}
	}
	for _, k := range order {
		a := groups[k]
		if a.row.Cells < 0 {
			continue
		}
		if len(a.worst) > 0 {
			c, w := stat(a.clean), stat(a.worst)
			a.row.Clean, a.row.Worst, a.row.WorstEach = &c, &w, a.worst
		}
		if a.aaAll && len(a.aa) > 0 {
			s := stat(a.aa)
			a.row.AutoAttack = &s
		}
		if a.trnAll && len(a.trn) > 0 {
			s := stat(a.trn)
			a.row.Train = &s
		}
		r.Rows = append(r.Rows, a.row)
	}
	return r, nil
}

// Markdown writes the report's table.
func (r *Report) Markdown(w io.Writer) {
	states := make([]string, 0, len(r.Counts))
	for k, v := range r.Counts {
		states = append(states, fmt.Sprintf("%d %s", v, k))
	}
	sort.Strings(states)
	fmt.Fprintf(w, "# Sweep %s\n\nCells: %s. Each row is one setting over its %s values (mean ± sample std; "+
		"accuracies in %%, worst case = per example over every attack of the suite).\n\n", r.Grid,
		strings.Join(states, ", "), r.Replicate)
	fmt.Fprintf(w, "| setting | deployed | done | suite (images) | clean | worst case | AutoAttack | worst case per %s | train s |\n",
		r.Replicate)
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, row := range r.Rows {
		dep := row.Deploy
		if dep == "" {
			dep = "–"
		}
		aa, trn, suite := "–", "–", "–"
		if row.AutoAttack != nil {
			aa = pm(*row.AutoAttack, 100, 1)
		}
		if row.Train != nil {
			trn = pm(*row.Train, 1, 1)
		}
		if row.Done > 0 {
			suite = fmt.Sprintf("%s (%d)", row.Suite, row.Images)
		}
		each := make([]string, len(row.WorstEach))
		for i, v := range row.WorstEach {
			each[i] = fmt.Sprintf("%s: %.1f", row.Replicates[i], 100*v)
		}
		fmt.Fprintf(w, "| %s | %s | %d/%d | %s | %s | %s | %s | %s | %s |\n", label(row.Setting), dep, row.Done, row.Cells,
			suite, pmp(row.Clean, 100, 1), pmp(row.Worst, 100, 1), aa, strings.Join(each, ", "), trn)
	}
}

// pmp is pm of a Stat that may be missing ("–").
func pmp(s *Stat, k float64, prec int) string {
	if s == nil {
		return "–"
	}
	return pm(*s, k, prec)
}

// pm formats a Stat scaled by k with prec decimals: "76.1 ± 0.8" (no ± for a single value, – for none).
func pm(s Stat, k float64, prec int) string {
	if math.IsNaN(s.Mean) {
		return "–"
	}
	if s.Std == 0 {
		return fmt.Sprintf("%.*f", prec, k*s.Mean)
	}
	return fmt.Sprintf("%.*f ± %.*f", prec, k*s.Mean, prec, k*s.Std)
}

// Write writes report.json, report.md and report.png (worst-case and clean accuracy per setting with ±1 std
// bars) into the sweep folder.
func (r *Report) Write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	r.Markdown(&md)
	if err := atomicfile.Write(filepath.Join(dir, "report.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	var labels []string
	idx := map[string]int{}
	for _, row := range r.Rows {
		l := label(row.Setting)
		if _, ok := idx[l]; !ok {
			idx[l] = len(labels)
			labels = append(labels, l)
		}
	}
	var names []string
	var series [][]Point
	add := func(name string, pick func(Row) *Stat, deploy string) {
		pts := make([]Point, len(labels))
		for i := range pts {
			pts[i] = Point{Mean: math.NaN()}
		}
		any := false
		for _, row := range r.Rows {
			if s := pick(row); row.Deploy == deploy && s != nil {
				pts[idx[label(row.Setting)]] = Point{Mean: s.Mean, Std: s.Std}
				any = true
			}
		}
		if any {
			names, series = append(names, name), append(series, pts)
		}
	}
	deploys := []string{}
	seen := map[string]bool{}
	for _, row := range r.Rows {
		if !seen[row.Deploy] {
			seen[row.Deploy] = true
			deploys = append(deploys, row.Deploy)
		}
	}
	for _, d := range deploys {
		suffix := ""
		if d != "" {
			suffix = " (" + d + ")"
		}
		add("clean"+suffix, func(r Row) *Stat { return r.Clean }, d)
		add("worst case"+suffix, func(r Row) *Stat { return r.Worst }, d)
	}
	if len(series) == 0 {
		return nil // nothing evaluated yet: no plot
	}
	return report.ErrorBarPlot(filepath.Join(dir, "report.png"),
		fmt.Sprintf("sweep %s: mean ± std over %s", r.Grid, r.Replicate), "accuracy", labels, names, series)
}

// Point is report.Point.
type Point = report.Point
