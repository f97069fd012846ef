package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/sqnet/sqnet/attack"
	"github.com/sqnet/sqnet/internal/progressfile"
)

// attackProgress shows a long evaluation's advance on stderr: on a terminal a live bar per attack (its name and
// target, the points still robust, an ETA); elsewhere (logs, CI) one line whenever a new attack starts. With a
// progress file (eval --progress-file) it also writes the attack under way there, for sqnet sweep status.
type attackProgress struct {
	w        io.Writer
	terminal bool
	bar      *progressbar.ProgressBar
	attack   string // the attack the bar or the last line is for
	file     progressfile.Writer
	start    time.Time
	err      error // the first failure to write the progress file
}

func newAttackProgress(w io.Writer, file string) *attackProgress {
	p := &attackProgress{w: w, file: progressfile.Writer{Path: file}, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		p.terminal = term.IsTerminal(int(f.Fd()))
	}
	return p
}

// update shows one progress report.
func (p *attackProgress) update(e attack.Progress) {
	if err := p.file.Update(progressfile.Status{Phase: "eval", Attack: e.Attack, Done: e.Done, Total: e.Total,
		Robust: e.Left, ElapsedSeconds: time.Since(p.start).Seconds()}, false); err != nil && p.err == nil {
		p.err = err
	}
	if !p.terminal {
		base, _, _ := strings.Cut(e.Attack, " (target")
		if base != p.attack {
			p.attack = base
			fmt.Fprintf(p.w, "  running %s on %d points still robust\n", base, e.Left)
		}
		return
	}
	if e.Attack != p.attack || p.bar == nil {
		p.clear()
		p.attack = e.Attack
		p.bar = progressbar.NewOptions(max(e.Total, 1),
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionShowCount(),
			progressbar.OptionSetItsString("points"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100_000_000),
			progressbar.OptionClearOnFinish(),
		)
	}
	p.bar.Describe(fmt.Sprintf("%s · %d robust", e.Attack, e.Left))
	p.bar.Set(e.Done)
}

// mark writes what the evaluation is doing to the progress file at once (its start, an attack's end), so a reader
// never sees the training's last line while attacks without progress reports run.
func (p *attackProgress) mark(what string) {
	if err := p.file.Update(progressfile.Status{Phase: "eval", Attack: what,
		ElapsedSeconds: time.Since(p.start).Seconds()}, true); err != nil && p.err == nil {
		p.err = err
	}
}

// clear removes the bar before a result line is printed.
func (p *attackProgress) clear() {
	if p.bar != nil {
		p.bar.Clear()
		p.bar = nil
	}
}
