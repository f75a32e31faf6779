// A transposed 2-D convolution computed with the kernels of the ordinary convolution, for
// training on the CPU.
//
// Why: libtorch 1.13's CPU ConvTranspose2d does not use oneDNN (it runs im2col/col2im through
// slow_conv_transpose2d), and in the 64x64 image decoders it ran 2-7x slower than the
// convolutions of the same size (`mmkt bench`, the image-network rows). The transposed
// convolution is by definition the adjoint of a convolution with the same weight [in, out, k, k]:
//   forward:   y = conv^T(x; W)        = d conv(u; W)/du applied to x  (conv's input gradient)
//   backward:  dL/dx = conv(dL/dy; W)                                   (a plain convolution)
//              dL/dW = conv's weight gradient for input dL/dy and output gradient x
//              dL/db = sum of dL/dy over batch and pixels
// (Dumoulin and Visin 2016, "A guide to convolution arithmetic", section 4), so all three run on
// oneDNN's convolution kernels through at::convolution_backward. Same weights and bias as
// torch::nn::ConvTranspose2d (tests/test_conv_transpose.cpp: outputs and every gradient to
// 1e-5); checkpoints do not change.
#pragma once

#include <torch/torch.h>

namespace mmkt::models {

// torch::nn::ConvTranspose2d's forward (no output_padding, groups 1, dilation 1). Float32 CPU
// tensors take the convolution-kernel path; anything else (CUDA, double) calls the module.
torch::Tensor conv_transpose2d(torch::nn::ConvTranspose2d& module, const torch::Tensor& x);

// Turns the convolution-kernel path off and on (the bench's ablation row; default on).
void set_fast_conv_transpose_enabled(bool enabled);
bool fast_conv_transpose_enabled();

}  // namespace mmkt::models
