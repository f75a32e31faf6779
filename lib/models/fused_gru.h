// A one-layer GRU over a right-padded batch as ONE autograd node, for training on the CPU.
//
// Why: libtorch's GRU runs each time step as ~10 small operations, each recorded by autograd
// and replayed backwards (~20 more), so a caption batch spends most of its time dispatching.
// Here the forward pass is one GEMM for every step's input projection, then per step one GEMM
// (W_h h) and one fused gate loop; the backward pass per step is one fused loop and one GEMM
// (dL/dh_{t-1}), and the weight gradients are three GEMMs over all steps at the end (BPTT as
// cuDNN arranges it). Rows are processed longest first and a row stops at its length, so
// padding costs nothing (the packing of PackedSequence, without its slow backward).
//
// The same weights and equations as torch::nn::GRU (tests/test_fused_gru.cpp checks outputs and
// every gradient against it to 1e-5); checkpoints do not change.
#pragma once

#include <torch/torch.h>

namespace mmkt::models {

struct GruSequence {
  torch::Tensor output;  // [B,T,H]: h_t for t < length, 0 after
  torch::Tensor last;    // [B,H]: the state after each row's last real step (h0 for length 0)
};

// Runs `gru` (one layer, unidirectional, with biases) over x [B,T,I] (batch first, whatever the
// module's own batch_first) for lengths[b] steps of row b (0 <= lengths <= T), from h0 [B,H]
// (undefined: zeros). Float32 CPU tensors take the fused path; anything else (a CUDA device,
// double) runs torch::nn::GRU and masks, with the same result.
GruSequence gru_sequence(torch::nn::GRU& gru, const torch::Tensor& x, const torch::Tensor& lengths,
                         const torch::Tensor& h0 = {});

// Turns the fused path off and on (the bench's ablation row; default on).
void set_fused_gru_enabled(bool enabled);
bool fused_gru_enabled();

}  // namespace mmkt::models
