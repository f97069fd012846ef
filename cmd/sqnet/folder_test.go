package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFolderDataset trains on an ImageNet-style JPEG folder and evaluates the checkpoint on its val split: the
// commands a user with Tiny-ImageNet runs, on generated files in the real layout; and a folder without a val
// split, or none at all, is one line and exit 2 before any output.
func TestFolderDataset(t *testing.T) {
	root := t.TempDir()
	colours := []color.RGBA{{220, 30, 30, 255}, {30, 200, 40, 255}}
	for split, n := range map[string]int{"train": 20, "val": 4} {
		for c, class := range []string{"n01443537", "n01629819"} {
			for i := 0; i < n; i++ {
				img := image.NewRGBA(image.Rect(0, 0, 20+i%3, 18+i%4))
				for y := 0; y < img.Bounds().Dy(); y++ {
					for x := 0; x < img.Bounds().Dx(); x++ {
						img.Set(x, y, colours[c])
					}
				}
				p := filepath.Join(root, "data", split, class, fmt.Sprintf("%s_%d.JPEG", class, i))
				os.MkdirAll(filepath.Dir(p), 0o755)
				f, err := os.Create(p)
				if err != nil {
					t.Fatal(err)
				}
				jpeg.Encode(f, img, nil)
				f.Close()
			}
		}
	}
	data, ck := filepath.Join(root, "data"), filepath.Join(root, "m.safetensors")
	if _, stderr, code := sqnet(t, nil, "train", "--dataset", "folder", "--data", data, "--image-size", "12",
		"--batch", "10", "--epochs", "1", "--out", ck); code != 0 {
		t.Fatal(stderr)
	}
	out := filepath.Join(root, "eval")
	if _, stderr, code := sqnet(t, nil, "eval", "--model", ck, "--data", data, "--suite", "smoke", "--limit", "6",
		"--out", out); code != 0 {
		t.Fatal(stderr)
	}
	raw, err := os.ReadFile(filepath.Join(out, "eval.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		N       int    `json:"n"`
		Dataset string `json:"dataset"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || doc.N != 6 || doc.Dataset != "folder" {
		t.Fatalf("eval.json: %+v, %v", doc, err)
	}
	os.RemoveAll(filepath.Join(data, "val"))
	for _, args := range [][]string{
		{"train", "--dataset", "folder", "--out", filepath.Join(root, "x.safetensors")},
		{"train", "--dataset", "folder", "--data", filepath.Join(data, "train"), "--out", filepath.Join(root, "x.safetensors")},
		{"eval", "--model", ck, "--data", data, "--suite", "smoke"},
	} {
		stdout, stderr, code := sqnet(t, []string{"SQNET_DATA="}, args...)
		if code != 2 || stdout != "" || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and one line", args, code, stdout, stderr)
		}
	}
}

// writeCIFAR writes CIFAR-10's binary batches (data_batch_1…5.bin, test_batch.bin) with n records each: a label
// byte, then the R, G and B planes of 32×32; a class is a colour, with noise.
func writeCIFAR(t *testing.T, dir string, n int) {
	t.Helper()
	for _, name := range []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
		"data_batch_5.bin", "test_batch.bin"} {
		var b []byte
		for i := 0; i < n; i++ {
			label := byte(i % 10)
			b = append(b, label)
			for c := 0; c < 3; c++ {
				for p := 0; p < 32*32; p++ {
					b = append(b, byte(int(label)*25*(c+1)%256)^byte((p*7+i)%16))
				}
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCIFARRecipe runs the CIFAR-10 recipe — SGD with Nesterov momentum, weight decay, a cosine schedule and the
// default crop-flip augmentation — on generated files in CIFAR's binary format, and evaluates the checkpoint.
func TestCIFARRecipe(t *testing.T) {
	if testing.Short() {
		t.Skip("-short (SwiftShader computes CIFAR-sized convolutions ~20× slower): the lavapipe pass runs it")
	}
	dir := t.TempDir()
	writeCIFAR(t, dir, 10)
	ck := filepath.Join(dir, "c.safetensors")
	if _, stderr, code := sqnet(t, nil, "train", "--dataset", "cifar10", "--data", dir, "--test-limit", "10",
		"--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--nesterov", "--weight-decay", "5e-4",
		"--lr-schedule", "cosine", "--batch", "25", "--epochs", "1", "--out", ck); code != 0 {
		t.Fatal(stderr)
	}
	stdout, stderr, code := sqnet(t, nil, "eval", "--model", ck, "--data", dir, "--suite", "smoke", "--limit", "2",
		"--eps", "0.031")
	if code != 0 || !strings.Contains(stdout, "on 2 cifar10/test") {
		t.Fatalf("eval: exit %d\n%s%s", code, stdout, stderr)
	}
	// The recipe is recorded: a resume with another schedule is refused.
	if _, stderr, code := sqnet(t, nil, "train", "--resume", ck, "--data", dir, "--lr-schedule", "piecewise",
		"--out", ck); code != 2 || !strings.Contains(stderr, "cosine") {
		t.Fatalf("resume with another schedule: exit %d, %q", code, stderr)
	}
}

// TestReproduceCIFAR runs the reproduction's smoke budget on generated files in CIFAR-10's binary format: the one
// command a user with the real batches runs (with --budget paper), at CIFAR's ε = 8/255 and PGD-10 of 2/255.
func TestReproduceCIFAR(t *testing.T) {
	if testing.Short() {
		t.Skip("-short (SwiftShader computes CIFAR-sized convolutions ~20× slower): the lavapipe pass runs it")
	}
	dir := t.TempDir()
	writeCIFAR(t, dir, 10)
	out := filepath.Join(dir, "out")
	if _, stderr, code := sqnet(t, nil, "reproduce", "cifar10", "--data", dir, "--budget", "smoke", "--out", out); code != 0 {
		t.Fatal(stderr)
	}
	raw, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Dataset string  `json:"dataset"`
		Eps     float64 `json:"eps"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || doc.Dataset != "cifar10" || math.Abs(doc.Eps-8.0/255) > 1e-6 {
		t.Fatalf("results.json: %+v, %v", doc, err)
	}
	md, _ := os.ReadFile(filepath.Join(out, "results.md"))
	if !strings.Contains(string(md), "# sqnet reproduce cifar10") {
		t.Fatalf("results.md:\n%s", md)
	}
}
