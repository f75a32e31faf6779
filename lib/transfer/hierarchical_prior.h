// A shared prior across domains: hierarchical Bayesian domain adaptation (Finkel and Manning
// 2009, "Hierarchical Bayesian Domain Adaptation", NAACL). Every domain d has its own copy of
// the model's parameters theta_d; the copies are tied by a shared top level theta*:
//
//   theta_d ~ N(theta*, 1/lambda_d I),   theta* ~ N(0, 1/lambda_top I),
//
// and all of them are fitted jointly by MAP, i.e. by minimising
//
//   J = sum_d [ NLL_d(theta_d) + lambda_d/2 ||theta_d - theta*||^2 ] + lambda_top/2 ||theta*||^2.
//
// For fixed theta_d the minimum over theta* has the closed form
//
//   theta* = sum_d lambda_d theta_d / (sum_d lambda_d + lambda_top),            (1)
//
// so theta* is never a trainable parameter here: update_top() sets it by (1), and the
// gradient of penalty() with theta* held fixed is then the exact gradient of the profiled
// objective min_{theta*} J (the envelope theorem), which any optimiser can follow.
// Limits: lambda_d -> infinity ties every domain to one model (the pooled model); lambda_d -> 0
// leaves separate models under the prior N(0, 1/lambda_top) only through theta*'s own term.
#pragma once

#include <vector>

#include <torch/torch.h>

namespace mmkt::transfer {

class HierarchicalPrior {
 public:
  // domain_parameters[d]: the parameters of domain d's model, the same shapes in the same
  // order for every domain (the copies of one architecture). domain_precision[d] = lambda_d
  // > 0, top_precision = lambda_top >= 0. theta* starts by (1). InputError on mismatched
  // shapes or counts, or on a precision out of range.
  HierarchicalPrior(std::vector<std::vector<torch::Tensor>> domain_parameters,
                    std::vector<double> domain_precision, double top_precision);

  // Sets theta* by (1) from the domains' current parameters (no gradient).
  void update_top();
  // lambda_d/2 ||theta_d - theta*||^2 for domain d, with theta* constant: a scalar whose
  // gradient reaches theta_d only.
  torch::Tensor domain_penalty(std::size_t d) const;
  // sum_d domain_penalty(d) + lambda_top/2 ||theta*||^2: the whole prior part of J.
  torch::Tensor penalty() const;

  const std::vector<torch::Tensor>& top() const { return top_; }
  std::size_t domains() const { return parameters_.size(); }
  double domain_precision(std::size_t d) const { return precision_.at(d); }
  double top_precision() const { return top_precision_; }

 private:
  std::vector<std::vector<torch::Tensor>> parameters_;
  std::vector<double> precision_;
  double top_precision_;
  std::vector<torch::Tensor> top_;
};

// 1/2 ||a - b||^2 summed over parallel tensor lists (b may be constant).
torch::Tensor half_squared_distance(const std::vector<torch::Tensor>& a,
                                    const std::vector<torch::Tensor>& b);
// 1/2 ||a||^2 summed over a tensor list.
torch::Tensor half_squared_norm(const std::vector<torch::Tensor>& a);

}  // namespace mmkt::transfer
