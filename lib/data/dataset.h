// The data contract every model and evaluator uses: a Dataset yields Samples by index; the
// Batcher (batcher.h) stacks them into Batches. Concrete datasets: IDX image sets with class
// captions and attributes (labelled_images.h), procedural shapes (shapes.h), user manifests
// (manifest.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

namespace mmkt::data {

// One item. Absent modalities are undefined tensors / empty strings.
struct Sample {
  torch::Tensor image;       // [C,H,W] float32 in [0,1]
  std::string caption;       // UTF-8 text ("" when the dataset has none)
  std::int64_t label = -1;   // class index, -1 when unlabelled
  torch::Tensor attributes;  // [A] float32 of 0/1, undefined when the dataset has none
};

// A mini-batch. Token ids are right-padded with Tokenizer::kPadId.
struct Batch {
  torch::Tensor images;      // [B,C,H,W] float32
  torch::Tensor tokens;      // [B,L] int64 (BOS ... EOS pad...), undefined without captions
  torch::Tensor lengths;     // [B] int64 number of non-pad tokens
  torch::Tensor labels;      // [B] int64 (-1 for unlabelled)
  torch::Tensor attributes;  // [B,A] float32, undefined without attributes
  torch::Tensor indices;     // [B] int64 dataset indices of the rows
  std::vector<std::string> captions;
  // The global batch this one is a shard of (data-parallel training): its row count and where
  // this shard's rows start in it. A whole batch has offset 0 and global_rows == size().
  std::int64_t global_rows = 0;
  std::int64_t global_offset = 0;
  std::int64_t size() const { return indices.defined() ? indices.size(0) : 0; }
  // Moves every tensor to `device` (non_blocking where the source is pinned).
  Batch to(const torch::Device& device) const;
};

// What a dataset holds, for building models and reports.
struct DatasetInfo {
  std::string name;                          // "fashion-mnist", "shapes-l3", "manifest:<path>"
  std::vector<std::int64_t> image_shape;     // {C,H,W}
  std::vector<std::string> class_names;      // empty when unlabelled
  std::vector<std::string> attribute_names;  // empty without attributes
  bool has_captions = false;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::int64_t size() const = 0;
  virtual Sample get(std::int64_t index) const = 0;
  virtual const DatasetInfo& info() const = 0;
  // Images of many items at once, [B,C,H,W] float; the default stacks get(i).image.
  // Tensor-backed datasets override it with one index_select.
  virtual torch::Tensor images(const std::vector<std::int64_t>& indices) const;
  // Captions of many items; the default calls get(i).
  virtual std::vector<std::string> captions(const std::vector<std::int64_t>& indices) const;
  // Labels of many items, [B] int64; the default calls get(i).
  virtual torch::Tensor labels(const std::vector<std::int64_t>& indices) const;
  // Attributes of many items, [B,A] float; undefined when the dataset has none.
  virtual torch::Tensor attributes(const std::vector<std::int64_t>& indices) const;
};

using DatasetPtr = std::shared_ptr<const Dataset>;

// An in-memory dataset over tensors: images [N,C,H,W] float in [0,1], labels [N] int64,
// optional captions (N strings) and attributes [N,A]. `info.image_shape`, `info.has_captions`
// and `info.name` are filled in when left empty.
DatasetPtr tensor_dataset(torch::Tensor images, torch::Tensor labels,
                          std::vector<std::string> captions = {}, torch::Tensor attributes = {},
                          DatasetInfo info = {});

// A view of `base` restricted to `indices` (splits, zero-shot subsets).
DatasetPtr subset(DatasetPtr base, std::vector<std::int64_t> indices, std::string name = "");

// 0, 1, ..., n-1.
std::vector<std::int64_t> index_range(std::int64_t n);
// The first n items of `base` (base itself when n <= 0 or n >= its size).
DatasetPtr head(DatasetPtr base, std::int64_t n);

}  // namespace mmkt::data
