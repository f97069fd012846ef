package attack

import "fmt"

// MergeReports combines the suite reports of consecutive shards of one evaluation — parts[k] holds shard k's
// reports, one per deployed classifier, in the same order — into the reports of the whole run: counts, queries,
// seconds and submits add up, accuracies are recomputed, and the per-example lists (BrokenBy) are concatenated in
// shard order. Every attack draws its randomness per example (Config.FirstID), so the merged reports equal the
// unsharded run's in everything but its seconds and submits. The shards must have run the same suite with the
// same attacks against the same classifiers; anything else is an error naming the first difference. Per-example
// tensors that eval.json does not hold (Robust, Adv, Pred) are left out.
func MergeReports(parts [][]*SuiteReport) ([]*SuiteReport, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("merge: no shards")
	}
	first := parts[0]
	out := make([]*SuiteReport, len(first))
	for k, r := range first {
		if r == nil {
			return nil, fmt.Errorf("merge: shard 0 has no report %d", k)
		}
		m := &SuiteReport{Suite: r.Suite, Deploy: r.Deploy}
		for _, res := range r.Results {
			m.Results = append(m.Results, &Result{Name: res.Name, Eps: res.Eps, Deploy: res.Deploy})
		}
		if aa := r.AutoAttack; aa != nil {
			m.AutoAttack = &AAReport{Deploy: aa.Deploy}
			for _, s := range aa.Steps {
				m.AutoAttack.Steps = append(m.AutoAttack.Steps, AAStep{Attack: s.Attack, Gradient: s.Gradient})
			}
		}
		out[k] = m
	}
	for i, reps := range parts {
		if len(reps) != len(out) {
			return nil, fmt.Errorf("merge: shard %d has %d deployed classifiers, shard 0 has %d", i, len(reps), len(out))
		}
		for k, r := range reps {
			if err := addReport(out[k], r); err != nil {
				return nil, fmt.Errorf("merge: shard %d, deployed %s: %w", i, out[k].Deploy, err)
			}
		}
	}
	for _, m := range out {
		m.WorstAccuracy = ratio(m.WorstCorrect, m.N)
		for _, res := range m.Results {
			res.Accuracy = ratio(res.Correct, res.N)
		}
		if aa := m.AutoAttack; aa != nil {
			aa.CleanAccuracy, aa.Accuracy = ratio(aa.Clean, aa.N), ratio(aa.Robust, aa.N)
			for j := range aa.Steps {
				aa.Steps[j].Accuracy = ratio(aa.Steps[j].Robust, aa.N)
			}
		}
	}
	return out, nil
}

// addReport adds one shard's report into the running total m, checking that it ran the same evaluation.
func addReport(m, r *SuiteReport) error {
	if r == nil {
		return fmt.Errorf("no report")
	}
	if r.Suite != m.Suite || r.Deploy != m.Deploy {
		return fmt.Errorf("suite %s against %s, shard 0: suite %s against %s", r.Suite, r.Deploy, m.Suite, m.Deploy)
	}
	if len(r.BrokenBy) != r.N {
		return fmt.Errorf("%d examples but %d entries in broken_by", r.N, len(r.BrokenBy))
	}
	if len(r.Results) != len(m.Results) {
		return fmt.Errorf("%d attacks, shard 0 ran %d", len(r.Results), len(m.Results))
	}
	for j, res := range r.Results {
		t := m.Results[j]
		if res.Name != t.Name || res.Eps != t.Eps || res.Deploy != t.Deploy {
			return fmt.Errorf("attack %d is %s at ε = %v, shard 0's is %s at ε = %v", j, res.Name, res.Eps, t.Name, t.Eps)
		}
		if res.N != r.N {
			return fmt.Errorf("attack %s ran on %d examples of %d", res.Name, res.N, r.N)
		}
		t.N += res.N
		t.Correct += res.Correct
		t.Seconds += res.Seconds
		t.Submits += res.Submits
		t.Queries += res.Queries
	}
	if (r.AutoAttack == nil) != (m.AutoAttack == nil) {
		return fmt.Errorf("AutoAttack ran in some shards only")
	}
	if aa := r.AutoAttack; aa != nil {
		t := m.AutoAttack
		if len(aa.Steps) != len(t.Steps) {
			return fmt.Errorf("AutoAttack ran %d attacks, shard 0 ran %d", len(aa.Steps), len(t.Steps))
		}
		// Each step's robust count is cumulative within a shard, so it adds up across shards as well.
		t.N += aa.N
		t.Clean += aa.Clean
		t.Robust += aa.Robust
		t.Seconds += aa.Seconds
		for j, s := range aa.Steps {
			ts := &t.Steps[j]
			if s.Attack != ts.Attack || s.Gradient != ts.Gradient {
				return fmt.Errorf("AutoAttack's attack %d is %s, shard 0's is %s", j, s.Attack, ts.Attack)
			}
			ts.Attacked += s.Attacked
			ts.Broken += s.Broken
			ts.Robust += s.Robust
			ts.Seconds += s.Seconds
			ts.Queries += s.Queries
			ts.Unconfirmed += s.Unconfirmed
		}
	}
	m.N += r.N
	m.WorstCorrect += r.WorstCorrect
	m.Seconds += r.Seconds
	m.BrokenBy = append(m.BrokenBy, r.BrokenBy...)
	return nil
}

// ratio is k/n, 0 for an empty set.
func ratio(k, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(k) / float64(n)
}
