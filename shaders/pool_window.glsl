// pool_window.glsl: pool4, the 2×2 max-pooling rule of the convolutions that pool their own output (conv.comp's and
// conv_direct.comp's POOL variants), the one maxpool.comp's window() applies.

// pool4 returns the maximum of a window's four values (row-major) and sets k to its position: a strictly larger
// value or any NaN replaces the current maximum (PyTorch's rule).
float pool4(vec4 v, out uint k) {
    float best = v[0];
    k = 0;
    [[unroll]] for (uint j = 1; j < 4; j++) {
        if (v[j] > best || isnan(v[j])) {
            best = v[j];
            k = j;
        }
    }
    return best;
}
