package graph

import (
	"github.com/sqnet/sqnet/kernels"
	"github.com/sqnet/sqnet/vk"
)

// AddInto appends dst += src (same shapes), e.g. summing EOT's gradients.
func (g *Graph) AddInto(dst, src *Tensor) { g.Axpy(dst, src, 1) }

// Axpy appends dst += a·src (same shapes).
func (g *Graph) Axpy(dst, src *Tensor, a float32) {
	if !same(dst, src) {
		g.fail("axpy %s into %s", src, dst)
		return
	}
	g.Add(&Op{Name: "axpy into " + dst.Name, In: []*Tensor{src, dst}, Out: []*Tensor{dst},
		Run: func(r *vk.Recorder, at Binder) error { return g.lib.Axpy(r, at(src), at(dst), dst.Elems(), a) }})
}

// accumulate appends dst += src (gradients of a tensor with several consumers).
func (g *Graph) accumulate(src, dst *Tensor) { g.Axpy(dst, src, 1) }

// ReLU returns max(x, 0).
func (g *Graph) ReLU(x *Tensor) *Tensor {
	y := g.tensor(x.Name+".relu", x.Shape, Temp, F32)
	g.Add(&Op{Name: "relu", In: []*Tensor{x}, Out: []*Tensor{y},
		Run: func(r *vk.Recorder, at Binder) error { return g.lib.ReLU(r, at(x), at(y), x.Elems()) },
		Grad: func(d []*Tensor) ([]*Tensor, error) {
			dx := g.tensor(x.Name+".grad", x.Shape, Temp, F32)
			g.Add(&Op{Name: "relu backward", In: []*Tensor{x, d[0]}, Out: []*Tensor{dx},
				Run: func(r *vk.Recorder, at Binder) error {
					return g.lib.ReLUBackward(r, at(x), at(d[0]), at(dx), x.Elems())
				}})
			return []*Tensor{dx}, nil
		}})
	return y
}

// MaxPool2x2 pools NCHW x with 2×2 windows, stride 2.
func (g *Graph) MaxPool2x2(x *Tensor) *Tensor { return g.maxPool(x, false) }

// ReLUMaxPool2x2 is MaxPool2x2(ReLU(x)) as one op (a model's conv → ReLU → pool): one pass forward, one backward,
// and no ReLU output or ReLU gradient tensor in between. The values are the same as the two ops' (ReLU commutes
// with the window maximum), for finite inputs.
func (g *Graph) ReLUMaxPool2x2(x *Tensor) *Tensor { return g.maxPool(x, true) }

// maxPool adds 2×2 max pooling of x, with ReLU fused in front when relu is set.
func (g *Graph) maxPool(x *Tensor, relu bool) *Tensor {
	name, suffix := "maxpool", ".pool"
	if relu {
		name, suffix = "relu+maxpool", ".relu.pool"
	}
	if len(x.Shape) != 4 || x.Shape[2] < 2 || x.Shape[3] < 2 {
		return g.fail("%s %s: want an NCHW input of at least 2×2", name, x)
	}
	b, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	y := g.tensor(x.Name+suffix, []int{b, c, h / 2, w / 2}, Temp, F32)
	g.Add(&Op{Name: name, In: []*Tensor{x}, Out: []*Tensor{y},
		Run: func(r *vk.Recorder, at Binder) error {
			if relu {
				return g.lib.ReLUMaxPool2x2(r, at(x), at(y), b, c, h, w)
			}
			return g.lib.MaxPool2x2(r, at(x), at(y), b, c, h, w)
		},
		Grad: func(d []*Tensor) ([]*Tensor, error) {
			// The backward finds each window's maximum in x again (no argmax tensor is kept from the forward).
			dx := g.tensor(x.Name+".grad", x.Shape, Temp, F32)
			g.Add(&Op{Name: name + " backward", In: []*Tensor{x, d[0]}, Out: []*Tensor{dx},
				Run: func(r *vk.Recorder, at Binder) error {
					if relu {
						return g.lib.ReLUMaxPool2x2Backward(r, at(x), at(d[0]), at(dx), b, c, h, w)
					}
					return g.lib.MaxPool2x2Backward(r, at(x), at(d[0]), at(dx), b, c, h, w)
				}})
			return []*Tensor{dx}, nil
		}})
	return y
}

// Reshape returns a view of x with another shape of the same size (flatten is Reshape(x, B, −1)); it records
// nothing and copies nothing. One dimension may be −1 and is inferred.
func (g *Graph) Reshape(x *Tensor, shape ...int) *Tensor {
	shape = append([]int(nil), shape...)
	infer, known := -1, 1
	for i, d := range shape {
		switch {
		case d == -1 && infer < 0:
			infer = i
		case d <= 0:
			return g.fail("reshape %s to %v: bad dimension %d", x, shape, d)
		default:
			known *= d
		}
	}
	if infer >= 0 {
		if x.Elems()%known != 0 {
			return g.fail("reshape %s to %v: %d elements do not divide", x, shape, x.Elems())
		}
		shape[infer] = x.Elems() / known
	}
	v := &Tensor{Shape: shape}
	if v.Elems() != x.Elems() {
		return g.fail("reshape %s to %v: %d elements, want %d", x, shape, v.Elems(), x.Elems())
	}
	y := g.tensor(x.Name+".view", shape, x.root().Kind, x.DType)
	y.alias = x
	// The view op records nothing; it exists so that autodiff passes the gradient through, reshaped back.
	g.Add(&Op{Name: "reshape", In: []*Tensor{x}, Out: []*Tensor{y},
		Run: func(*vk.Recorder, Binder) error { return nil },
		Grad: func(d []*Tensor) ([]*Tensor, error) {
			if _, ok := g.SeedScale(d[0]); ok {
				return nil, errSeedThroughView
			}
			return []*Tensor{g.Reshape(d[0], x.Shape...)}, nil
		}})
	return y
}

// Correct returns a kept uint32 [1] tensor counting the rows of logits [B, K] whose argmax equals the label.
func (g *Graph) Correct(logits, labels *Tensor) *Tensor {
	if len(logits.Shape) != 2 || labels.DType != U32 || len(labels.Shape) != 1 || labels.Shape[0] != logits.Shape[0] {
		return g.fail("correct: logits %s must be [B, K] and labels %s uint32 [B]", logits, labels)
	}
	b, k := logits.Shape[0], logits.Shape[1]
	pred := g.tensor("pred", []int{b}, Temp, U32)
	count := g.tensor("correct", []int{1}, State, U32)
	g.Add(&Op{Name: "correct", In: []*Tensor{logits, labels}, Out: []*Tensor{pred, count},
		Run: func(r *vk.Recorder, at Binder) error {
			return g.lib.Correct(r, at(logits), at(labels), at(pred), at(count), b, k)
		}})
	return count
}

// SoftmaxCrossEntropy returns the per-example loss [B] of logits [B, K] against uint32 labels [B].
func (g *Graph) SoftmaxCrossEntropy(logits, labels *Tensor) *Tensor {
	b, k := dims2(logits)
	return g.lossOp("softmax cross-entropy", "loss", logits, labels, nil, 1,
		func(r *vk.Recorder, logits, labels, _, loss vk.Range) error {
			return g.lib.SoftmaxXent(r, logits, labels, loss, b, k)
		},
		func(r *vk.Recorder, logits, labels, _, up, dl vk.Range, scale float32) error {
			return g.lib.SoftmaxXentBackward(r, logits, labels, up, dl, b, k, scale)
		})
}

// CWMargin returns the per-example Carlini–Wagner margin min(max_{j≠y} z_j − z_y, kappa) [B] of logits [B, K]
// against uint32 labels [B]: positive once an example is misclassified; attacks ascend it.
func (g *Graph) CWMargin(logits, labels *Tensor, kappa float32) *Tensor {
	b, k := dims2(logits)
	return g.lossOp("cw margin", "cw", logits, labels, nil, 2,
		func(r *vk.Recorder, logits, labels, _, loss vk.Range) error {
			return g.lib.CWLoss(r, logits, labels, loss, b, k, kappa)
		},
		func(r *vk.Recorder, logits, labels, _, up, dl vk.Range, scale float32) error {
			return g.lib.CWLossBackward(r, logits, labels, up, dl, b, k, kappa, scale)
		})
}

// DLRLoss returns AutoAttack's per-example loss [B] of the given kind (kernels.DLR, DLRTargeted, TargetMargin) of
// logits [B, K] against uint32 labels [B] and, for the targeted kinds, uint32 targets [B] (nil for DLR).
func (g *Graph) DLRLoss(kind kernels.DLRKind, logits, labels, targets *Tensor) *Tensor {
	b, k := dims2(logits)
	if kind.Targeted() != (targets != nil) {
		return g.fail("%s loss: targets %v for a kind that takes them: %v", kind, targets, kind.Targeted())
	}
	return g.lossOp(kind.String()+" loss", kind.String(), logits, labels, targets, kind.MinClasses(),
		func(r *vk.Recorder, logits, labels, targets, loss vk.Range) error {
			return g.lib.DLRLoss(r, kind, logits, labels, targets, loss, b, k)
		},
		func(r *vk.Recorder, logits, labels, targets, up, dl vk.Range, scale float32) error {
			return g.lib.DLRLossBackward(r, kind, logits, labels, targets, up, dl, b, k, scale)
		})
}

// dims2 returns the two dimensions of a [B, K] tensor (zeros otherwise; lossOp reports the shape).
func dims2(t *Tensor) (int, int) {
	if len(t.Shape) != 2 {
		return 0, 0
	}
	return t.Shape[0], t.Shape[1]
}

// lossOp adds a per-example loss of logits [B, K ≥ minK], uint32 labels [B] and optional uint32 targets [B]. Its
// backward takes the reverse-mode seed through the kernel's scale-only path (no buffer of ones) and any other
// upstream gradient as a buffer. The kernels get the zero Range for absent targets.
func (g *Graph) lossOp(name, out string, logits, labels, targets *Tensor, minK int,
	fwd func(r *vk.Recorder, logits, labels, targets, loss vk.Range) error,
	bwd func(r *vk.Recorder, logits, labels, targets, up, dl vk.Range, scale float32) error) *Tensor {
	if len(logits.Shape) != 2 || logits.Shape[1] < minK || labels.DType != U32 || len(labels.Shape) != 1 ||
		labels.Shape[0] != logits.Shape[0] {
		return g.fail("%s: logits %s must be [B, K ≥ %d] and labels %s uint32 [B]", name, logits, minK, labels)
	}
	if targets != nil && (targets.DType != U32 || !same(targets, labels)) {
		return g.fail("%s: targets %s must be uint32 [B] like the labels %s", name, targets, labels)
	}
	in := []*Tensor{logits, labels}
	if targets != nil {
		in = append(in, targets)
	}
	opt := func(at Binder) vk.Range {
		if targets == nil {
			return vk.Range{}
		}
		return at(targets)
	}
	loss := g.tensor(out, []int{logits.Shape[0]}, Temp, F32)
	g.Add(&Op{Name: name, In: in, Out: []*Tensor{loss},
		Run: func(r *vk.Recorder, at Binder) error { return fwd(r, at(logits), at(labels), opt(at), at(loss)) },
		Grad: func(d []*Tensor) ([]*Tensor, error) {
			dl := g.tensor(logits.Name+".grad", logits.Shape, Temp, F32)
			scale, isSeed := g.SeedScale(d[0])
			bin := append([]*Tensor(nil), in...)
			if !isSeed {
				scale = 1
				bin = append(bin, d[0])
			}
			g.Add(&Op{Name: name + " backward", In: bin, Out: []*Tensor{dl},
				Run: func(r *vk.Recorder, at Binder) error {
					var up vk.Range
					if !isSeed {
						up = at(d[0])
					}
					return bwd(r, at(logits), at(labels), opt(at), up, at(dl), scale)
				}})
			grads := make([]*Tensor, len(in)) // nothing flows into labels or targets
			grads[0] = dl
			return grads, nil
		}})
	return loss
}

// Argmax returns a kept uint32 [B] tensor of each row's predicted class.
func (g *Graph) Argmax(logits *Tensor) *Tensor {
	if len(logits.Shape) != 2 {
		return g.fail("argmax: logits %s must be [B, K]", logits)
	}
	b, k := logits.Shape[0], logits.Shape[1]
	pred := g.tensor("pred", []int{b}, State, U32)
	g.Add(&Op{Name: "argmax", In: []*Tensor{logits}, Out: []*Tensor{pred},
		Run: func(r *vk.Recorder, at Binder) error { return g.lib.Argmax(r, at(logits), at(pred), b, k) }})
	return pred
}

// Copy records dst = src (same shape), e.g. an attack's starting point x_adv = x0.
func (g *Graph) Copy(dst, src *Tensor) {
	if !same(dst, src) {
		g.fail("copy: %s into %s", src, dst)
		return
	}
	g.Add(&Op{Name: "copy " + dst.Name, In: []*Tensor{src}, Out: []*Tensor{dst},
		Run: func(r *vk.Recorder, at Binder) error { return r.Copy(at(dst), at(src)) }})
}
