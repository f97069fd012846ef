package progressfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestUpdateThrottlesAndReads(t *testing.T) {
	p := filepath.Join(t.TempDir(), "progress.json")
	w := &Writer{Path: p}
	if err := w.Update(Status{Phase: "train", Epoch: 1, Epochs: 3, Step: 10, Steps: 300, ETASeconds: 29}, false); err != nil {
		t.Fatal(err)
	}
	// Within Every of the last write: skipped unless forced.
	if err := w.Update(Status{Phase: "train", Step: 11}, false); err != nil {
		t.Fatal(err)
	}
	s, err := Read(p)
	if err != nil || s.Step != 10 || s.Epochs != 3 || s.ETASeconds != 29 || s.Updated.IsZero() {
		t.Fatalf("read %+v, %v; want the first write", s, err)
	}
	if err := w.Update(Status{Phase: "eval", Attack: "apgd-ce", Done: 5, Total: 9}, true); err != nil {
		t.Fatal(err)
	}
	if s, err = Read(p); err != nil || s.Phase != "eval" || s.Attack != "apgd-ce" || s.Done != 5 {
		t.Fatalf("forced write: %+v, %v", s, err)
	}
	var none Writer
	if err := none.Update(Status{}, true); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, []byte("{"), 0o644)
	if _, err := Read(p); err == nil {
		t.Fatal("a torn file parsed")
	}
}
