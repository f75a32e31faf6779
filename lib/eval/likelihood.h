// Importance-weighted log-likelihood estimates (Burda et al. 2016). With K samples z_k from a
// proposal q,
//   log p(target) ~= logsumexp_k [log p~(z_k) - log q(z_k)] - log K,
// where p~ is the unnormalised target density. The estimate is a lower bound in expectation
// that equals the ELBO at K = 1 and tightens as K grows.
//   joint        log p(x,w)  : q(z|x,w),  p~(z) = p(x|z) p(w|z) p(z)
//   marginal     log p(x)    : q(z|x),    p~(z) = p(x|z) p(z)
//   conditional  log p(x|w)  : q(z|w) standing in for p(z|w), p~(z) = p(x|z) q(z|w), so each
//                weight is p(x|z_k) (JMVAE paper, Sec. 4.2; MultiVae's compute_cond_nll).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mmkt/models/gaussian.h"
#include "mmkt/run/run.h"

namespace mmkt::eval {

// log p~(z) for z [S,B,D] -> [S,B].
using LogTarget = std::function<torch::Tensor(const torch::Tensor& z)>;

// The importance-weighted estimate [B] (float64) with `k` samples from `proposal` ([B,D]),
// drawn `chunk` samples at a time so that memory stays bounded by chunk x B decoder rows.
torch::Tensor importance_weighted(const models::Gaussian& proposal, const LogTarget& log_target,
                                  std::int64_t k, std::int64_t chunk);

struct LikelihoodOptions {
  std::int64_t k = 1000;          // importance samples per item
  std::int64_t max_rows = 20000;  // decoder rows per call (chunk = max_rows / batch)
  std::int64_t batch_size = 100;  // items per batch
  std::int64_t max_items = 0;     // evaluate the first N items only (0 = all)
  // Which estimates: "joint", "marginal" (every modality), "conditional" (every ordered pair).
  std::vector<std::string> estimates = {"joint", "marginal", "conditional"};
  std::uint64_t seed = 0;  // the sampling noise (the figures repeat)
};

// Every requested estimate over `dataset` as
// {"k", "items", "estimates": {"log p(image,label)": {"mean", "stderr", "proposal",
//  "seconds"}, ...}}; values are nats per item, averaged over items.
nlohmann::json likelihood_report(LoadedRun& run, const data::DatasetPtr& dataset,
                                 const LikelihoodOptions& options, const torch::Device& device);

std::string likelihood_markdown(const nlohmann::json& report);

}  // namespace mmkt::eval
