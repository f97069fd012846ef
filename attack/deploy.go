package attack

import (
	"fmt"
	"strings"

	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
)

// The one rule of every sqnet evaluation: an adversarial candidate — from any attack, through any gradient (the
// soft quantizer's, BPDA's), crafted on any model (a surrogate's) — counts only if the *deployed* classifier, the
// checkpoint's soft or hard quantizer, misclassifies it inside the ε-ball; an example is robust only if no
// candidate does. A gradient path is how an attack looks at the model, never what it is judged by.

// DeployNames lists what --deploy takes.
var DeployNames = []string{"soft", "hard", "both"}

// ParseDeploy reads --deploy for a checkpoint: soft, hard, both (soft then hard), or "" for the classifier the
// checkpoint records (model.Checkpoint.Deploy). A model without a quantizer is deployed one way only, so every
// value names its one classifier (quant.Soft, reported as "plain"): a grid of evaluations can pass --deploy both
// to every checkpoint.
func ParseDeploy(s string, ck *model.Checkpoint) ([]quant.Mode, error) {
	var modes []quant.Mode
	switch s {
	case "":
		modes = []quant.Mode{ck.Deploy}
	case "soft":
		modes = []quant.Mode{quant.Soft}
	case "hard":
		modes = []quant.Mode{quant.Hard}
	case "both":
		modes = []quant.Mode{quant.Soft, quant.Hard}
	default:
		return nil, fmt.Errorf("--deploy %q: want %s", s, strings.Join(DeployNames, ", "))
	}
	if ck.Quant == nil {
		return []quant.Mode{quant.Soft}, nil
	}
	return modes, nil
}

// DeployDesc names a deployed classifier for reports: the quantizer's mode, or "plain" without one.
func DeployDesc(ck *model.Checkpoint, m quant.Mode) string { return DeployName(ck.Quant != nil, m) }

// DeployName is DeployDesc for a model known only by whether it has a quantizer (a report read back from JSON).
func DeployName(quantized bool, m quant.Mode) string {
	if !quantized {
		return "plain"
	}
	return m.String() + " quantizer"
}

// deployModes returns the deployed classifiers of a configuration (quant.Soft when it names none).
func deployModes(d []quant.Mode) []quant.Mode {
	if len(d) == 0 {
		return []quant.Mode{quant.Soft}
	}
	return d
}

// checkDeploy validates a list of deployed classifiers: soft or hard, each at most once.
func checkDeploy(name string, d []quant.Mode) error {
	seen := map[quant.Mode]bool{}
	for _, m := range d {
		if m != quant.Soft && m != quant.Hard {
			return fmt.Errorf("attack %s: deployed as %s; a model is deployed soft or hard", name, m)
		}
		if seen[m] {
			return fmt.Errorf("attack %s: deployed classifier %s listed twice", name, m)
		}
		seen[m] = true
	}
	return nil
}

// distinctModes returns the modes whose forward passes differ for ck: one when it has no quantizer (the rest
// reuse its predictions), else all of them.
func distinctModes(ck *model.Checkpoint, modes []quant.Mode) []quant.Mode {
	if ck.Quant == nil {
		return modes[:1]
	}
	return modes
}

// forwardOf is the classifier whose logits an attack's gradient path computes on the way: the soft quantizer's for
// quant.Soft, the hard quantizer's for the BPDA modes (their forward pass is hard).
func forwardOf(through quant.Mode) quant.Mode {
	if through == quant.Soft {
		return quant.Soft
	}
	return quant.Hard
}
