#include "mmkt/transfer/hierarchical_prior.h"

#include <cmath>

#include "mmkt/core/error.h"

namespace mmkt::transfer {

HierarchicalPrior::HierarchicalPrior(std::vector<std::vector<torch::Tensor>> domain_parameters,
                                     std::vector<double> domain_precision, double top_precision)
    : parameters_(std::move(domain_parameters)),
      precision_(std::move(domain_precision)),
      top_precision_(top_precision) {
  MMKT_CHECK_INPUT(!parameters_.empty(), "hierarchical prior: no domain");
  MMKT_CHECK_INPUT(precision_.size() == parameters_.size(),
                   "hierarchical prior: ", parameters_.size(), " domains but ", precision_.size(),
                   " precisions");
  for (double p : precision_) {
    MMKT_CHECK_INPUT(std::isfinite(p) && p > 0,
                     "hierarchical prior: a domain precision must be "
                     "a positive number, got ",
                     p);
  }
  MMKT_CHECK_INPUT(std::isfinite(top_precision_) && top_precision_ >= 0,
                   "hierarchical prior: the top precision must be >= 0, got ", top_precision_);
  const auto& first = parameters_.front();
  for (std::size_t d = 1; d < parameters_.size(); ++d) {
    MMKT_CHECK_INPUT(parameters_[d].size() == first.size(), "hierarchical prior: domain ", d,
                     " has ", parameters_[d].size(), " parameter tensors, domain 0 has ",
                     first.size());
    for (std::size_t i = 0; i < first.size(); ++i) {
      MMKT_CHECK_INPUT(parameters_[d][i].sizes() == first[i].sizes(),
                       "hierarchical prior: parameter ", i, " of domain ", d, " has shape ",
                       parameters_[d][i].sizes(), ", domain 0's has ", first[i].sizes());
    }
  }
  top_.reserve(first.size());
  for (const auto& p : first) top_.push_back(torch::zeros_like(p).detach());
  update_top();
}

void HierarchicalPrior::update_top() {
  torch::NoGradGuard no_grad;
  double total = top_precision_;
  for (double p : precision_) total += p;
  for (std::size_t i = 0; i < top_.size(); ++i) {
    auto sum = torch::zeros_like(top_[i]);
    for (std::size_t d = 0; d < parameters_.size(); ++d) {
      sum.add_(parameters_[d][i].detach(), precision_[d]);
    }
    top_[i].copy_(sum.div_(total));
  }
}

torch::Tensor HierarchicalPrior::domain_penalty(std::size_t d) const {
  return precision_.at(d) * half_squared_distance(parameters_.at(d), top_);
}

torch::Tensor HierarchicalPrior::penalty() const {
  auto total = top_precision_ * half_squared_norm(top_);
  for (std::size_t d = 0; d < parameters_.size(); ++d) total = total + domain_penalty(d);
  return total;
}

torch::Tensor half_squared_distance(const std::vector<torch::Tensor>& a,
                                    const std::vector<torch::Tensor>& b) {
  MMKT_CHECK(a.size() == b.size() && !a.empty(), "half_squared_distance: lists of ", a.size(),
             " and ", b.size(), " tensors");
  auto total = (a[0] - b[0]).pow(2).sum();
  for (std::size_t i = 1; i < a.size(); ++i) total = total + (a[i] - b[i]).pow(2).sum();
  return 0.5 * total;
}

torch::Tensor half_squared_norm(const std::vector<torch::Tensor>& a) {
  MMKT_CHECK(!a.empty(), "half_squared_norm: an empty list");
  auto total = a[0].pow(2).sum();
  for (std::size_t i = 1; i < a.size(); ++i) total = total + a[i].pow(2).sum();
  return 0.5 * total;
}

}  // namespace mmkt::transfer
