// conv_window.glsl: the input window of conv_direct.comp and conv_direct_filter.comp — rows y0 .. y0+KH−1,
// columns x0 .. x0+PW−1 of one channel of a source plane SH × SW — read as float texels (SRC) or, in the VEC4
// variants, as aligned vec4 texels (SRC4) with PADX the column offset of the window's first pixel. The includer
// declares the source binding and the constants P, NI, KH, KW, PADX and PW = P + KW − 1.
// Per invocation: the image b, output row oy and first pixel ox0; the window's top-left (y0, x0) in the source
// plane (SH × SW) and which of its columns lie inside it. The window has WROWS rows: KH unless the includer defines
// it (conv_direct's POOL variant reads KH + 1, the rows of two output rows).
#if !defined(WROWS)
#define WROWS KH
#endif
uint b, oy, ox0;
int y0, x0;
bool colok[PW];
uint SH, SW;

// loadWindow reads rows y0 .. y0+WROWS−1, columns x0 .. x0+PW−1 of source channel i into win (0 outside the image).
void loadWindow(uint i, out float win[WROWS][PW]) {
#if VEC4
    // Aligned vec4s covering each row's segment, which starts SHIFT floats into the first; a vec4 wholly outside
    // the row is fetched at the row's nearest end and masked like any outside column (rows outside the plane
    // likewise: every fetch stays inside the texel view).
    const int SHIFT = PADX - 4 * (PADX >> 2); // PADX mod 4 (floored): ox0 is a multiple of 4
    const uint NV = (uint(SHIFT) + PW + 3) / 4;
    const int xa = x0 - SHIFT;
#endif
    [[unroll]] for (uint r = 0; r < WROWS; r++) {
        const int sy = y0 + int(r);
        const bool rowok = sy >= 0 && sy < int(SH);
        const uint base = ((b * NI + i) * SH + uint(clamp(sy, 0, int(SH) - 1))) * SW; // a row inside the plane
#if VEC4
        [[unroll]] for (uint q = 0; q < NV; q++) {
            const vec4 v = SRC4((base + uint(clamp(xa + 4 * int(q), 0, int(SW) - 4))) / 4);
            [[unroll]] for (uint e = 0; e < 4; e++) {
                const int t = 4 * int(q) + int(e) - SHIFT;
                if (t >= 0 && t < int(PW)) {
                    win[r][t] = rowok && colok[t] ? v[e] : 0.0;
                }
            }
        }
#else
        [[unroll]] for (uint t = 0; t < PW; t++) {
            const bool ok = rowok && colok[t];
            const float v = SRC(ok ? base + uint(x0 + int(t)) : 0u);
            win[r][t] = ok ? v : 0.0;
        }
#endif
    }
}

