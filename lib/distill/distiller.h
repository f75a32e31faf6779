// Training a student from a transfer set with any weighted combination of distillation terms:
//   ce     cross-entropy of the student's class head on the labels (no teacher)
//   kd     Hinton KD on the teacher's unimodal class scores (what the teacher sees of x)
//   gd     generalized distillation (Lopez-Paz 2016): KD on the teacher's joint class scores,
//          i.e. a teacher that also read the text (privileged information)
//   hint   MSE(W mu_s, h_t): the student's posterior mean, projected by a learned W, regresses
//          the teacher's encoder features (FitNets hint / TinyBERT hidden loss)
//   pkt    PKT between the student's and the teacher's posterior means
//   vid    VID: -log N(h_t | r(mu_s), softplus(alpha) + 1e-5), r a learned 2-layer regressor
//   bayes  KL(q_s(z|x) || q_t(z|x,w)): the teacher's posterior as the student's prior
// pkt and bayes compare with the teacher's joint posterior by default (target = "unimodal"
// uses q_t(z|x)). Hint and VID act on the student's latent mean so that every term trains the
// whole student (a hint on an inner layer would leave the Gaussian head untrained).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mmkt/distill/student.h"
#include "mmkt/distill/transfer_set.h"

namespace mmkt::distill {

using MethodWeights = std::map<std::string, double>;  // term -> weight (> 0)

// Every term name, in table order.
const std::vector<std::string>& distill_terms();
// "baseline" (ce), "kd" (0.9 kd + 0.1 ce, RepDistiller's mix), "gd" (0.9 gd + 0.1 ce), "hint",
// "pkt", "vid", "bayes", "mse" (latent-mean feature mimicry); "a+b" sums presets;
// "pkt=1,bayes=0.1" gives weights directly.
MethodWeights parse_method(const std::string& method);
bool uses_teacher(const MethodWeights& weights);

struct TrainOptions {
  std::int64_t epochs = 20;
  std::int64_t batch_size = 128;
  double lr = 1e-3;
  double temperature = 4.0;      // kd, gd
  std::string target = "joint";  // joint | unimodal: the posterior pkt and bayes match
  std::uint64_t seed = 0;
  double progress_seconds = 5.0;
  std::string log_path;  // JSONL, one line per epoch ("" = none)
};

// The learned parts of the losses (hint projection, VID regressor and variances); trained with
// the student, thrown away after.
class DistillHeadsImpl : public torch::nn::Module {
 public:
  DistillHeadsImpl(std::int64_t latent_dim, std::int64_t teacher_features);
  torch::nn::Linear projection{nullptr};
  torch::nn::Sequential regressor{nullptr};
  torch::Tensor alpha;
};
TORCH_MODULE(DistillHeads);

// The weighted loss of one batch (rows of `transfer`) and its named terms.
struct StepLoss {
  torch::Tensor loss;
  std::map<std::string, double> terms;
};
StepLoss distill_loss(Student& student, DistillHeads& heads, const TransferSet& transfer,
                      const torch::Tensor& rows, const MethodWeights& weights,
                      const TrainOptions& options, const torch::Device& device);

// Trains `student` in place; returns {"epochs", "steps", "seconds", "items_per_second",
// "final": {term: mean of the last epoch}}.
nlohmann::json train_student(Student& student, const TransferSet& transfer,
                             const MethodWeights& weights, const TrainOptions& options,
                             const torch::Device& device);

}  // namespace mmkt::distill
