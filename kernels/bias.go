package kernels

import "github.com/sqnet/sqnet/vk"

// biasGradPush mirrors bias_grad.comp's push constants.
type biasGradPush struct {
	Batch, Channels, Inner uint32
	Flags                  uint32
}

// BiasGrad records db[c] = Σ_{b,p} dy[b,c,p] for dy [batch, channels, inner] (NCHW with inner = H·W, or a dense
// layer's [batch, features] with inner = 1), summed in a fixed order. With accumulate it adds to db.
func (l *Lib) BiasGrad(r *vk.Recorder, dy, db vk.Range, batch, channels, inner int, accumulate bool) error {
	const op = "bias gradient"
	if err := positive(op, Dim{"batch", batch}, Dim{"channels", channels}, Dim{"inner", inner}); err != nil {
		return err
	}
	if err := needEach(op, sized{"dy", dy, batch * channels * inner}, sized{"db", db, channels}); err != nil {
		return err
	}
	p := biasGradPush{uint32(batch), uint32(channels), uint32(inner), 0}
	if accumulate {
		p.Flags = gemmAccumulate
	}
	if inner == 1 {
		// Contiguous channels: one invocation each (see bias_grad.comp's COLS).
		return l.dispatch1D(r, "bias_grad_cols", channels, p, []vk.Access{vk.Read, vk.ReadWrite}, dy, db)
	}
	// 64 invocations per channel: enough to split the batch·pixels sum on a CPU, a modest workgroup on a GPU.
	lx := min(64, l.dev.Info().Limits.MaxWorkgroupInvocations, l.dev.Info().Limits.MaxWorkgroupSize[0])
	shader, per := vec4Variant("bias_grad", inner, dy) // four terms a read (see bias_grad.comp's VEC4)
	in := vk.Read
	if per == 4 && biasGradTexels && l.texelFits(vk.Texel4, dy) {
		shader, in = shader+"_t", vk.Texel4 // as vec4 texels (see bias_grad.comp's TEX)
	}
	pipe, err := l.pipeline(vk.PipelineSpec{Shader: shader, Bindings: []vk.Access{in, vk.ReadWrite},
		PushSize: pushSize(p), Local: [3]uint32{lx, 1, 1}})
	if err != nil {
		return err
	}
	maxX := int(l.dev.Info().Limits.MaxWorkgroupCount[0])
	groups := [3]uint32{uint32(min(channels, maxX)), uint32((channels + maxX - 1) / maxX), 1}
	return r.Dispatch(pipe, groups, p, dy, db)
}

// biasGradTexels lets BiasGrad read vec4 texels (bias_grad4_t); tests turn it off to compare the two reads.
var biasGradTexels = true

// BiasGradRef is the CPU reference of BiasGrad (float64 sums).
func BiasGradRef(dy []float32, batch, channels, inner int) []float32 {
	acc := make([]float64, channels)
	for b := 0; b < batch; b++ {
		for c := 0; c < channels; c++ {
			for p := 0; p < inner; p++ {
				acc[c] += float64(dy[(b*channels+c)*inner+p])
			}
		}
	}
	return to32(acc)
}
