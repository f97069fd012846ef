package report

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Entry is one row of the leaderboard: a trained model judged as one deployed classifier by one evaluation.
type Entry struct {
	Rank    int     `json:"rank"`
	Model   string  `json:"model"`
	Method  string  `json:"method"`
	Dataset string  `json:"dataset"`
	Quant   string  `json:"quant,omitempty"`  // the quantizer, "none", or "" where the files do not say
	Deploy  string  `json:"deploy,omitempty"` // soft, hard, or "" (no quantizer, or a file from before deploy)
	Eps     float64 `json:"eps"`
	Suite   string  `json:"suite"`
	// AutoAttack says whether the evaluation ran AutoAttack at its standard effort; without it the robust
	// accuracy is a weaker upper bound, and the row ranks below every row with it.
	AutoAttack bool     `json:"autoattack"`
	N          int      `json:"images"`
	Clean      float64  `json:"clean_accuracy"`
	AA         *float64 `json:"autoattack_accuracy,omitempty"`
	Worst      float64  `json:"worst_case_accuracy"`
	// TrainSeconds is the training time when the result files record it (a reproduction, or a train.json
	// beside an eval.json).
	TrainSeconds *float64 `json:"train_seconds,omitempty"`
	Device       string   `json:"device"`
	Commit       string   `json:"commit,omitempty"`
	Source       string   `json:"source"` // the result file, relative to the folder read
}

// The result files' shapes, old and new: an evaluation suite's report (eval.json's reports, or the single report
// of files written before deployed classifiers), and a reproduction's methods.
type suiteDoc struct {
	Suite   string `json:"suite"`
	Deploy  string `json:"deploy"`
	N       int    `json:"n"`
	Attacks []struct {
		Name     string  `json:"name"`
		Accuracy float64 `json:"robust_accuracy"`
	} `json:"attacks"`
	AutoAttack *struct {
		Accuracy float64 `json:"robust_accuracy"`
	} `json:"autoattack"`
	Worst float64 `json:"worst_case_accuracy"`
}

type evalDoc struct {
	Checkpoint string      `json:"checkpoint"`
	Device     string      `json:"device"`
	Eps        float64     `json:"eps"`
	Suite      string      `json:"suite"`
	AutoAttack *bool       `json:"autoattack"`
	Arch       string      `json:"arch"`
	Method     string      `json:"method"`
	Dataset    string      `json:"dataset"`
	Quant      string      `json:"quant"`
	Commit     string      `json:"commit"`
	Reports    []*suiteDoc `json:"reports"`
	Report     *suiteDoc   `json:"report"` // before deployed classifiers
	Shard      *struct {
		Index int `json:"index"`
		Count int `json:"count"`
	} `json:"shard"` // a shard's partial result (eval --shard), which only sqnet merge turns into one
}

type resultsDoc struct {
	Dataset string  `json:"dataset"` // absent before reproduce took other datasets: MNIST
	Arch    string  `json:"arch"`
	Budget  string  `json:"budget"`
	Device  string  `json:"device"`
	Eps     float64 `json:"eps"`
	Commit  string  `json:"commit"`
	Methods []struct {
		Plan struct {
			Method string `json:"method"`
		} `json:"plan"`
		TrainSeconds float64     `json:"train_seconds"`
		Settings     string      `json:"settings"`
		Evaluations  []*suiteDoc `json:"evaluations"`
		Evaluation   *suiteDoc   `json:"evaluation"` // before deployed classifiers
	} `json:"methods"`
}

// budgetSuites are the suites reproduction budgets ran, for results.json files that do not name theirs.
var budgetSuites = map[string]string{"mini": "quick", "quick": "quick", "paper": "standard", "full": "standard",
	"smoke": "smoke"}

// Leaderboard reads every eval.json (also NAME-eval.json) and results.json under root and returns one entry per
// evaluated classifier, ranked: rows whose evaluation ran AutoAttack first, by worst-case robust accuracy (then
// clean accuracy), then the rows without it the same way. A file that is not a result of sqnet's is an error
// naming it.
func Leaderboard(root string) ([]Entry, error) {
	var out []Entry
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() || !(name == "eval.json" || strings.HasSuffix(name, "-eval.json") || name == "results.json") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var es []Entry
		if name == "results.json" {
			es, err = fromResults(raw)
		} else {
			es, err = fromEval(raw, filepath.Dir(path), strings.TrimSuffix(name, "eval.json"))
		}
		if err != nil {
			return fmt.Errorf("leaderboard: %s: %w", path, err)
		}
		for i := range es {
			es[i].Source = filepath.ToSlash(rel)
		}
		out = append(out, es...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.AutoAttack != b.AutoAttack {
			return a.AutoAttack
		}
		if a.Worst != b.Worst {
			return a.Worst > b.Worst
		}
		if a.Clean != b.Clean {
			return a.Clean > b.Clean
		}
		return a.Source < b.Source
	})
	for i := range out {
		out[i].Rank = i + 1
	}
	return out, nil
}

// entry turns one suite report into a row.
func entry(s *suiteDoc) (Entry, error) {
	if s == nil || s.N <= 0 || len(s.Attacks) == 0 {
		return Entry{}, fmt.Errorf("an evaluation without images or attacks")
	}
	e := Entry{Suite: s.Suite, Deploy: s.Deploy, N: s.N, Worst: s.Worst, AutoAttack: s.AutoAttack != nil}
	for _, a := range s.Attacks {
		if a.Name == "clean" {
			e.Clean = a.Accuracy
		}
	}
	if s.AutoAttack != nil {
		v := s.AutoAttack.Accuracy
		e.AA = &v
	}
	return e, nil
}

func fromEval(raw []byte, dir, prefix string) ([]Entry, error) {
	var d evalDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, err
	}
	reps := d.Reports
	if len(reps) == 0 && d.Report != nil {
		reps = []*suiteDoc{d.Report}
	}
	if d.Arch == "" || d.Method == "" || len(reps) == 0 {
		return nil, fmt.Errorf("not an sqnet eval.json (no arch, method or report)")
	}
	if d.Shard != nil {
		return nil, fmt.Errorf("shard %d/%d of an evaluation: combine the shards with sqnet merge first", d.Shard.Index,
			d.Shard.Count)
	}
	train := trainSeconds(filepath.Join(dir, prefix+"train.json"))
	if train == nil && filepath.Base(dir) == "eval" {
		train = trainSeconds(filepath.Join(dir, "..", "train.json")) // a sweep cell: cells/ID/{train.json,eval/}
	}
	var out []Entry
	for _, r := range reps {
		e, err := entry(r)
		if err != nil {
			return nil, err
		}
		if e.Suite == "" {
			e.Suite = d.Suite
		}
		// A smoke suite's AutoAttack runs at a token effort: it does not make the row an AutoAttack evaluation.
		e.AutoAttack = e.AutoAttack && (d.AutoAttack == nil || *d.AutoAttack) && e.Suite != "smoke"
		e.Model, e.Method, e.Dataset, e.Quant = d.Arch, d.Method, d.Dataset, d.Quant
		e.Eps, e.Device, e.Commit, e.TrainSeconds = d.Eps, d.Device, d.Commit, train
		if e.Dataset == "" {
			e.Dataset = "mnist" // every eval.json from before the dataset field is MNIST's
		}
		out = append(out, e)
	}
	return out, nil
}

func fromResults(raw []byte) ([]Entry, error) {
	var d resultsDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, err
	}
	if d.Arch == "" || len(d.Methods) == 0 {
		return nil, fmt.Errorf("not an sqnet results.json (no arch or methods)")
	}
	var out []Entry
	for _, m := range d.Methods {
		reps := m.Evaluations
		if len(reps) == 0 && m.Evaluation != nil {
			reps = []*suiteDoc{m.Evaluation}
		}
		for _, r := range reps {
			e, err := entry(r)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.Plan.Method, err)
			}
			if e.Suite == "" {
				e.Suite = budgetSuites[d.Budget]
			}
			e.AutoAttack = e.AutoAttack && e.Suite != "smoke"
			t := m.TrainSeconds
			e.Model, e.Method, e.Dataset, e.Eps, e.Device, e.Commit = d.Arch, m.Plan.Method, d.Dataset, d.Eps, d.Device, d.Commit
			if e.Dataset == "" {
				e.Dataset = "mnist"
			}
			e.TrainSeconds = &t
			// Only noisy-sq has a quantizer in a reproduction; its settings line (since 2026-11-25) names it:
			// "quantizer 2,200,fixed, ε_n = 0.5, α by epoch …".
			if m.Plan.Method != "noisy-sq" {
				e.Quant = "none"
			} else if q, ok := strings.CutPrefix(m.Settings, "quantizer "); ok {
				e.Quant, _, _ = strings.Cut(q, ", ε_n")
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// EvalEntries reads one eval.json into rows, one per deployed classifier, with the training time from the
// train.json at trainJSON ("" or a missing file: none). sqnet sweep report aggregates a grid's cells with it.
func EvalEntries(path, trainJSON string) ([]Entry, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	es, err := fromEval(raw, filepath.Dir(path), "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t := trainSeconds(trainJSON)
	for i := range es {
		es[i].TrainSeconds, es[i].Source = t, path
	}
	return es, nil
}

// trainSeconds reads a train.json's training time (the last epoch's cumulative train_seconds), nil without one.
func trainSeconds(path string) *float64 {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var d struct {
		Epochs []struct {
			TrainSeconds float64 `json:"train_seconds"`
		} `json:"epochs"`
	}
	if json.Unmarshal(raw, &d) != nil || len(d.Epochs) == 0 {
		return nil
	}
	v := d.Epochs[len(d.Epochs)-1].TrainSeconds
	return &v
}

// WriteLeaderboard writes the entries as a Markdown table, links relative to the folder they were read from.
func WriteLeaderboard(w io.Writer, entries []Entry) error {
	fmt.Fprintf(w, "| # | worst case | AutoAttack | clean | model | method | quantizer, deployed | dataset | ε | suite | "+
		"images | train time | device | commit | source |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, e := range entries {
		aa := "—"
		if e.AA != nil {
			aa = pct(*e.AA)
			if !e.AutoAttack {
				aa += " (smoke)"
			}
		}
		worst := "**" + pct(e.Worst) + "**"
		if !e.AutoAttack {
			worst = pct(e.Worst) + " ‡"
		}
		q := e.Quant
		switch {
		case q == "":
			q = "?" // a file from before eval.json named the quantizer
		case q == "none":
			q = "—"
		case e.Deploy != "":
			q += ", " + e.Deploy
		}
		train := "—"
		if e.TrainSeconds != nil {
			train = fmt.Sprintf("%.0f s", *e.TrainSeconds)
		}
		commit := e.Commit
		if commit == "" {
			commit = "—"
		}
		if _, err := fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s | %g | %s | %d | %s | %s | %s | [%s](%s) |\n",
			e.Rank, worst, aa, pct(e.Clean), e.Model, e.Method, q, e.Dataset, e.Eps, e.Suite, e.N, train,
			shortDevice(e.Device), commit, e.Source, e.Source); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "\n‡ evaluated without AutoAttack: an upper bound from a weaker suite, ranked below "+
		"every row evaluated with it.\n")
	return err
}

func pct(v float64) string { return fmt.Sprintf("%.1f", 100*v) }

// shortDevice drops a driver's parenthesised detail: "llvmpipe (LLVM 15.0.6, 256 bits)" → "llvmpipe".
func shortDevice(d string) string {
	if i := strings.Index(d, " ("); i > 0 {
		return d[:i]
	}
	return d
}
