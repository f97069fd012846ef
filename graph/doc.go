// Package graph holds tensors, the op graph, shape inference, reverse-mode autodiff, the buffer-lifetime memory
// planner and the scheduler that records a whole training step into one command buffer.
package graph
