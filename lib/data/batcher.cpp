#include "mmkt/data/batcher.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "mmkt/core/error.h"
#include "mmkt/core/runtime.h"

namespace mmkt::data {

std::pair<torch::Tensor, torch::Tensor> pad_tokens(
    const std::vector<std::vector<std::int64_t>>& sequences, std::int64_t max_tokens) {
  MMKT_CHECK(max_tokens >= 2, "max_tokens must be >= 2 (BOS and EOS), got ", max_tokens);
  std::int64_t longest = 1;
  for (const auto& s : sequences) {
    longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(s.size()));
  }
  const std::int64_t width = std::min(longest, max_tokens);
  const auto batch = static_cast<std::int64_t>(sequences.size());
  auto tokens = torch::full({batch, width}, text::Tokenizer::kPadId, torch::kInt64);
  auto lengths = torch::empty({batch}, torch::kInt64);
  auto* t = tokens.data_ptr<std::int64_t>();
  auto* l = lengths.data_ptr<std::int64_t>();
  for (std::int64_t b = 0; b < batch; ++b) {
    const auto& s = sequences[static_cast<std::size_t>(b)];
    const auto n = std::min<std::int64_t>(static_cast<std::int64_t>(s.size()), width);
    std::copy(s.begin(), s.begin() + n, t + b * width);
    if (n < static_cast<std::int64_t>(s.size()) && n > 0) t[b * width + n - 1] = s.back();  // EOS
    l[b] = n;
  }
  return {tokens, lengths};
}

Batcher::Batcher(DatasetPtr dataset, BatcherOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  MMKT_CHECK_INPUT(dataset_ != nullptr, "batcher: no dataset");
  MMKT_CHECK_INPUT(dataset_->size() > 0, "dataset ", dataset_->info().name,
                   " is empty: nothing to train or evaluate on");
  MMKT_CHECK_INPUT(options_.batch_size > 0, "batch_size must be positive, got ",
                   options_.batch_size);
  MMKT_CHECK_INPUT(options_.workers >= 0 && options_.prefetch >= 1,
                   "batcher workers must be >= 0 and prefetch >= 1");
  MMKT_CHECK_INPUT(!options_.drop_last || dataset_->size() >= options_.batch_size, "dataset ",
                   dataset_->info().name, " has ", dataset_->size(),
                   " items, fewer than one batch of ", options_.batch_size, " with drop_last");
  MMKT_CHECK_INPUT(options_.shard_count >= 1 && options_.shard_rank >= 0 &&
                       options_.shard_rank < options_.shard_count,
                   "batcher: shard ", options_.shard_rank, " of ", options_.shard_count);
}

Batcher::~Batcher() { stop_workers(); }

std::int64_t Batcher::batches_per_epoch() const {
  const auto n = dataset_->size();
  const auto b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<std::int64_t> Batcher::epoch_order(std::int64_t epoch) const {
  std::vector<std::int64_t> order(static_cast<std::size_t>(dataset_->size()));
  std::iota(order.begin(), order.end(), 0);
  if (options_.shuffle) {
    std::mt19937_64 rng(derive_seed(options_.seed, "shuffle:" + std::to_string(epoch)));
    std::shuffle(order.begin(), order.end(), rng);
  }
  return order;
}

Batch Batcher::make_batch(std::int64_t epoch, std::int64_t k) const {
  std::vector<std::int64_t> computed;
  const std::vector<std::int64_t>* order = &order_;
  if (epoch != epoch_ || order_.empty()) {
    computed = epoch_order(epoch);
    order = &computed;
  }
  const auto n = static_cast<std::int64_t>(order->size());
  const auto begin = k * options_.batch_size;
  const auto end = std::min(n, begin + options_.batch_size);
  MMKT_CHECK(begin < end, "batch ", k, " out of range for epoch of ", n, " items");
  const auto global_rows = end - begin;
  const auto lo = options_.shard_rank * global_rows / options_.shard_count;
  const auto hi = (options_.shard_rank + 1) * global_rows / options_.shard_count;
  std::vector<std::int64_t> idx(order->begin() + begin + lo, order->begin() + begin + hi);

  Batch b;
  b.global_rows = global_rows;
  b.global_offset = lo;
  b.indices = torch::tensor(idx, torch::kInt64);
  if (idx.empty()) return b;  // a rank with no rows in a short last batch
  b.images = dataset_->images(idx);
  if (options_.binarize == Binarize::kDynamic) {
    // pixel = [u < intensity], u ~ U(0,1) drawn for the whole global batch (see shard_rank).
    auto gen = at::detail::createCPUGenerator(
        derive_seed(options_.seed, "binarize:" + std::to_string(epoch) + ":" + std::to_string(k)));
    auto sizes = b.images.sizes().vec();
    sizes[0] = global_rows;
    const auto u = torch::rand(sizes, gen, b.images.options()).narrow(0, lo, hi - lo);
    b.images = u.lt(b.images).to(b.images.scalar_type());
  }
  b.labels = dataset_->labels(idx);
  b.attributes = dataset_->attributes(idx);
  if (dataset_->info().has_captions) {
    b.captions = dataset_->captions(idx);
    if (options_.tokenizer) {
      std::vector<std::vector<std::int64_t>> ids;
      ids.reserve(b.captions.size());
      for (std::size_t r = 0; r < b.captions.size(); ++r) {
        MMKT_CHECK_INPUT(!b.captions[r].empty(), dataset_->info().name, ": item ", idx[r],
                         " has an empty caption");
        ids.push_back(options_.tokenizer->encode_with_bos_eos(b.captions[r]));
      }
      std::tie(b.tokens, b.lengths) = pad_tokens(ids, options_.max_tokens);
    }
  }
  return b;
}

void Batcher::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  produced_.notify_all();
  consumed_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
  std::lock_guard<std::mutex> lock(mutex_);
  stopping_ = false;
  ready_.clear();
  error_ = nullptr;
}

void Batcher::start_epoch(std::int64_t epoch) {
  stop_workers();
  epoch_ = epoch;
  order_ = epoch_order(epoch);
  next_to_consume_ = 0;
  next_to_claim_ = 0;
  for (int w = 0; w < options_.workers; ++w) workers_.emplace_back([this] { worker_loop(); });
}

void Batcher::worker_loop() {
  // One intra-op thread here: the trainer's thread owns the cores; batch building is cheap
  // and must not compete with it through a second OpenMP team.
  at::set_num_threads(1);
  const auto total = batches_per_epoch();
  while (true) {
    std::int64_t k = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      consumed_.wait(lock, [&] {
        return stopping_ || next_to_claim_ >= total ||
               next_to_claim_ < next_to_consume_ + options_.prefetch;
      });
      if (stopping_ || next_to_claim_ >= total) return;
      k = next_to_claim_++;
    }
    try {
      Batch b = make_batch(epoch_, k);
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.emplace(k, std::move(b));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
      stopping_ = true;
    }
    produced_.notify_all();
  }
}

std::optional<Batch> Batcher::next() {
  MMKT_CHECK(epoch_ >= 0, "Batcher::next() before start_epoch()");
  if (next_to_consume_ >= batches_per_epoch()) return std::nullopt;
  if (workers_.empty()) return make_batch(epoch_, next_to_consume_++);
  std::unique_lock<std::mutex> lock(mutex_);
  produced_.wait(lock, [&] { return error_ || ready_.count(next_to_consume_) > 0; });
  if (error_) std::rethrow_exception(error_);
  auto node = ready_.extract(next_to_consume_);
  ++next_to_consume_;
  lock.unlock();
  consumed_.notify_all();
  return std::move(node.mapped());
}

}  // namespace mmkt::data
