package train

import (
	"fmt"
	"io"

	"github.com/schollz/progressbar/v3"
)

// progress shows training progress: a live bar on a terminal, one line per epoch elsewhere (logs, CI).
type progress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func newProgress(w io.Writer, terminal bool, total, done int) *progress {
	p := &progress{w: w}
	if w == nil || !terminal {
		return p
	}
	p.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("training"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("steps"),
		progressbar.OptionShowIts(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionClearOnFinish(),
	)
	p.bar.Set(done)
	return p
}

// step advances the bar by one step and shows the running loss and accuracy.
func (p *progress) step(loss, acc float64, seen int) {
	if p.bar == nil {
		return
	}
	p.bar.Describe(fmt.Sprintf("loss %.4f acc %.2f%%", loss, 100*acc))
	p.bar.Add(1)
}

// epoch reports a finished epoch on its own line.
func (p *progress) epoch(e EpochResult, total int) {
	if p.w == nil {
		return
	}
	if p.bar != nil {
		p.bar.Clear()
	}
	guard := ""
	if e.GuardPGD > 0 || e.Note != "" {
		guard = fmt.Sprintf(", held-out PGD-10 %.1f%%", 100*e.GuardPGD)
	}
	fmt.Fprintf(p.w, "epoch %d/%d: train loss %.4f, train acc %.2f%%, test acc %.2f%%%s, %.0f images/s, %.1f s\n",
		e.Epoch, total, e.TrainLoss, 100*e.TrainAcc, 100*e.TestAcc, guard, e.ImagesPerSec, e.Seconds)
	if e.Note != "" {
		fmt.Fprintln(p.w, e.Note)
	}
}

// interrupt ends the bar's line before the interruption message.
func (p *progress) interrupt() {
	if p.bar != nil {
		p.bar.Clear()
	}
}
