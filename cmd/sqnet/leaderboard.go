package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/sqnet/sqnet/report"
)

func newLeaderboardCmd() *cobra.Command {
	var out, jsonOut string
	c := &cobra.Command{
		Use:   "leaderboard [DIR]",
		Short: "Rank every result under a folder (eval.json, results.json) by worst-case robust accuracy, as one table",
		Long: "leaderboard reads every eval.json (and NAME-eval.json) and results.json under DIR (default docs/results)\n" +
			"and writes one Markdown page ranking each evaluated classifier: evaluations that ran AutoAttack first, by\n" +
			"worst-case robust accuracy, then those without it (marked: a weaker suite's upper bound). Each row names\n" +
			"the model, method, quantizer and deployed classifier, dataset, ε, suite, test images, clean accuracy,\n" +
			"training time where recorded, device, commit and its source file. `sqnet leaderboard docs/results --out\n" +
			"docs/results/README.md` regenerates the results index.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			dir := "docs/results"
			if len(args) == 1 {
				dir = args[0]
			}
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				return usageError{fmt.Errorf("leaderboard: %s is not a folder", dir)}
			}
			entries, err := report.Leaderboard(dir)
			if err != nil {
				return usageError{err}
			}
			if len(entries) == 0 {
				return usageError{fmt.Errorf("leaderboard: no eval.json or results.json under %s", dir)}
			}
			var md bytes.Buffer
			md.WriteString(leaderboardIntro)
			if _, err := os.Stat(filepath.Join(dir, "HISTORY.md")); err == nil {
				md.WriteString("[HISTORY.md](HISTORY.md) keeps the results as the README told them before AutoAttack.\n\n")
			}
			if err := report.WriteLeaderboard(&md, entries); err != nil {
				return err
			}
			if jsonOut != "" {
				var b bytes.Buffer
				if err := printJSON(&b, entries); err != nil {
					return err
				}
				if err := writeFileAtomic(jsonOut, b.Bytes()); err != nil {
					return err
				}
			}
			if out == "" {
				_, err := c.OutOrStdout().Write(md.Bytes())
				return err
			}
			return writeFileAtomic(out, md.Bytes())
		},
	}
	c.Flags().StringVar(&out, "out", "", "write the Markdown page here instead of stdout")
	c.Flags().StringVar(&jsonOut, "json", "", "also write the entries as JSON here")
	return c
}

// leaderboardIntro opens the page; it names no folder, so the page is the same wherever it is generated from.
const leaderboardIntro = "# Results, ranked\n\nEvery evaluation under this folder, one row per deployed classifier, " +
	"generated from the result files by `sqnet leaderboard` (`sqnet leaderboard docs/results --out " +
	"docs/results/README.md`) — do not edit it by hand. Robust accuracy in % at the ℓ∞ radius ε; the worst case " +
	"counts an example only if it survives every attack of its suite. Each folder's README says how its runs were " +
	"made.\n\n"

// buildCommit is the commit the binary was built from (with -dirty when its tree had changes), or "" when the
// build recorded none.
func buildCommit() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return ""
	}
	return rev + dirty
}
