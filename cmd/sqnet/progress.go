package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/sqnet/sqnet/attack"
)

// attackProgress shows a long evaluation's advance on stderr: on a terminal a live bar per attack (its name and
// target, the points still robust, an ETA); elsewhere (logs, CI) one line whenever a new attack starts.
type attackProgress struct {
	w        io.Writer
	terminal bool
	bar      *progressbar.ProgressBar
	attack   string // the attack the bar or the last line is for
}

func newAttackProgress(w io.Writer) *attackProgress {
	p := &attackProgress{w: w}
	if f, ok := w.(*os.File); ok {
		p.terminal = term.IsTerminal(int(f.Fd()))
	}
	return p
}

// update shows one progress report.
func (p *attackProgress) update(e attack.Progress) {
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

// clear removes the bar before a result line is printed.
func (p *attackProgress) clear() {
	if p.bar != nil {
		p.bar.Clear()
		p.bar = nil
	}
}
