// A GRU's last hidden state for inference on a handful of sequences (a text query).
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace mmkt::models {

// The last hidden state of a one-layer GRU (PyTorch's gate equations, the same weights) over
// the first `length` rows of `embedded` [L,E] (read backwards with `reverse`), computed with one
// input projection and, per token, one matrix-vector product plus a plain loop over the gates.
// libtorch's GRU spends most of a one-caption encoding dispatching ~10 small operations per
// token; this is ~2x faster there (README "Performance"). Float32 on the CPU, no autograd.
torch::Tensor gru_last_state_inference(torch::nn::GRU& gru, const torch::Tensor& embedded,
                                       std::int64_t length, bool reverse);

}  // namespace mmkt::models
