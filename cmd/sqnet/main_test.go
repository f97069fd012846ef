package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var sqnetBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sqnet-cli-")
	if err != nil {
		panic(err)
	}
	sqnetBin = filepath.Join(dir, "sqnet")
	if out, err := exec.Command("go", "build", "-o", sqnetBin, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// sqnet runs the CLI with extra environment variables and returns stdout, stderr and the exit code.
func sqnet(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(sqnetBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// TestBadEnvironment: each broken setup gives exactly one line on stderr naming the problem and exit code 2,
// never a panic or a cgo trace.
func TestBadEnvironment(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no loader", []string{"SQNET_VULKAN_LIB=/nonexistent/libvulkan.so.1"}, []string{"devices"},
			"no Vulkan loader"},
		{"no loader selftest", []string{"SQNET_VULKAN_LIB=/nonexistent/libvulkan.so.1"}, []string{"selftest"},
			"apt-get install libvulkan1"},
		{"no ICD", []string{"VK_ICD_FILENAMES=/nonexistent/icd.json", "VK_DRIVER_FILES=/nonexistent/icd.json"},
			[]string{"selftest"}, "no Vulkan device found"},
		{"device index out of range", nil, []string{"selftest", "--device", "99"}, "no such device: device 99"},
		{"device name unknown", nil, []string{"devices", "--device", "no-such-gpu"}, `no device name contains "no-such-gpu"`},
		{"device from env", []string{"SQNET_DEVICE=no-such-gpu"}, []string{"selftest"}, "no such device"},
		{"unknown flag", nil, []string{"devices", "--bogus"}, "unknown flag: --bogus"},
		{"unknown command", nil, []string{"bogus"}, `unknown command "bogus"`},
		{"stray argument", nil, []string{"devices", "extra"}, "takes no arguments"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := sqnet(t, c.env, c.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2 (stderr %q)", code, stderr)
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "sqnet: ") || !strings.Contains(lines[0], c.want) {
				t.Errorf("stderr %q: want one line \"sqnet: ...%s...\"", stderr, c.want)
			}
			if strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "panic") {
				t.Errorf("stderr carries a trace: %q", stderr)
			}
		})
	}
}

func TestDevicesJSON(t *testing.T) {
	stdout, stderr, code := sqnet(t, nil, "devices", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		Devices []struct {
			Index  int    `json:"index"`
			Name   string `json:"name"`
			Type   string `json:"type"`
			Limits struct {
				MaxInvocations uint32 `json:"max_workgroup_invocations"`
				MaxRange       uint64 `json:"max_storage_buffer_range"`
			} `json:"limits"`
			Heaps []struct {
				Size uint64 `json:"size_bytes"`
			} `json:"heaps"`
		} `json:"devices"`
		Picked *int `json:"picked"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("devices --json printed invalid JSON: %v\n%s", err, stdout)
	}
	if len(doc.Devices) == 0 || doc.Picked == nil || *doc.Picked >= len(doc.Devices) {
		t.Fatalf("no devices or no valid pick: %s", stdout)
	}
	d := doc.Devices[*doc.Picked]
	if d.Name == "" || d.Type == "" || d.Limits.MaxInvocations < 128 || d.Limits.MaxRange < 1<<27 || len(d.Heaps) == 0 {
		t.Errorf("picked device is missing facts (the spec guarantees ≥128 invocations, ≥128 MiB range): %+v", d)
	}
	table, _, code := sqnet(t, nil, "devices")
	if code != 0 || !strings.Contains(table, d.Name) || !strings.Contains(table, "sqnet would use device") {
		t.Errorf("devices table (exit %d) does not name %q and the pick:\n%s", code, d.Name, table)
	}
}

func TestSelftest(t *testing.T) {
	stdout, stderr, code := sqnet(t, nil, "selftest", "--validate")
	if code != 0 || !strings.Contains(stdout, "self-test passed") || !strings.Contains(stdout, "validation on") {
		t.Fatalf("selftest --validate: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if strings.Count(stdout, "PASS") != 3 {
		t.Errorf("want 3 passing checks:\n%s", stdout)
	}
}
