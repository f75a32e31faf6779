#include "mmkt/data/dataset.h"

#include <algorithm>
#include <numeric>

#include <torch/torch.h>

#include "mmkt/core/error.h"

namespace mmkt::data {

Batch Batch::to(const torch::Device& device) const {
  Batch b = *this;
  auto move = [&](torch::Tensor& t) {
    if (t.defined()) t = t.to(device, /*non_blocking=*/t.is_pinned());
  };
  move(b.images);
  move(b.tokens);
  move(b.lengths);
  move(b.labels);
  move(b.attributes);
  move(b.indices);
  return b;
}

torch::Tensor Dataset::images(const std::vector<std::int64_t>& indices) const {
  std::vector<torch::Tensor> list;
  list.reserve(indices.size());
  for (const auto i : indices) list.push_back(get(i).image);
  return torch::stack(list);
}

std::vector<std::string> Dataset::captions(const std::vector<std::int64_t>& indices) const {
  std::vector<std::string> out;
  out.reserve(indices.size());
  for (const auto i : indices) out.push_back(get(i).caption);
  return out;
}

torch::Tensor Dataset::labels(const std::vector<std::int64_t>& indices) const {
  auto out = torch::empty({static_cast<std::int64_t>(indices.size())}, torch::kInt64);
  auto* p = out.data_ptr<std::int64_t>();
  for (std::size_t k = 0; k < indices.size(); ++k) p[k] = get(indices[k]).label;
  return out;
}

torch::Tensor Dataset::attributes(const std::vector<std::int64_t>& indices) const {
  if (info().attribute_names.empty()) return {};
  std::vector<torch::Tensor> list;
  list.reserve(indices.size());
  for (const auto i : indices) list.push_back(get(i).attributes);
  return torch::stack(list);
}

namespace {

class SubsetDataset : public Dataset {
 public:
  SubsetDataset(DatasetPtr base, std::vector<std::int64_t> indices, std::string name)
      : base_(std::move(base)), indices_(std::move(indices)), info_(base_->info()) {
    if (!name.empty()) info_.name = std::move(name);
    const auto n = base_->size();
    for (std::size_t k = 0; k < indices_.size(); ++k) {
      MMKT_CHECK(indices_[k] >= 0 && indices_[k] < n, "subset index ", indices_[k], " at ", k,
                 " out of range for ", base_->info().name, " of size ", n);
    }
  }
  std::int64_t size() const override { return static_cast<std::int64_t>(indices_.size()); }
  Sample get(std::int64_t i) const override { return base_->get(map(i)); }
  const DatasetInfo& info() const override { return info_; }
  torch::Tensor images(const std::vector<std::int64_t>& idx) const override {
    return base_->images(map(idx));
  }
  std::vector<std::string> captions(const std::vector<std::int64_t>& idx) const override {
    return base_->captions(map(idx));
  }
  torch::Tensor labels(const std::vector<std::int64_t>& idx) const override {
    return base_->labels(map(idx));
  }
  torch::Tensor attributes(const std::vector<std::int64_t>& idx) const override {
    return base_->attributes(map(idx));
  }

 private:
  std::int64_t map(std::int64_t i) const {
    MMKT_CHECK(i >= 0 && i < size(), "index ", i, " out of range for ", info_.name, " of size ",
               size());
    return indices_[static_cast<std::size_t>(i)];
  }
  std::vector<std::int64_t> map(const std::vector<std::int64_t>& idx) const {
    std::vector<std::int64_t> out;
    out.reserve(idx.size());
    for (const auto i : idx) out.push_back(map(i));
    return out;
  }
  DatasetPtr base_;
  std::vector<std::int64_t> indices_;
  DatasetInfo info_;
};

class TensorDataset : public Dataset {
 public:
  TensorDataset(torch::Tensor images, torch::Tensor labels, std::vector<std::string> captions,
                torch::Tensor attributes, DatasetInfo info)
      : images_(std::move(images)),
        labels_(std::move(labels)),
        captions_(std::move(captions)),
        attributes_(std::move(attributes)),
        info_(std::move(info)) {
    MMKT_CHECK(images_.dim() == 4, "tensor_dataset: images must be [N,C,H,W], got ",
               images_.sizes());
    const auto n = images_.size(0);
    MMKT_CHECK(labels_.dim() == 1 && labels_.size(0) == n, "tensor_dataset: labels must be [", n,
               "]");
    labels_ = labels_.to(torch::kInt64).contiguous();
    MMKT_CHECK(captions_.empty() || static_cast<std::int64_t>(captions_.size()) == n,
               "tensor_dataset: ", captions_.size(), " captions for ", n, " images");
    MMKT_CHECK(!attributes_.defined() || (attributes_.dim() == 2 && attributes_.size(0) == n),
               "tensor_dataset: attributes must be [", n, ",A]");
    if (info_.name.empty()) info_.name = "tensors";
    if (info_.image_shape.empty()) info_.image_shape = images_.sizes().slice(1).vec();
    info_.has_captions = !captions_.empty();
    if (attributes_.defined() && info_.attribute_names.empty()) {
      for (std::int64_t a = 0; a < attributes_.size(1); ++a)
        info_.attribute_names.push_back("a" + std::to_string(a));
    }
  }
  std::int64_t size() const override { return images_.size(0); }
  Sample get(std::int64_t i) const override {
    MMKT_CHECK(i >= 0 && i < size(), "index ", i, " out of range for ", info_.name, " of size ",
               size());
    Sample s;
    s.image = images_[i];
    s.label = labels_.data_ptr<std::int64_t>()[i];
    if (!captions_.empty()) s.caption = captions_[static_cast<std::size_t>(i)];
    if (attributes_.defined()) s.attributes = attributes_[i];
    return s;
  }
  const DatasetInfo& info() const override { return info_; }
  torch::Tensor images(const std::vector<std::int64_t>& idx) const override {
    return images_.index_select(0, torch::tensor(idx, torch::kInt64));
  }
  torch::Tensor labels(const std::vector<std::int64_t>& idx) const override {
    return labels_.index_select(0, torch::tensor(idx, torch::kInt64));
  }
  torch::Tensor attributes(const std::vector<std::int64_t>& idx) const override {
    if (!attributes_.defined()) return {};
    return attributes_.index_select(0, torch::tensor(idx, torch::kInt64));
  }

 private:
  torch::Tensor images_, labels_;
  std::vector<std::string> captions_;
  torch::Tensor attributes_;
  DatasetInfo info_;
};

}  // namespace

DatasetPtr tensor_dataset(torch::Tensor images, torch::Tensor labels,
                          std::vector<std::string> captions, torch::Tensor attributes,
                          DatasetInfo info) {
  return std::make_shared<TensorDataset>(std::move(images), std::move(labels), std::move(captions),
                                         std::move(attributes), std::move(info));
}

DatasetPtr subset(DatasetPtr base, std::vector<std::int64_t> indices, std::string name) {
  return std::make_shared<SubsetDataset>(std::move(base), std::move(indices), std::move(name));
}

std::vector<std::int64_t> index_range(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(std::max<std::int64_t>(n, 0)));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

DatasetPtr head(DatasetPtr base, std::int64_t n) {
  if (n <= 0 || n >= base->size()) return base;
  return subset(std::move(base), index_range(n));
}

}  // namespace mmkt::data
