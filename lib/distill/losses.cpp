#include "mmkt/distill/losses.h"

#include <cmath>

namespace mmkt::distill {

namespace F = torch::nn::functional;

torch::Tensor hinton_kd(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                        double temperature) {
  const auto log_ps = F::log_softmax(student_logits / temperature, F::LogSoftmaxFuncOptions(1));
  const auto log_pt = F::log_softmax(teacher_logits / temperature, F::LogSoftmaxFuncOptions(1));
  // KL(p_t || p_s) = sum_c p_t (log p_t - log p_s), batch mean.
  const auto kl = (log_pt.exp() * (log_pt - log_ps)).sum(1).mean();
  return kl * (temperature * temperature);
}

namespace {
torch::Tensor pkt_probabilities(const torch::Tensor& x) {
  const auto norm = x.norm(2, 1, /*keepdim=*/true);
  const auto unit = x / (norm + 1e-7);
  const auto k = (torch::mm(unit, unit.t()) + 1.0) / 2.0;
  return k / k.sum(1, /*keepdim=*/true);
}
}  // namespace

torch::Tensor pkt_loss(const torch::Tensor& student, const torch::Tensor& teacher) {
  const auto ps = pkt_probabilities(student);
  const auto pt = pkt_probabilities(teacher);
  return (pt * torch::log((pt + 1e-7) / (ps + 1e-7))).mean();
}

torch::Tensor hint_loss(const torch::Tensor& projected, const torch::Tensor& teacher) {
  return F::mse_loss(projected, teacher);
}

torch::Tensor vid_loss(const torch::Tensor& mean, const torch::Tensor& alpha,
                       const torch::Tensor& teacher) {
  const auto var = F::softplus(alpha) + 1e-5;  // [F]
  const double half_log_2pi = 0.5 * std::log(2.0 * M_PI);
  const auto nll = 0.5 * (teacher - mean).pow(2) / var + 0.5 * var.log() + half_log_2pi;
  return nll.sum(1).mean();
}

torch::Tensor bayesian_kl(const models::Gaussian& student, const models::Gaussian& teacher) {
  return models::kl_divergence(student, teacher).mean();
}

torch::Tensor latent_mse(const torch::Tensor& student_mu, const torch::Tensor& teacher_mu) {
  return (student_mu - teacher_mu).pow(2).sum(1).mean();
}

}  // namespace mmkt::distill
