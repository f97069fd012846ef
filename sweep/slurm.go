package sweep

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sqnet/sqnet/internal/atomicfile"
)

// SlurmOptions configures SubmitSlurm.
type SlurmOptions struct {
	Bin       string   // the sqnet binary, as the compute nodes see it (a shared file system)
	Gres      string   // --gres, e.g. gpu:1; each task then runs on the GPU Slurm gave it
	Partition string   // --partition
	Time      string   // --time limit per cell
	CPUs      int      // --cpus-per-task (0: Slurm's default)
	Extra     []string // more #SBATCH lines' options, verbatim (e.g. --account=lab)
}

// Submission is one sbatch of a sweep, recorded in DIR/slurm/jobs.json.
type Submission struct {
	Job       string    `json:"job"`
	List      string    `json:"list"` // the cell list its array tasks index
	Script    string    `json:"script"`
	Cells     int       `json:"cells"`
	Submitted time.Time `json:"submitted"`
}

// JobName is the Slurm job name of grid g's array jobs (squeue finds a sweep's tasks by it).
func JobName(g *Grid) string { return "sqnet-" + g.Name }

// SlurmScript is the batch script of an array job over the cells in list: task k runs line k with sweep exec.
// With a --gres the task runs on the first GPU Slurm assigned it (gpu:N from GPU_DEVICE_ORDINAL, which Slurm sets
// with CUDA_VISIBLE_DEVICES for every GPU gres).
func SlurmScript(g *Grid, dir, list string, n int, o SlurmOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/bash\n# sqnet sweep %s: %d cells, one array task each (written by sqnet sweep run --backend slurm)\n",
		g.Name, n)
	fmt.Fprintf(&b, "#SBATCH --job-name=%s\n#SBATCH --array=0-%d\n#SBATCH --output=%s\n", JobName(g), n-1,
		filepath.Join(dir, "slurm", "%A_%a.out"))
	if o.Gres != "" {
		fmt.Fprintf(&b, "#SBATCH --gres=%s\n", o.Gres)
	}
	if o.Partition != "" {
		fmt.Fprintf(&b, "#SBATCH --partition=%s\n", o.Partition)
	}
	if o.Time != "" {
		fmt.Fprintf(&b, "#SBATCH --time=%s\n", o.Time)
	}
	if o.CPUs > 0 {
		fmt.Fprintf(&b, "#SBATCH --cpus-per-task=%d\n", o.CPUs)
	}
	for _, e := range o.Extra {
		fmt.Fprintf(&b, "#SBATCH %s\n", e)
	}
	// ${device[@]+…} expands an empty array under set -u on every bash (before 4.4 "${device[@]}" would not).
	b.WriteString("set -eu\ndevice=()\n")
	if o.Gres != "" {
		b.WriteString("ordinal=${GPU_DEVICE_ORDINAL:-${CUDA_VISIBLE_DEVICES:-}}\n" +
			"if [ -z \"${SQNET_DEVICE:-}\" ] && [ -n \"$ordinal\" ]; then device=(--device \"gpu:${ordinal%%,*}\"); fi\n")
	}
	fmt.Fprintf(&b, "exec %s sweep exec --dir %s --list %s --index \"$SLURM_ARRAY_TASK_ID\" "+
		"--job \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\" ${device[@]+\"${device[@]}\"}\n", shellQuote(o.Bin), shellQuote(dir),
		shellQuote(list))
	return b.String()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// SubmitSlurm submits cells as one array job (sbatch, from this host: a login node with the sweep folder on a
// file system the compute nodes share) and records the submission.
func SubmitSlurm(dir string, g *Grid, cells []Cell, o SlurmOptions) (*Submission, error) {
	if len(cells) == 0 {
		return nil, errors.New("no cells to submit")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	name := stamp()
	list := filepath.Join(abs, "slurm", name+".cells")
	if err := writeList(list, cells); err != nil {
		return nil, err
	}
	script := filepath.Join(abs, "slurm", name+".sh")
	if err := atomicfile.Write(script, []byte(SlurmScript(g, abs, list, len(cells), o)), 0o755); err != nil {
		return nil, err
	}
	out, err := exec.Command("sbatch", "--parsable", script).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("sbatch %s: %v: %s", script, err, strings.TrimSpace(string(out)))
	}
	job := strings.TrimSpace(strings.Split(strings.TrimSpace(string(out)), ";")[0])
	if _, err := strconv.Atoi(job); err != nil {
		return nil, fmt.Errorf("sbatch %s printed %q, not a job id", script, out)
	}
	s := &Submission{Job: job, List: list, Script: script, Cells: len(cells), Submitted: time.Now().UTC().Round(time.Second)}
	subs, err := Submissions(dir)
	if err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(append(subs, *s), "", "  ")
	return s, atomicfile.Write(filepath.Join(abs, "slurm", "jobs.json"), append(b, '\n'), 0o644)
}

// Submissions reads the sweep's Slurm submissions (none: nil).
func Submissions(dir string) ([]Submission, error) {
	b, err := os.ReadFile(filepath.Join(dir, "slurm", "jobs.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s []Submission
	return s, json.Unmarshal(b, &s)
}

// SlurmQueue asks squeue which of the sweep's array tasks are still pending or running and returns them by cell
// id ("JOB_TASK STATE"). Without submissions it asks nothing.
func SlurmQueue(dir string, g *Grid) (map[string]string, error) {
	subs, err := Submissions(dir)
	if err != nil || len(subs) == 0 {
		return nil, err
	}
	out, err := exec.Command("squeue", "-h", "-r", "--name="+JobName(g), "-o", "%i %T").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("squeue: %v: %s", err, strings.TrimSpace(string(out)))
	}
	lists := map[string][]Cell{}
	q := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		job, task, ok := strings.Cut(f[0], "_")
		k, err := strconv.Atoi(task)
		if !ok || err != nil {
			continue
		}
		for _, s := range subs {
			if s.Job != job {
				continue
			}
			cells, seen := lists[job]
			if !seen {
				if cells, err = ReadList(s.List); err != nil {
					return nil, err
				}
				lists[job] = cells
			}
			if k < len(cells) {
				q[cells[k].ID] = "slurm " + f[0] + " " + strings.ToLower(f[1])
			}
		}
	}
	return q, nil
}

// Survey is Status with the Slurm queue asked first (SlurmQueue: nothing is asked without submissions), so the
// cells a Slurm job still holds show as queued or running whatever the backend that looks.
func Survey(dir string, g *Grid, cells []Cell) ([]CellStatus, error) {
	q, err := SlurmQueue(dir, g)
	if err != nil {
		return nil, err
	}
	return Status(dir, cells, q)
}
