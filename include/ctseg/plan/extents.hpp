// Extent arithmetic of the windowed layers, usable at compile time (the plan)
// and at run time (tests, tools) alike.
#pragma once

namespace ctseg::plan {

// Output extent of a convolution, or 0 where the dilated kernel does not fit the padded input.
constexpr long conv_extent(long in, long kernel, long stride, long pad, long dilation) {
    const long reach = dilation * (kernel - 1) + 1;
    return in + 2 * pad >= reach && stride > 0 ? (in + 2 * pad - reach) / stride + 1 : 0;
}

// Whether a window moving by `stride` covers the padded input exactly (no
// element dropped at the end).
constexpr bool window_tiles(long in, long kernel, long stride, long pad) {
    return in + 2 * pad >= kernel && stride > 0 && (in + 2 * pad - kernel) % stride == 0;
}

constexpr long conv_transpose_extent(long in, long kernel, long stride, long pad, long dilation, long output_pad) {
    return (in - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_pad + 1;
}

// Padding and output padding (0 <= output_pad < max(stride, dilation), as
// PyTorch requires) that make a transposed convolution produce `wanted`.
struct transpose_padding {
    long pad = 0, output_pad = 0;
    bool ok = false;
};
constexpr transpose_padding padding_for_extent(long in, long wanted, long kernel, long stride, long dilation) {
    transpose_padding r;
    const long need = conv_transpose_extent(in, kernel, stride, 0, dilation, 0) - wanted;  // = 2 pad - output_pad
    r.pad = need >= 0 ? (need + 1) / 2 : 0;
    r.output_pad = 2 * r.pad - need;
    const long limit = stride > dilation ? stride : dilation;
    r.ok = wanted > 0 && r.output_pad >= 0 && r.output_pad < limit;
    return r;
}

}  // namespace ctseg::plan
