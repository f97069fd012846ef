package train

import (
	"fmt"
	"strconv"

	"github.com/sqnet/sqnet/model"
	"github.com/sqnet/sqnet/quant"
)

// runSetting is one train flag that defines what a run computes. A checkpoint records it under Key — in its own
// metadata field (model, method, dataset, quantizer, seed, deployed classifier) or among the training settings —
// so that --resume continues the same run: the resumed run takes the recorded value, and a flag given with
// another value is an error naming both (ResumeConflicts). --epochs is not one: it extends a run.
type runSetting struct {
	Flag, Key string
	get       func(c *Config) string
	set       func(c *Config, v string) error
}

func f32Setting(flag, key string, p func(c *Config) *float32) runSetting {
	return runSetting{flag, key,
		func(c *Config) string { return strconv.FormatFloat(float64(*p(c)), 'g', -1, 32) },
		func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 32)
			*p(c) = float32(f)
			return err
		}}
}

func intSetting(flag, key string, p func(c *Config) *int) runSetting {
	return runSetting{flag, key,
		func(c *Config) string { return strconv.Itoa(*p(c)) },
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			*p(c) = n
			return err
		}}
}

func strSetting(flag, key string, p func(c *Config) *string) runSetting {
	return runSetting{flag, key, func(c *Config) string { return *p(c) },
		func(c *Config, v string) error { *p(c) = v; return nil }}
}

// runSettings are every setting a run is defined by; the first six live in the checkpoint's own fields.
var runSettings = []runSetting{
	strSetting("--model", "arch", func(c *Config) *string { return &c.Model }),
	strSetting("--method", "method", func(c *Config) *string { return &c.Method }),
	strSetting("--dataset", "dataset", func(c *Config) *string { return &c.Dataset }),
	{"--quant", "quant",
		func(c *Config) string {
			if c.Quant == nil {
				return ""
			}
			return c.Quant.String()
		},
		func(c *Config, v string) error {
			if v == "" {
				c.Quant = nil
				return nil
			}
			q, err := quant.Parse(v)
			c.Quant = &q
			return err
		}},
	{"--seed", "seed", func(c *Config) string { return strconv.FormatUint(c.Seed, 10) },
		func(c *Config, v string) (err error) { c.Seed, err = strconv.ParseUint(v, 10, 64); return err }},
	{"--deploy", "deploy", func(c *Config) string { return c.Deploy.String() },
		func(c *Config, v string) (err error) { c.Deploy, err = quant.ParseMode(v); return err }},
	strSetting("--optimizer", "optimizer", func(c *Config) *string { return &c.Optimizer.Kind }),
	intSetting("--batch", "batch", func(c *Config) *int { return &c.Batch }),
	f32Setting("--lr", "lr", func(c *Config) *float32 { return &c.Optimizer.LR }),
	f32Setting("--momentum", "momentum", func(c *Config) *float32 { return &c.Optimizer.Momentum }),
	f32Setting("--weight-decay", "weight_decay", func(c *Config) *float32 { return &c.Optimizer.WeightDecay }),
	strSetting("--augment", "augment", func(c *Config) *string { return &c.Augment }),
	intSetting("--image-size", "image_size", func(c *Config) *int { return &c.ImageSize }),
	{"--nesterov", "nesterov", func(c *Config) string { return strconv.FormatBool(c.Optimizer.Nesterov) },
		func(c *Config, v string) (err error) { c.Optimizer.Nesterov, err = strconv.ParseBool(v); return err }},
	{"--lr-schedule", "lr_schedule", func(c *Config) string { return scheduleName(c.Optimizer.Schedule) },
		func(c *Config, v string) error { c.Optimizer.Schedule = v; return nil }},
	f32Setting("--eps", "eps", func(c *Config) *float32 { return &c.Eps }),
	f32Setting("--noise-eps", "noise_eps", func(c *Config) *float32 { return &c.NoiseEps }),
	intSetting("--pgd-steps", "pgd_steps", func(c *Config) *int { return &c.PGDSteps }),
	f32Setting("--pgd-step", "pgd_step", func(c *Config) *float32 { return &c.PGDStep }),
	f32Setting("--gradreg-h", "gradreg_h", func(c *Config) *float32 { return &c.GradRegH }),
	intSetting("--limit", "limit", func(c *Config) *int { return &c.Limit }),
	intSetting("--test-limit", "test_limit", func(c *Config) *int { return &c.TestLimit }),
	{"--alpha-epochs", "alpha_epochs", func(c *Config) string { return FormatAlphas(c.AlphaEpochs) },
		func(c *Config, v string) (err error) { c.AlphaEpochs, err = ParseAlphas(v); return err }},
}

// ownField is the number of runSettings kept in the checkpoint's own fields rather than its training settings.
const ownField = 6

// recorded returns what a checkpoint records for setting s, and whether it records it at all (checkpoints
// from before a setting was recorded do not).
func recorded(ck *model.Checkpoint, i int) (string, bool) {
	s := runSettings[i]
	if i >= ownField {
		v, ok := ck.Extra[s.Key]
		return v, ok
	}
	switch s.Key {
	case "arch":
		return ck.Arch.Name, true
	case "method":
		return ck.Method, true
	case "dataset":
		return ck.Dataset, ck.Dataset != ""
	case "quant":
		if ck.Quant == nil {
			return "", true
		}
		return ck.Quant.String(), true
	case "seed":
		return strconv.FormatUint(ck.Seed, 10), true
	default: // deploy
		return ck.Deploy.String(), true
	}
}

// settingsMetadata is the training settings a checkpoint carries beside its own fields (see runSettings), and
// the epochs the run was asked for (see PlannedEpochs).
func settingsMetadata(c Config) map[string]string {
	m := map[string]string{"epochs": strconv.Itoa(c.Epochs)}
	for _, s := range runSettings[ownField:] {
		m[s.Key] = s.get(&c)
	}
	if len(c.AlphaEpochs) == 0 {
		delete(m, "alpha_epochs")
	}
	if c.Init != "" {
		m["init"] = c.Init // provenance only: a resumed run takes its weights from its own checkpoint
	}
	return m
}

// PlannedEpochs returns the epochs the run that wrote ck was asked for, when ck records them: a resumed run
// without --epochs finishes that run (with --epochs it may extend it).
func PlannedEpochs(ck *model.Checkpoint) (int, bool) {
	n, err := strconv.Atoi(ck.Extra["epochs"])
	return n, err == nil && n > 0
}

// adoptCheckpoint gives a resumed run every setting its checkpoint records: a resumed run is the same run.
func adoptCheckpoint(cfg *Config, ck *model.Checkpoint) error {
	for i, s := range runSettings {
		v, ok := recorded(ck, i)
		if !ok {
			if s.Key == "augment" && cfg.Augment == "" {
				cfg.Augment = "none" // a checkpoint from before augmentation trained without it
			}
			continue
		}
		if err := s.set(cfg, v); err != nil {
			return fmt.Errorf("resume %s: metadata %s = %q: %w", cfg.Resume, s.Key, v, err)
		}
	}
	return nil
}

// ResumeConflicts checks the flags given with --resume (given reports, by name with its dashes, which were set on
// the command line; cfg holds their values) against what the checkpoint records, and names the first that
// differs with both values: resuming never silently changes a run, and never silently ignores a flag.
func ResumeConflicts(cfg Config, ck *model.Checkpoint, given func(flag string) bool) error {
	for i, s := range runSettings {
		v, ok := recorded(ck, i)
		if !ok || !given(s.Flag) {
			continue
		}
		if mine := s.get(&cfg); mine != v {
			if v == "" {
				v = `""`
			}
			return fmt.Errorf("%s %s: the run being resumed (%s) was trained with %s %s; leave the flag out, or "+
				"start a new run", s.Flag, mine, cfg.Resume, s.Flag, v)
		}
	}
	return nil
}

// scheduleName is the schedule as checkpoints record it ("" is constant).
func scheduleName(s string) string {
	if s == "" {
		return "constant"
	}
	return s
}
