// Linear classifiers fitted on fixed features (latent means, encoder features): the linear
// probe, the attribute classifiers of DAP and the seen-class classifier of IAP. Features are
// standardised with the training mean and deviation; the weights minimise the mean
// cross-entropy + l2/2 ||W||^2 by full-batch L-BFGS with a strong-Wolfe line search (a convex
// problem: the result does not depend on the order of the data).
#pragma once

#include <cstdint>
#include <string>

#include <torch/torch.h>

namespace mmkt::eval {

struct LinearFitOptions {
  double l2 = 1e-4;
  std::int64_t iterations = 200;
};

struct LinearClassifier {
  std::string kind;  // "softmax" (one class of C) | "sigmoid" (M independent binary targets)
  torch::Tensor mean, scale, weight, bias;  // standardisation [D], weight [out,D], bias [out]
  torch::Tensor logits(const torch::Tensor& x) const;  // [N,out]
  // softmax: class probabilities [N,C]; sigmoid: probabilities of each target [N,M].
  torch::Tensor probabilities(const torch::Tensor& x) const;
  torch::Tensor predict(const torch::Tensor& x) const;  // softmax: argmax [N] int64
};

// Multinomial logistic regression: x [N,D], labels [N] int64 in [0, classes).
LinearClassifier fit_softmax(const torch::Tensor& x, const torch::Tensor& labels,
                             std::int64_t classes, const LinearFitOptions& options = {});
// Independent logistic regressions sharing the features: targets [N,M] of 0/1.
LinearClassifier fit_sigmoid(const torch::Tensor& x, const torch::Tensor& targets,
                             const LinearFitOptions& options = {});

// Share of rows where predicted == truth.
double accuracy(const torch::Tensor& predicted, const torch::Tensor& truth);

}  // namespace mmkt::eval
