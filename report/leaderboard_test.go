package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// leaderboardFixtures writes result files in the shapes sqnet has written: an eval.json from before deployed
// classifiers (one report, no quantizer named, a train.json beside it), a new one judged soft and hard with
// AutoAttack, a smoke evaluation (AutoAttack at a token effort), and reproductions old and new.
func leaderboardFixtures(t *testing.T) string {
	dir := t.TempDir()
	files := map[string]string{
		"old/eval.json": `{"arch":"small","checkpoint":"m","device":"llvmpipe (LLVM 15.0.6, 256 bits)","eps":0.3,
			"method":"gradreg","suite":"standard","report":{"attacks":[{"name":"clean","robust_accuracy":0.99},
			{"name":"pgd-40","robust_accuracy":0.85}],"worst_case_accuracy":0.80,"n":500}}`,
		"old/train.json": `{"epochs":[{"train_seconds":100},{"train_seconds":210.5}]}`,
		"new/eval.json": `{"arch":"small","method":"noisy-sq","dataset":"mnist","quant":"2,200,fixed","eps":0.3,
			"suite":"standard","autoattack":true,"device":"NVIDIA H200","commit":"abc123","n":1000,"reports":[
			{"suite":"standard","deploy":"soft","n":1000,"attacks":[{"name":"clean","robust_accuracy":0.984}],
			 "autoattack":{"robust_accuracy":0.70},"worst_case_accuracy":0.69},
			{"suite":"standard","deploy":"hard","n":1000,"attacks":[{"name":"clean","robust_accuracy":0.985}],
			 "autoattack":{"robust_accuracy":0.72},"worst_case_accuracy":0.71}]}`,
		"smoke/x-eval.json": `{"arch":"small","method":"natural","quant":"none","eps":0.3,"suite":"smoke",
			"autoattack":false,"n":20,"reports":[{"suite":"smoke","deploy":"soft","n":20,
			"attacks":[{"name":"clean","robust_accuracy":1}],"autoattack":{"robust_accuracy":0.95},
			"worst_case_accuracy":0.95}]}`,
		"repro/results.json": `{"arch":"small","budget":"paper","device":"llvmpipe","eps":0.3,"commit":"def456",
			"methods":[{"plan":{"method":"noisy-sq"},"train_seconds":114,"settings":"quantizer 2,200,fixed, ε_n = 0.5",
			"evaluations":[{"suite":"standard","deploy":"soft","n":1000,"attacks":[{"name":"clean","robust_accuracy":0.98}],
			"autoattack":{"robust_accuracy":0.71},"worst_case_accuracy":0.70}]},
			{"plan":{"method":"pgd-at"},"train_seconds":2724,"evaluations":[{"suite":"standard","deploy":"soft",
			"n":1000,"attacks":[{"name":"clean","robust_accuracy":0.95}],"autoattack":{"robust_accuracy":0.70},
			"worst_case_accuracy":0.70}]}]}`,
		"repro-old/results.json": `{"arch":"small","budget":"quick","device":"llvmpipe","eps":0.3,"methods":[
			{"plan":{"method":"noisy-sq"},"train_seconds":90,"evaluation":{"n":500,
			"attacks":[{"name":"clean","robust_accuracy":0.99}],"worst_case_accuracy":0.81}}]}`,
		"notes.json": `{"not":"a result"}`,
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestLeaderboard: every evaluated classifier is a row; rows with AutoAttack rank first by worst case (ties by
// clean accuracy), rows without it after them however high their number; smoke AutoAttack does not count; the
// old formats give their suite (from the budget), training time (train.json) and an unknown quantizer.
func TestLeaderboard(t *testing.T) {
	dir := leaderboardFixtures(t)
	es, err := Leaderboard(dir)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		source, method, deploy, quant, suite string
		aa                                   bool
		worst                                float64
	}
	want := []row{
		{"new/eval.json", "noisy-sq", "hard", "2,200,fixed", "standard", true, 0.71},
		{"repro/results.json", "noisy-sq", "soft", "2,200,fixed", "standard", true, 0.70},
		{"repro/results.json", "pgd-at", "soft", "none", "standard", true, 0.70},
		{"new/eval.json", "noisy-sq", "soft", "2,200,fixed", "standard", true, 0.69},
		{"smoke/x-eval.json", "natural", "soft", "none", "smoke", false, 0.95},
		{"repro-old/results.json", "noisy-sq", "", "", "quick", false, 0.81},
		{"old/eval.json", "gradreg", "", "", "standard", false, 0.80},
	}
	if len(es) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(es), len(want), es)
	}
	for i, w := range want {
		e := es[i]
		if e.Rank != i+1 || e.Source != w.source || e.Method != w.method || e.Deploy != w.deploy || e.Quant != w.quant ||
			e.Suite != w.suite || e.AutoAttack != w.aa || e.Worst != w.worst {
			t.Errorf("row %d: %+v, want %+v", i+1, e, w)
		}
	}
	if es[0].TrainSeconds != nil || es[1].TrainSeconds == nil || *es[1].TrainSeconds != 114 ||
		es[6].TrainSeconds == nil || *es[6].TrainSeconds != 210.5 {
		t.Error("training times: a reproduction's from results.json, an eval's from the train.json beside it")
	}
	if es[0].Commit != "abc123" || es[0].Dataset != "mnist" || es[6].Dataset != "mnist" || es[0].AA == nil ||
		*es[0].AA != 0.72 {
		t.Errorf("row 1: %+v", es[0])
	}
	var md bytes.Buffer
	if err := WriteLeaderboard(&md, es); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"| 1 | **71.0** | 72.0 | 98.5 | small | noisy-sq | 2,200,fixed, hard | mnist | 0.3 | standard | 1000 | — | NVIDIA H200 | abc123 |",
		"| 3 | **70.0** | 70.0 | 95.0 | small | pgd-at | — |", "| 5 | 95.0 ‡ | 95.0 (smoke) |", "| gradreg | ? |",
		"| 2724 s | llvmpipe |", "210 s"} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("the table lacks %q:\n%s", s, md.String())
		}
	}
	// A file named like a result that is not one is an error naming it, not a silent gap in the ranking.
	bad := filepath.Join(dir, "bad", "eval.json")
	os.MkdirAll(filepath.Dir(bad), 0o755)
	os.WriteFile(bad, []byte(`{"checkpoint":"x"}`), 0o644)
	if _, err := Leaderboard(dir); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("a foreign eval.json: %v", err)
	}
	// A shard's partial eval.json would rank a slice of the test set as if it were the whole: refused.
	raw, _ := os.ReadFile(filepath.Join(dir, "new", "eval.json"))
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	doc["shard"] = map[string]int{"index": 1, "count": 4, "first": 250, "total": 1000}
	raw, _ = json.Marshal(doc)
	os.WriteFile(bad, raw, 0o644)
	if _, err := Leaderboard(dir); err == nil || !strings.Contains(err.Error(), "sqnet merge") {
		t.Errorf("a shard's eval.json: %v", err)
	}
}
