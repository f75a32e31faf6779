#include "mmkt/models/gru_inference.h"

#include <cmath>

#include "mmkt/core/error.h"

namespace mmkt::models {

torch::Tensor gru_last_state_inference(torch::nn::GRU& gru, const torch::Tensor& embedded,
                                       std::int64_t length, bool reverse) {
  MMKT_CHECK(gru->options.num_layers() == 1 && !gru->options.bidirectional() && gru->options.bias(),
             "gru_last_state_inference: a one-layer unidirectional GRU with biases");
  torch::NoGradGuard no_grad;
  const auto params = gru->named_parameters();
  const auto& w_ih = params["weight_ih_l0"];
  const auto& w_hh = params["weight_hh_l0"];
  const auto& b_hh = params["bias_hh_l0"];
  const auto hidden = w_hh.size(1);
  // Input projections of every token at once: [length, 3H] in PyTorch's gate order r, z, n.
  const auto gi =
      torch::linear(embedded.narrow(0, 0, length), w_ih, params["bias_ih_l0"]).contiguous();
  auto h = torch::zeros({hidden}, embedded.options());
  auto gh = torch::empty({3 * hidden}, embedded.options());
  float* hp = h.data_ptr<float>();
  const float* ghp = gh.data_ptr<float>();
  for (std::int64_t s = 0; s < length; ++s) {
    const std::int64_t t = reverse ? length - 1 - s : s;
    torch::addmv_out(gh, b_hh, w_hh, h);  // W_hh h + b_hh
    const float* x = gi.data_ptr<float>() + t * 3 * hidden;
    for (std::int64_t j = 0; j < hidden; ++j) {
      const float r = 1.0f / (1.0f + std::exp(-(x[j] + ghp[j])));
      const float z = 1.0f / (1.0f + std::exp(-(x[hidden + j] + ghp[hidden + j])));
      const float n = std::tanh(x[2 * hidden + j] + r * ghp[2 * hidden + j]);
      hp[j] = (hp[j] - n) * z + n;  // (1 - z) n + z h, in ATen's gru_cell order
    }
  }
  return h;
}

}  // namespace mmkt::models
