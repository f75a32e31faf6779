// Terms that couple the items of a batch (triplet negatives, contrastive candidates) under
// data-parallel training: the trainer installs the other ranks' rows of the global batch here
// for the duration of a step, so that every rank forms those terms over the whole global batch,
// exactly as one process does (dist/communicator.h implements it with c10d). Without peers
// (one process, evaluation) a batch is all there is.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace mmkt::models {

class BatchPeers {
 public:
  virtual ~BatchPeers() = default;
  // Every rank's rows of `local` [n,...] in global-batch order [G,...]. Differentiable: the
  // gradient that reaches the result flows back to the ranks owning the rows, scaled for the
  // trainer's local_rows / global_rows gradient average (see add_triplet in multimodal_vae.cpp).
  virtual torch::Tensor all_rows(const torch::Tensor& local) = 0;
  // Sum of `value` over the ranks (no gradient).
  virtual double sum(double value) = 0;
  // This rank's rows [offset, offset + local_rows) of a global batch of global_rows.
  virtual std::int64_t offset() const = 0;
  virtual std::int64_t global_rows() const = 0;
};

// The peers installed on this thread, or null.
BatchPeers* batch_peers();

// Installs `peers` on this thread for its lifetime (null = none), restoring the previous ones.
class BatchPeersGuard {
 public:
  explicit BatchPeersGuard(BatchPeers* peers);
  ~BatchPeersGuard();
  BatchPeersGuard(const BatchPeersGuard&) = delete;
  BatchPeersGuard& operator=(const BatchPeersGuard&) = delete;

 private:
  BatchPeers* saved_;
};

}  // namespace mmkt::models
