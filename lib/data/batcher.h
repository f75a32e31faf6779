// Mini-batches for training and evaluation: a seeded shuffle per epoch, images (optionally
// re-binarized every epoch), captions tokenized and right-padded with lengths, labels and
// attributes; built by background workers a few batches ahead so training never waits for data.
// Batch k of epoch e depends only on (seed, e, k), never on thread timing.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "mmkt/data/dataset.h"
#include "mmkt/text/tokenizer.h"

namespace mmkt::data {

enum class Binarize {
  kNone,     // images as they are
  kDynamic,  // pixel ~ Bernoulli(intensity), redrawn every epoch (JMVAE/IWAE training)
};

struct BatcherOptions {
  std::int64_t batch_size = 100;
  bool shuffle = true;
  bool drop_last = false;
  std::uint64_t seed = 0;
  Binarize binarize = Binarize::kNone;
  // Tokenizer for captions; null = no tokens in the batch (captions are still carried).
  std::shared_ptr<const text::Tokenizer> tokenizer;
  std::int64_t max_tokens = 64;  // longer captions are cut, keeping EOS last
  int workers = 1;               // background threads; 0 = build batches on the caller's thread
  int prefetch = 4;              // batches built ahead of the consumer
  // Data-parallel sharding: every rank walks the same seeded global batches (batch_size rows)
  // and takes the contiguous rows [r n / R, (r + 1) n / R) of each, so the shards of an epoch
  // are disjoint and together are exactly the one-process epoch. Dynamic binarization draws
  // the whole global batch's uniforms, so a rank's pixels equal the one-process pixels.
  int shard_rank = 0;
  int shard_count = 1;
};

class Batcher {
 public:
  Batcher(DatasetPtr dataset, BatcherOptions options);
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Starts epoch `epoch` (its shuffle and binarization draws depend on it); stops any epoch
  // in flight.
  void start_epoch(std::int64_t epoch);
  // The next batch of the current epoch, or nullopt when the epoch is done. Rethrows an error
  // raised while building the batch.
  std::optional<Batch> next();
  std::int64_t batches_per_epoch() const;
  const Dataset& dataset() const { return *dataset_; }

  // Builds batch `k` of `epoch` directly (what the workers run).
  Batch make_batch(std::int64_t epoch, std::int64_t k) const;

 private:
  std::vector<std::int64_t> epoch_order(std::int64_t epoch) const;
  void stop_workers();
  void worker_loop();

  DatasetPtr dataset_;
  BatcherOptions options_;
  std::int64_t epoch_ = -1;
  std::vector<std::int64_t> order_;
  std::int64_t next_to_consume_ = 0;

  std::mutex mutex_;
  std::condition_variable produced_, consumed_;
  std::map<std::int64_t, Batch> ready_;
  std::int64_t next_to_claim_ = 0;
  std::exception_ptr error_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

// Pads token id sequences to one [B, L] tensor (L = longest, capped at max_tokens with EOS kept
// last) plus their lengths [B].
std::pair<torch::Tensor, torch::Tensor> pad_tokens(
    const std::vector<std::vector<std::int64_t>>& sequences, std::int64_t max_tokens);

}  // namespace mmkt::data
