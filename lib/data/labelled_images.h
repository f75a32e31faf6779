// MNIST and Fashion-MNIST as image + caption + label + attribute datasets. Images come from IDX
// files; attributes from the class-attribute matrix in data/<dataset>.json; each image's
// caption is drawn from the caption grammar for its class, fixed per (seed, index).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mmkt/data/class_attributes.h"
#include "mmkt/data/dataset.h"

namespace mmkt::data {

struct LabelledImagesOptions {
  std::string dataset = "fashion-mnist";  // "mnist" | "fashion-mnist"
  std::string split = "train";            // "train" (60k) | "test" (10k)
  std::string root;             // folder with the IDX files; "" = default_data_root(dataset)
  std::string attributes_file;  // "" = <source>/data/<dataset with '_'>.json; "none" = no text
  std::uint64_t seed = 0;       // caption draws
};

// Where a dataset's IDX files are looked for by default: $MMKT_DATA_DIR/<dataset> when set,
// else data/cache/mnist for MNIST (filled by .ci/setup) and /usr/share/datasets/fashion-mnist
// (Debian's dataset-fashion-mnist) for Fashion-MNIST.
std::string default_data_root(const std::string& dataset);
// The class-attribute file shipped for a dataset (data/mnist.json, data/fashion_mnist.json).
std::string default_attributes_file(const std::string& dataset);

class LabelledImageDataset : public Dataset {
 public:
  explicit LabelledImageDataset(const LabelledImagesOptions& options);

  std::int64_t size() const override { return images_.size(0); }
  Sample get(std::int64_t index) const override;
  const DatasetInfo& info() const override { return info_; }
  torch::Tensor images(const std::vector<std::int64_t>& indices) const override;
  std::vector<std::string> captions(const std::vector<std::int64_t>& indices) const override;
  torch::Tensor labels(const std::vector<std::int64_t>& indices) const override;
  torch::Tensor attributes(const std::vector<std::int64_t>& indices) const override;

  const torch::Tensor& raw_images() const { return images_; }  // [N,1,28,28] uint8
  const torch::Tensor& all_labels() const { return labels_; }  // [N] int64
  const std::optional<ClassAttributes>& class_attributes() const { return attrs_; }
  std::string caption(std::int64_t index) const;

 private:
  void check_index(std::int64_t i) const;
  torch::Tensor images_;
  torch::Tensor labels_;
  std::optional<ClassAttributes> attrs_;
  std::unique_ptr<CaptionGrammar> grammar_;
  std::uint64_t caption_seed_ = 0;
  DatasetInfo info_;
};

// Indices of the items whose label is in `classes` (keep = true) or not in it (keep = false).
std::vector<std::int64_t> indices_by_class(const Dataset& dataset,
                                           const std::vector<std::int64_t>& classes, bool keep);

// A deterministic split of [0, n) into (train, validation) with `validation` items, by seed.
std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> split_train_validation(
    std::int64_t n, std::int64_t validation, std::uint64_t seed);

// A copy of `dataset` whose images are binarized once: pixel ~ Bernoulli(intensity) with a
// fixed seed (the fixed binarized test set of the JMVAE/IWAE evaluations).
DatasetPtr fixed_binarized(DatasetPtr dataset, std::uint64_t seed);

}  // namespace mmkt::data
