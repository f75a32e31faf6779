#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/Parallel.h>

#include <set>

#include "mmkt/core/error.h"
#include "mmkt/data/batcher.h"
#include "mmkt/data/dataset.h"

using namespace mmkt;
using data::Batcher;
using data::BatcherOptions;

namespace {

// 23 images whose pixels all equal (index / 23), labels index % 5, captions "item <i>".
data::DatasetPtr toy(std::int64_t n = 23) {
  auto images =
      torch::arange(n, torch::kFloat32).div(n).view({n, 1, 1, 1}).expand({n, 1, 4, 4}).contiguous();
  std::vector<std::string> captions;
  for (std::int64_t i = 0; i < n; ++i) captions.push_back("item " + std::to_string(i));
  return data::tensor_dataset(images, torch::arange(n) % 5, captions,
                              torch::eye(5).index_select(0, torch::arange(n) % 5));
}

std::vector<std::int64_t> epoch_indices(Batcher& b, std::int64_t epoch) {
  std::vector<std::int64_t> out;
  b.start_epoch(epoch);
  while (auto batch = b.next()) {
    const auto* p = batch->indices.data_ptr<std::int64_t>();
    out.insert(out.end(), p, p + batch->size());
  }
  return out;
}

// Throws on one item: the error must reach the consumer.
class Broken : public data::Dataset {
 public:
  std::int64_t size() const override { return 10; }
  data::Sample get(std::int64_t i) const override {
    if (i == 7) fail_input("item 7 is broken");
    data::Sample s;
    s.image = torch::zeros({1, 2, 2});
    s.label = 0;
    return s;
  }
  const data::DatasetInfo& info() const override { return info_; }

 private:
  data::DatasetInfo info_{"broken", {1, 2, 2}, {}, {}, false};
};

}  // namespace

TEST(Batcher, EachEpochCoversEveryItemOnceInASeededOrder) {
  BatcherOptions o;
  o.batch_size = 5;
  o.seed = 3;
  o.workers = 2;
  Batcher b(toy(), o);
  EXPECT_EQ(b.batches_per_epoch(), 5);
  const auto e0 = epoch_indices(b, 0);
  const auto e1 = epoch_indices(b, 1);
  ASSERT_EQ(e0.size(), 23u);
  EXPECT_EQ(std::set<std::int64_t>(e0.begin(), e0.end()).size(), 23u);
  EXPECT_NE(e0, e1);
  EXPECT_EQ(epoch_indices(b, 0), e0);  // same epoch, same order
  Batcher other(toy(), o);
  EXPECT_EQ(epoch_indices(other, 1), e1);  // same seed, same order
}

TEST(Batcher, BatchesAreIdenticalWithOrWithoutWorkers) {
  BatcherOptions o;
  o.batch_size = 4;
  o.seed = 9;
  o.binarize = data::Binarize::kDynamic;
  o.workers = 0;
  Batcher sync(toy(), o);
  o.workers = 3;
  o.prefetch = 2;
  Batcher async(toy(), o);
  sync.start_epoch(2);
  async.start_epoch(2);
  std::int64_t count = 0;
  while (auto a = sync.next()) {
    auto b = async.next();
    ASSERT_TRUE(b.has_value());
    EXPECT_TRUE(torch::equal(a->images, b->images));
    EXPECT_TRUE(torch::equal(a->indices, b->indices));
    EXPECT_TRUE(torch::equal(a->labels, b->labels));
    EXPECT_TRUE(torch::equal(a->attributes, b->attributes));
    EXPECT_EQ(a->captions, b->captions);
    ++count;
  }
  EXPECT_FALSE(async.next().has_value());
  EXPECT_EQ(count, 6);
}

TEST(Batcher, RowsMatchTheirItems) {
  BatcherOptions o;
  o.batch_size = 6;
  Batcher b(toy(), o);
  b.start_epoch(0);
  auto batch = *b.next();
  for (std::int64_t r = 0; r < batch.size(); ++r) {
    const auto i = batch.indices[r].item<std::int64_t>();
    EXPECT_FLOAT_EQ(batch.images[r][0][0][0].item<float>(), static_cast<float>(i) / 23);
    EXPECT_EQ(batch.labels[r].item<std::int64_t>(), i % 5);
    EXPECT_EQ(batch.attributes[r].argmax().item<std::int64_t>(), i % 5);
    EXPECT_EQ(batch.captions[static_cast<std::size_t>(r)], "item " + std::to_string(i));
  }
}

TEST(Batcher, DynamicBinarizationRedrawsEachEpoch) {
  const std::int64_t n = 64;
  auto images = torch::full({n, 1, 8, 8}, 0.5f);
  BatcherOptions o;
  o.batch_size = n;
  o.shuffle = false;
  o.binarize = data::Binarize::kDynamic;
  Batcher b(data::tensor_dataset(images, torch::zeros({n}, torch::kInt64)), o);
  b.start_epoch(0);
  const auto x0 = b.next()->images;
  b.start_epoch(1);
  const auto x1 = b.next()->images;
  EXPECT_TRUE(torch::equal(x0, x0.round()));  // only 0 and 1
  EXPECT_NEAR(x0.mean().item<double>(), 0.5, 0.03);
  EXPECT_FALSE(torch::equal(x0, x1));
  b.start_epoch(0);
  EXPECT_TRUE(torch::equal(b.next()->images, x0));
}

TEST(Batcher, DropLastAndPartialBatches) {
  BatcherOptions o;
  o.batch_size = 10;
  o.drop_last = true;
  Batcher b(toy(), o);
  EXPECT_EQ(b.batches_per_epoch(), 2);
  EXPECT_EQ(epoch_indices(b, 0).size(), 20u);
  o.drop_last = false;
  Batcher c(toy(), o);
  EXPECT_EQ(c.batches_per_epoch(), 3);
  EXPECT_EQ(epoch_indices(c, 0).size(), 23u);
}

TEST(Batcher, PadTokensKeepsEosWhenCutting) {
  const auto [tokens, lengths] =
      data::pad_tokens({{2, 10, 11, 3}, {2, 12, 3}, {2, 5, 6, 7, 8, 3}}, 5);
  const auto expected =
      torch::tensor({2, 10, 11, 3, 0, 2, 12, 3, 0, 0, 2, 5, 6, 7, 3}, torch::kInt64).view({3, 5});
  EXPECT_TRUE(torch::equal(tokens, expected)) << tokens;
  EXPECT_TRUE(torch::equal(lengths, torch::tensor({4, 3, 5}, torch::kInt64)));
  EXPECT_THROW(data::pad_tokens({{2, 3}}, 1), Error);
}

TEST(Batcher, WorkerErrorsReachTheConsumer) {
  BatcherOptions o;
  o.batch_size = 3;
  o.shuffle = false;
  o.workers = 2;
  Batcher b(std::make_shared<Broken>(), o);
  b.start_epoch(0);
  try {
    while (b.next()) {
    }
    FAIL() << "no throw";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "item 7 is broken");
  }
}

TEST(Batcher, EmptyDatasetIsAClearError) {
  auto empty = data::tensor_dataset(torch::zeros({0, 1, 2, 2}), torch::zeros({0}, torch::kInt64));
  try {
    Batcher b(empty, BatcherOptions{});
    FAIL() << "no throw";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("is empty"), std::string::npos);
  }
}

TEST(Batcher, WorkersLeaveTheMainThreadCountAlone) {
  at::set_num_threads(2);
  BatcherOptions o;
  o.workers = 2;
  o.batch_size = 4;
  Batcher b(toy(), o);
  epoch_indices(b, 0);
  EXPECT_EQ(at::get_num_threads(), 2);
}
