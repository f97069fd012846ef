package sweep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// LocalOptions configures RunLocal.
type LocalOptions struct {
	Bin string // the sqnet binary the cells run
	// Devices are the --device values of the workers, one worker each (a machine with 4 GPUs: gpu:0…gpu:3);
	// empty: one worker on the default device.
	Devices []string
	Out     io.Writer // a line per cell started and finished
}

// RunLocal runs cells on this machine, one at a time per device, and returns once all are done, one failed
// (the others still run to the end; the error counts the failures) or ctx is cancelled (cells under way are
// interrupted and rerun next time).
func RunLocal(ctx context.Context, dir string, cells []Cell, o LocalOptions) error {
	devs := o.Devices
	if len(devs) == 0 {
		devs = []string{""}
	}
	queue := make(chan Cell)
	var mu sync.Mutex
	var failed []string
	finished := 0
	var busy time.Duration
	report := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(o.Out, format, a...)
	}
	var wg sync.WaitGroup
	for _, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range queue {
				on := ""
				if d != "" {
					on = " on device " + d
				}
				report("  start  %s  %s%s\n", c.ID, c.Label(), on)
				t0 := time.Now()
				st, err := Exec(ctx, dir, c, o.Bin, d, "")
				mu.Lock()
				finished++
				busy += time.Since(t0)
				left := len(cells) - finished
				eta := ""
				if left > 0 && ctx.Err() == nil {
					per := busy / time.Duration(finished)
					eta = fmt.Sprintf(", ETA %s", (per * time.Duration((left+len(devs)-1)/len(devs))).Round(time.Second))
				}
				switch {
				case errors.Is(err, ErrBusy):
					fmt.Fprintf(o.Out, "  skip   %s  %s: %v\n", c.ID, c.Label(), err)
				case err != nil && ctx.Err() != nil:
					fmt.Fprintf(o.Out, "  stop   %s  %s: interrupted\n", c.ID, c.Label())
				case err != nil:
					failed = append(failed, c.ID)
					why := err.Error()
					if st != nil {
						why = st.Phase + ": " + st.Error
					}
					fmt.Fprintf(o.Out, "  FAIL   %s  %s: %s [%d/%d%s]\n", c.ID, c.Label(), why, finished, len(cells), eta)
				default:
					fmt.Fprintf(o.Out, "  done   %s  %s in %s [%d/%d%s]\n", c.ID, c.Label(),
						time.Duration(st.Seconds*float64(time.Second)).Round(time.Second), finished, len(cells), eta)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, c := range cells {
		select {
		case queue <- c:
		case <-ctx.Done():
			break feed
		}
	}
	close(queue)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d cells failed (%v): sqnet sweep status shows their errors, sqnet sweep run "+
			"--retry-failed reruns them", len(failed), len(cells), failed)
	}
	return nil
}
