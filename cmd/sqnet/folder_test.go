package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
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
