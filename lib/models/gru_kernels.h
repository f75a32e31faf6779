// The per-step gate arithmetic of a one-layer GRU, forward and backward, as plain loops over
// rows of float32 arrays (lib/models/fused_gru.cpp drives them). PyTorch's gate order and
// equations (torch.nn.GRU docs), with gi = W_i x + b_i and gh = W_h h + b_h split as [r|z|n]:
//   r = sigmoid(gi_r + gh_r),  z = sigmoid(gi_z + gh_z),  n = tanh(gi_n + r * gh_n),
//   h' = (1 - z) * n + z * h.
#pragma once

#include <cstdint>

namespace mmkt::models::gru_kernels {

// Rows [begin, end) of one step. gi, gh: [rows, 3H]; h_prev: [rows, H] h_{t-1}; h: [rows, H]
// receives h_t; saved: [rows, 4H] receives r, z, n and gh_n for the backward pass.
void forward_rows(const float* gi, const float* gh, const float* h_prev, float* h, float* saved,
                  std::int64_t begin, std::int64_t end, std::int64_t hidden);

// Rows [begin, end) of one step backwards. dh: [rows, H], dL/dh_t in, the part of dL/dh_{t-1}
// that bypasses W_h (dh * z) out; h_prev: [rows, H]; saved as written by forward_rows.
// dgi, dgh: [rows, 3H] receive dL/dgi and dL/dgh (they differ only in the n block, where
// dL/dgh_n = r * dL/dgi_n).
void backward_rows(float* dh, const float* h_prev, const float* saved, float* dgi, float* dgh,
                   std::int64_t begin, std::int64_t end, std::int64_t hidden);

}  // namespace mmkt::models::gru_kernels
