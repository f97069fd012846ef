package train

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/sqnet/sqnet/internal/progressfile"
)

// progress shows training progress: a live bar on a terminal, one line per epoch elsewhere (logs, CI), and, with
// a progress file, the step, epoch and ETA for another process to read (sqnet sweep status).
type progress struct {
	w    io.Writer
	bar  *progressbar.ProgressBar
	file progressfile.Writer
	// for the file: steps per epoch, epochs, steps in all, the step the run started at and when
	spe, epochs, total, first int
	start                     time.Time
	warned                    bool // a write of the progress file failed (once is enough to say so)
}

func newProgress(w io.Writer, terminal bool, file string, spe, epochs, done int) *progress {
	total := spe * epochs
	p := &progress{w: w, file: progressfile.Writer{Path: file}, spe: spe, epochs: epochs, total: total, first: done,
		start: time.Now()}
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

// step advances the bar to optimizer step n (of the whole run) and shows the running loss and accuracy.
func (p *progress) step(n int, loss, acc float64) {
	p.update(n, n == p.total)
	if p.bar == nil {
		return
	}
	p.bar.Describe(fmt.Sprintf("loss %.4f acc %.2f%%", loss, 100*acc))
	p.bar.Add(1)
}

// update writes the progress file at step n: the epoch under way and an ETA from this run's pace so far.
func (p *progress) update(n int, force bool) {
	if p.file.Path == "" {
		return
	}
	el := time.Since(p.start).Seconds()
	st := progressfile.Status{Phase: "train", Epoch: min(n/max(p.spe, 1)+1, p.epochs), Epochs: p.epochs, Step: n,
		Steps: p.total, ElapsedSeconds: el}
	if n > p.first {
		st.ETASeconds = el / float64(n-p.first) * float64(p.total-n)
	}
	if err := p.file.Update(st, force); err != nil && !p.warned {
		// The file is for another process to look at: losing it (a full or flaky file system) must not stop
		// the training. One warning, then silence.
		p.warned = true
		if p.w != nil {
			fmt.Fprintf(p.w, "warning: progress file: %v (training goes on without it)\n", err)
		}
	}
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
