// Package progressfile is a long command's progress as a small JSON file that another process reads: sqnet train
// and sqnet eval write one with --progress-file, and sqnet sweep status shows each running cell's epoch and ETA from
// it. A file is rewritten atomically at most once per Every, so a reader never sees half of it and a fast loop does
// not turn into disk traffic.
package progressfile

import (
	"encoding/json"
	"os"
	"time"

	"github.com/sqnet/sqnet/internal/atomicfile"
)

// Every is the least time between two writes of one file (the first and forced writes excepted).
const Every = 2 * time.Second

// Status is what the file holds.
type Status struct {
	Phase string `json:"phase"` // "train" or "eval"
	// Training: the epoch under way (1-based) of Epochs, and the optimizer steps done of Steps in all.
	Epoch  int `json:"epoch,omitempty"`
	Epochs int `json:"epochs,omitempty"`
	Step   int `json:"step,omitempty"`
	Steps  int `json:"steps,omitempty"`
	// Evaluation: the attack under way, its points done of Total, and the points still robust.
	Attack string `json:"attack,omitempty"`
	Done   int    `json:"done,omitempty"`
	Total  int    `json:"total,omitempty"`
	Robust int    `json:"robust,omitempty"`
	// ElapsedSeconds is the phase's time so far; ETASeconds its estimated time left (0: not known).
	ElapsedSeconds float64   `json:"elapsed_seconds"`
	ETASeconds     float64   `json:"eta_seconds,omitempty"`
	Updated        time.Time `json:"updated"`
}

// Writer writes one file; the zero Writer (no path) writes nothing.
type Writer struct {
	Path string
	last time.Time
}

// Update writes s (stamped with the time) unless the last write was less than Every ago and force is false.
func (w *Writer) Update(s Status, force bool) error {
	if w == nil || w.Path == "" {
		return nil
	}
	now := time.Now()
	if !force && !w.last.IsZero() && now.Sub(w.last) < Every {
		return nil
	}
	w.last = now
	s.Updated = now.UTC().Round(time.Millisecond)
	b, _ := json.Marshal(s)
	return atomicfile.Write(w.Path, append(b, '\n'), 0o644)
}

// Read reads a progress file.
func Read(path string) (*Status, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
