// Command sqnet trains image classifiers that resist adversarial examples cheaply (noisy-natural training with a
// soft-quantization layer, arXiv 1810.05665) and evaluates them honestly, on any Vulkan 1.1 device.
//
// Exit codes: 0 success, 1 failure of the work itself (a failed check, validation messages), 2 bad input or a
// bad environment (unknown flag, no Vulkan driver, no such device, out of memory, device lost, a missing or
// corrupt dataset or checkpoint), 130 interrupted by Ctrl-C after saving a checkpoint. Every error is one line on
// stderr.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sqnet/sqnet/internal/atomicfile"
	"github.com/sqnet/sqnet/train"
	"github.com/sqnet/sqnet/vk"
)

// usageError marks errors caused by how sqnet was invoked; they exit with code 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// globals holds the flags every command shares.
type globals struct {
	device   string
	validate bool
}

// vkOptions turns the shared flags into device options.
func (g *globals) vkOptions() vk.Options {
	mode := vk.ValidationFromEnv
	if g.validate {
		mode = vk.ValidationOn
	}
	return vk.Options{Instance: vk.InstanceOptions{Validation: mode}, Device: g.device}
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "sqnet",
		Short: "Adversarially robust image classifiers on any Vulkan GPU",
		Long: "sqnet trains image classifiers that resist adversarial examples cheaply (noisy-natural training with a\n" +
			"soft-quantization layer, Zheng, Chen & Ren, arXiv 1810.05665) and evaluates them, on any Vulkan 1.1 device.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.device, "device", "",
		"device to use: an index or part of a name from `sqnet devices`, or gpu:N for the N-th GPU (default $SQNET_DEVICE, else the best GPU)")
	root.PersistentFlags().BoolVar(&g.validate, "validate", false,
		"enable VK_LAYER_KHRONOS_validation and fail on any message (also SQNET_VALIDATION=1)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newDevicesCmd(g), newSelftestCmd(g), newTrainCmd(g), newBenchCmd(g), newAttackCmd(g), newEvalCmd(g), newMergeCmd(), newAuditCmd(g), newReproduceCmd(g),
		newViewCmd(g), newLeaderboardCmd(), newSweepCmd(g))
	return root
}

// exitCode maps an error to sqnet's exit codes.
func exitCode(err error) int {
	var u usageError
	var bad train.BadInput
	switch {
	case err == nil:
		return 0
	case errors.Is(err, train.ErrInterrupted):
		return 130 // the shell's code for a process stopped by SIGINT; the checkpoint is saved
	case errors.As(err, &u), errors.As(err, &bad), vk.IsEnvironment(err),
		strings.HasPrefix(err.Error(), "unknown command"):
		return 2
	}
	return 1
}

// GLFW (sqnet view) must be called from the process's main thread; main's goroutine starts there, and this keeps
// it there.
func init() { runtime.LockOSThread() }

func main() {
	err := newRoot().Execute()
	if err != nil {
		// One line, whatever the error carries.
		fmt.Fprintln(os.Stderr, "sqnet: "+strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	os.Exit(exitCode(err))
}

// writeFileAtomic writes a result file so that an interruption never leaves half of it.
func writeFileAtomic(path string, data []byte) error { return atomicfile.Write(path, data, 0o644) }

// printJSON writes v as indented JSON, the form every --json flag prints.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
