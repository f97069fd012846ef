#version 450
// viewgrid: draws the `sqnet view` picture, one invocation per pixel. Each example is a column of three cells —
// clean image, adversarial image, perturbation amplified to full range (blue −ε … white 0 … red +ε) — each cell
// followed by a label strip: the predicted digit and a green (right) or red (wrong) mark for the first two, the true
// label for the third. The geometry is kernels.GridLayout's; kernels.ViewGridRef is the CPU reference.
#include "common.glsl"
SQNET_LOCAL_SIZE

// Push constants (Go mirror: kernels.viewPush).
layout(push_constant) uniform Push {
    uint n;      // examples
    uint h, w;   // image rows and columns (one channel)
    uint cols;   // examples per grid row
    uint scale;  // screen pixels per image pixel
    uint glyph;  // screen pixels per font pixel
    uint width;  // picture width in pixels
    uint height; // picture height in pixels
    uint bgra;   // 1: byte 0 is blue (B8G8R8A8), 0: byte 0 is red
    float eps;   // the perturbation that maps to full colour
} pc;

layout(std430, set = 0, binding = 0) readonly buffer Clean { float clean[]; };
layout(std430, set = 0, binding = 1) readonly buffer Adv { float adv[]; };
layout(std430, set = 0, binding = 2) readonly buffer Info { uint info[]; }; // per example: label, pred clean, pred adv
layout(std430, set = 0, binding = 3) writeonly buffer Out { uint pix[]; };

const uint PAD = 4u;         // pixels around and between examples
const uint STRIP_ROWS = 7u;  // label strip height in font pixels: a 5-row glyph with one row above and below

// Digits 0-9 in a 3×5 font, row-major from the top-left, bit 14 first.
const uint FONT[10] = uint[10](
    0x7B6Fu, 0x2C97u, 0x73E7u, 0x73CFu, 0x5BC9u, 0x79CFu, 0x79EFu, 0x7249u, 0x7BEFu, 0x7BCFu);

uint gray(float v) {
    uint g = uint(clamp(v, 0.0, 1.0) * 255.0 + 0.5);
    return g | (g << 8) | (g << 16);
}

// rgb packs r, g, b (0-255) as the red-first word; pack() swaps to the surface's order at the end.
uint rgb(uint r, uint g, uint b) { return r | (g << 8) | (b << 16); }

uint diverging(float d) {
    float t = pc.eps > 0.0 ? clamp(d / pc.eps, -1.0, 1.0) : 0.0;
    uint f = uint((1.0 - abs(t)) * 255.0 + 0.5);
    return t >= 0.0 ? rgb(255u, f, f) : rgb(f, f, 255u);
}

uint pack(uint c) {
    if (pc.bgra != 0u) {
        c = (c & 0x00FF00u) | ((c & 0xFFu) << 16) | ((c >> 16) & 0xFFu);
    }
    return c | 0xFF000000u;
}

// glyphPixel reports whether font pixel (gx, gy) of digit d is set.
bool glyphPixel(uint d, uint gx, uint gy) {
    return gx < 3u && gy < 5u && d < 10u && ((FONT[d] >> (14u - (gy * 3u + gx))) & 1u) != 0u;
}

void main() {
    uint i = sqnet_flat_id();
    if (i >= pc.width * pc.height) {
        return;
    }
    uint x = i % pc.width, y = i / pc.width;
    uint c = rgb(32u, 32u, 32u); // background
    uint cw = pc.w * pc.scale, ih = pc.h * pc.scale;
    uint ch = ih + STRIP_ROWS * pc.glyph;
    uint bw = cw + PAD, bh = 3u * ch + PAD;
    if (x >= PAD && y >= PAD) {
        uint col = (x - PAD) / bw, row = (y - PAD) / bh;
        uint lx = (x - PAD) % bw, ly = (y - PAD) % bh;
        uint e = row * pc.cols + col;
        if (col < pc.cols && e < pc.n && lx < cw && ly < 3u * ch) {
            uint cell = ly / ch, cy = ly % ch;
            if (cy < ih) {
                uint p = e * pc.h * pc.w + (cy / pc.scale) * pc.w + lx / pc.scale;
                if (cell == 0u) {
                    c = gray(clean[p]);
                } else if (cell == 1u) {
                    c = gray(adv[p]);
                } else {
                    c = diverging(adv[p] - clean[p]);
                }
            } else {
                uint gx = lx / pc.glyph, gy = (cy - ih) / pc.glyph;
                uint label = info[3u * e], pred = cell == 2u ? label : info[3u * e + cell + 1u];
                if (gx >= 1u && gy >= 1u && glyphPixel(pred, gx - 1u, gy - 1u)) {
                    c = rgb(255u, 255u, 255u);
                } else if (cell < 2u && gx >= 5u && gx < 10u && gy >= 1u && gy < 6u) {
                    c = pred == label ? rgb(40u, 200u, 60u) : rgb(230u, 40u, 40u);
                }
            }
        }
    }
    pix[i] = pack(c);
}
