// Data-parallel training across processes and machines on PyTorch's own distributed layer:
// c10d::TCPStore for the rendezvous (rank 0 serves it at MASTER_ADDR:MASTER_PORT) and
// c10d::ProcessGroupGloo for the collectives (Gloo moves CPU tensors, and CUDA tensors through
// host memory; a CUDA build can swap in ProcessGroupNCCL, see communicator.cpp).
//
// What the trainer uses (train/trainer.cpp):
//   - broadcast of the parameters from rank 0 at start, so every replica starts equal;
//   - the gradient average after each backward: flat buckets of at most `bucket_bytes`,
//     all launched asynchronously, then waited and copied back (PyTorch DDP's bucketing,
//     without its overlap of communication with the backward pass);
//   - small byte strings through the store (the resolved config, the tokenizer, a checkpoint
//     to resume from), so that machines need not share a filesystem.
// Every collective and store read has a timeout; a worker that dies or stalls ends the others
// with an Error naming the operation, the rank and Gloo's own message instead of a hang.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include "mmkt/models/batch_peers.h"

namespace mmkt::dist {

// The launcher's environment, as torchrun and cluster launchers (SLURM scripts, Kubernetes
// operators) set it: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT.
struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool distributed() const { return world_size > 1; }
};
// Reads the variables; absent WORLD_SIZE (or 1) means a single process. Throws InputError for
// malformed or inconsistent values (RANK >= WORLD_SIZE, a port outside 1..65535, ...).
DistEnv env_from_environment();

class Communicator {
 public:
  // Connects to the group described by `env` (rank 0 starts the TCPStore server) and waits at
  // most `timeout` for every worker to join; the same timeout bounds every later operation.
  Communicator(const DistEnv& env, std::chrono::milliseconds timeout);
  // A group on an existing store (tests: several threads of one process on a HashStore).
  Communicator(c10::intrusive_ptr<c10d::Store> store, int rank, int world_size,
               std::chrono::milliseconds timeout, const std::string& gloo_host = "127.0.0.1");
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  std::chrono::milliseconds timeout() const { return timeout_; }

  // Copies rank `root`'s tensors into every rank's (same shapes and dtypes on every rank).
  void broadcast(std::vector<torch::Tensor> tensors, int root = 0);
  // Sums each tensor over the ranks, in place, in flat buckets of at most `bucket_bytes`.
  void allreduce_sum(std::vector<torch::Tensor> tensors, std::int64_t bucket_bytes);
  // Blocks until every rank has arrived.
  void barrier();

  // Store access: rank 0 publishes, the others wait (up to the timeout) and read.
  void publish(const std::string& key, const std::string& bytes);
  std::string fetch(const std::string& key);

  // Wall seconds spent inside broadcast / allreduce / barrier since construction.
  double communication_seconds() const { return comm_seconds_; }

 private:
  void wait_for(const char* what, const std::vector<c10::intrusive_ptr<c10d::Work>>& work);

  int rank_ = 0;
  int world_size_ = 1;
  std::chrono::milliseconds timeout_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
  double comm_seconds_ = 0;
};

// The data-parallel gradient: each rank's gradient of its local mean loss is scaled by
// local_rows / global_rows and summed over the ranks, which is exactly the gradient of the
// global batch's mean loss even when the shards differ in size (the last batch of an epoch).
// Parameters without a gradient this step contribute zeros (and get a zero gradient).
// A parameter whose gradient is undefined on every rank (no term used it) stays undefined, as in
// one process, so that Adam skips it on every rank alike.
void average_gradients(Communicator& comm, const std::vector<torch::Tensor>& parameters,
                       std::int64_t local_rows, std::int64_t global_rows,
                       std::int64_t bucket_bytes);

// The other ranks' rows of one training step's global batch (models/batch_peers.h), over c10d.
// all_rows gathers with an allreduce of zero-padded rows (shards may differ in size); its
// backward sums every rank's gradient of the gathered rows, each weighted by that rank's row
// count, and gives this rank its own rows divided by its row count: after the trainer's
// local_rows / global_rows gradient average this is exactly one process's gradient.
class StepPeers : public models::BatchPeers {
 public:
  StepPeers(Communicator& comm, std::int64_t offset, std::int64_t local_rows,
            std::int64_t global_rows);
  torch::Tensor all_rows(const torch::Tensor& local) override;
  double sum(double value) override;
  std::int64_t offset() const override { return offset_; }
  std::int64_t global_rows() const override { return global_rows_; }

 private:
  Communicator& comm_;
  std::int64_t offset_, local_rows_, global_rows_;
};

}  // namespace mmkt::dist
