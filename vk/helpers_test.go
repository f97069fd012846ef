package vk_test

import (
	"os"
	"path/filepath"
)

func filepathGlob(dir, pattern string) ([]os.DirEntry, error) {
	ents, err := os.ReadDir(dir)
	var out []os.DirEntry
	for _, e := range ents {
		if ok, _ := filepath.Match(pattern, e.Name()); ok && !e.IsDir() {
			if info, err := e.Info(); err == nil && info.Size() > 0 {
				out = append(out, e)
			}
		}
	}
	return out, err
}
