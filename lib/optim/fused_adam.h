// Adam (Kingma & Ba 2015) with the update of each parameter done in one pass over memory.
//
// torch::optim::Adam (C++ and Python, PyTorch 1.13 on CPU) updates a parameter with eight
// tensor operations: exp_avg.mul_().add_(), exp_avg_sq.mul_().addcmul_(), sqrt(), div(),
// add_(), param.addcdiv_(): eight passes over parameter-sized arrays and two temporaries. For
// the MNIST JMVAE (3.6 M parameters, 14 MB per array) that memory traffic is a large share of
// the training step. FusedAdam reads grad, param, exp_avg and exp_avg_sq once and writes
// param, exp_avg and exp_avg_sq once per element, in parallel chunks, with the same formula
// in the same order:
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p = p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// It is a torch::optim::Adam: the same options, the same state objects, so checkpoints save
// and load exactly as before. Tensors that are not contiguous float32 on the CPU, weight decay
// and AMSGrad fall back to torch::optim::Adam's own step.
#pragma once

#include <torch/torch.h>

namespace mmkt::optim {

class FusedAdam : public torch::optim::Adam {
 public:
  using torch::optim::Adam::Adam;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

// Drops every gradient (PyTorch's zero_grad(set_to_none=True); libtorch 1.13's zero_grad()
// only zeroes): the next backward writes the gradients instead of adding to zeroed memory.
void clear_gradients(const std::vector<torch::Tensor>& parameters);

}  // namespace mmkt::optim
