#include "mmkt/eval/shift.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <sstream>

#include <random>

#include <torch/torch.h>
#include <opencv2/imgproc.hpp>

#include "mmkt/core/error.h"
#include "mmkt/core/random.h"
#include "mmkt/data/photo_folder.h"
#include "mmkt/image/convert.h"

namespace mmkt::eval {
namespace {

// Independent streams for the draws of one seed.
enum Stream : std::uint64_t {
  kNoise = 1,
  kClassOrder,
  kPriorItems,
  kDerangement,
  kConceptItems,
  kPhoto
};
std::uint64_t stream_seed(std::uint64_t seed, Stream s) { return mix64(mix64(seed) ^ s); }

std::string format_number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

void check_base(const data::DatasetPtr& base, const char* what) {
  MMKT_CHECK_INPUT(base != nullptr, what, ": no base dataset");
}

// Labels of every item, all of which must be >= 0.
std::vector<std::int64_t> all_labels(const data::Dataset& base, const char* what) {
  std::vector<std::int64_t> indices(static_cast<std::size_t>(base.size()));
  std::iota(indices.begin(), indices.end(), 0);
  const auto t = base.labels(indices).to(torch::kInt64).contiguous();
  std::vector<std::int64_t> labels(t.data_ptr<std::int64_t>(),
                                   t.data_ptr<std::int64_t>() + t.numel());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    MMKT_CHECK_INPUT(labels[i] >= 0, what, " needs a class label on every item of ",
                     base.info().name, ", but item ", i, " has label ", labels[i]);
  }
  return labels;
}

// Applies fn (CV_32F HxW -> CV_32F HxW) to each channel of x [C,H,W] float32 contiguous.
template <typename Fn>
torch::Tensor per_channel(const torch::Tensor& x, Fn fn) {
  auto out = torch::empty_like(x);
  const int h = static_cast<int>(x.size(1)), w = static_cast<int>(x.size(2));
  for (std::int64_t c = 0; c < x.size(0); ++c) {
    const cv::Mat in(h, w, CV_32F, x[c].data_ptr());
    cv::Mat dst(h, w, CV_32F, out[c].data_ptr());  // wraps the tensor: copyTo writes into it
    fn(in).copyTo(dst);
  }
  return out;
}

// The photo shift's file sides: the photo folder's 28-120 pixels for 28-pixel items, scaled
// with the item's side otherwise.
struct PhotoSides {
  int min, max;
};
PhotoSides photo_sides(int side) { return {side, std::max(side, side * 120 / 28)}; }

class CovariateShift : public data::Dataset {
 public:
  CovariateShift(data::DatasetPtr base, std::string kind, double severity, std::uint64_t seed)
      : base_(std::move(base)),
        kind_(std::move(kind)),
        severity_(severity),
        seed_(seed),
        info_(base_->info()) {
    info_.name += "+" + kind_ + "@" + format_number(severity_);
  }
  std::int64_t size() const override { return base_->size(); }
  data::Sample get(std::int64_t index) const override {
    auto s = base_->get(index);
    s.image = transform(s.image, index);
    return s;
  }
  const data::DatasetInfo& info() const override { return info_; }
  torch::Tensor images(const std::vector<std::int64_t>& indices) const override {
    auto batch = base_->images(indices);
    if (severity_ == 0) return batch;
    std::vector<torch::Tensor> out;
    out.reserve(indices.size());
    for (std::size_t k = 0; k < indices.size(); ++k) {
      out.push_back(transform(batch[static_cast<std::int64_t>(k)], indices[k]));
    }
    return torch::stack(out);
  }
  std::vector<std::string> captions(const std::vector<std::int64_t>& indices) const override {
    return base_->captions(indices);
  }
  torch::Tensor labels(const std::vector<std::int64_t>& indices) const override {
    return base_->labels(indices);
  }
  torch::Tensor attributes(const std::vector<std::int64_t>& indices) const override {
    return base_->attributes(indices);
  }

 private:
  torch::Tensor transform(const torch::Tensor& image, std::int64_t index) const {
    if (severity_ == 0) return image;
    MMKT_CHECK(image.defined() && image.dim() == 3, info_.name, ": item ", index,
               " has no [C,H,W] image to shift");
    torch::NoGradGuard no_grad;
    const auto x = image.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    const int h = static_cast<int>(x.size(1)), w = static_cast<int>(x.size(2));
    if (kind_ == "rotation") {
      // Centre of the pixel grid, so that multiples of 90 degrees map pixels onto pixels.
      const cv::Mat m = cv::getRotationMatrix2D(cv::Point2f((w - 1) / 2.0f, (h - 1) / 2.0f),
                                                15.0 * severity_, 1.0);
      return per_channel(x, [&](const cv::Mat& in) {
        cv::Mat out;
        cv::warpAffine(in, out, m, in.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar(0));
        return out;
      });
    }
    if (kind_ == "noise") {
      // One OpenCV RNG per (seed, index): the same noise for an item however it is fetched.
      cv::RNG rng(mix64(stream_seed(seed_, kNoise) ^ static_cast<std::uint64_t>(index)));
      cv::Mat noise(static_cast<int>(x.size(0)) * h, w, CV_32F);
      rng.fill(noise, cv::RNG::NORMAL, 0.0, 0.1 * severity_);
      const auto n = torch::from_blob(noise.data, x.sizes(), torch::kFloat32);
      return (x + n).clamp(0, 1);  // a new tensor: `noise` may go
    }
    if (kind_ == "blur") {
      const double sigma = 0.5 * severity_;
      const int k = 2 * static_cast<int>(std::ceil(3 * sigma)) + 1;
      return per_channel(x, [&](const cv::Mat& in) {
        cv::Mat out;
        cv::GaussianBlur(in, out, cv::Size(k, k), sigma, sigma, cv::BORDER_REFLECT_101);
        return out;
      });
    }
    if (kind_ == "photo") {
      // The item as a user's photo file (data/photo_folder.h, drawn per (seed, index)), then
      // read back the way a manifest item is: decoded, brought to the base's side (area
      // interpolation when shrinking, cubic when growing, centre crop) and channel count.
      MMKT_CHECK_INPUT(x.size(0) == 1 && h == w, info_.name,
                       ": the photo shift needs square grey [1,H,W] images, item ", index, " is ",
                       x.sizes());
      std::mt19937_64 rng(mix64(stream_seed(seed_, kPhoto) ^ static_cast<std::uint64_t>(index)));
      const PhotoSides sides = photo_sides(h);
      const auto photo =
          data::render_photo(x[0], rng, sides.min, sides.max, std::min(severity_, 1.0));
      const auto name = info_.name + " item " + std::to_string(index);
      const auto decoded = image::decode_square_image(photo.bytes, 1, h, name);
      return image::mat_to_tensor(decoded).to(torch::kFloat32).div(255);
    }
    // contrast
    const auto mean = x.mean();
    return mean + (x - mean) / (1.0 + severity_);
  }

  data::DatasetPtr base_;
  std::string kind_;
  double severity_;
  std::uint64_t seed_;
  data::DatasetInfo info_;
};

class ConceptShift : public data::Dataset {
 public:
  ConceptShift(data::DatasetPtr base, torch::Tensor labels, std::string name)
      : base_(std::move(base)), labels_(std::move(labels)), info_(base_->info()) {
    info_.name = std::move(name);
  }
  std::int64_t size() const override { return base_->size(); }
  data::Sample get(std::int64_t index) const override {
    auto s = base_->get(index);  // checks the range
    s.label = labels_.data_ptr<std::int64_t>()[index];
    return s;
  }
  const data::DatasetInfo& info() const override { return info_; }
  torch::Tensor images(const std::vector<std::int64_t>& indices) const override {
    return base_->images(indices);
  }
  std::vector<std::string> captions(const std::vector<std::int64_t>& indices) const override {
    return base_->captions(indices);
  }
  torch::Tensor labels(const std::vector<std::int64_t>& indices) const override {
    for (const auto i : indices) {
      MMKT_CHECK(i >= 0 && i < size(), "index ", i, " out of range for ", info_.name, " of size ",
                 size());
    }
    return labels_.index_select(0, torch::tensor(indices, torch::kInt64));
  }
  torch::Tensor attributes(const std::vector<std::int64_t>& indices) const override {
    return base_->attributes(indices);
  }

 private:
  data::DatasetPtr base_;
  torch::Tensor labels_;
  data::DatasetInfo info_;
};

}  // namespace

std::vector<std::string> covariate_shift_kinds() {
  return {"rotation", "noise", "blur", "contrast", "photo"};
}

data::DatasetPtr covariate_shift(data::DatasetPtr base, const std::string& kind, double severity,
                                 std::uint64_t seed) {
  check_base(base, "covariate_shift");
  const auto kinds = covariate_shift_kinds();
  if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) {
    std::string list;
    for (const auto& k : kinds) list += (list.empty() ? "" : ", ") + k;
    fail_input("covariate shift kind '", kind, "' is unknown (expected one of: ", list, ")");
  }
  MMKT_CHECK_INPUT(std::isfinite(severity) && severity >= 0, "covariate shift '", kind,
                   "': severity must be a number >= 0, got ", severity);
  MMKT_CHECK_INPUT(kind != "photo" || severity <= 1,
                   "covariate shift 'photo': severity is a tint strength in [0, 1], got ",
                   severity);
  return std::make_shared<CovariateShift>(std::move(base), kind, severity, seed);
}

data::DatasetPtr prior_shift(data::DatasetPtr base, double severity, std::uint64_t seed) {
  check_base(base, "prior_shift");
  MMKT_CHECK_INPUT(std::isfinite(severity) && severity >= 0,
                   "prior shift: severity must be a number >= 0, got ", severity);
  const auto labels = all_labels(*base, "prior shift");
  std::map<std::int64_t, std::vector<std::int64_t>> items;  // class -> its items, in order
  for (std::size_t i = 0; i < labels.size(); ++i) {
    items[labels[i]].push_back(static_cast<std::int64_t>(i));
  }
  std::vector<std::int64_t> order;
  for (const auto& [label, list] : items) order.push_back(label);
  SplitMix class_rng(stream_seed(seed, kClassOrder)), item_rng(stream_seed(seed, kPriorItems));
  class_rng.shuffle(order);

  const auto classes = order.size();
  std::vector<std::int64_t> kept;
  for (std::size_t r = 0; r < classes; ++r) {
    auto list = items[order[r]];
    const double fraction =
        classes > 1
            ? std::exp2(-severity * static_cast<double>(r) / static_cast<double>(classes - 1))
            : 1.0;
    const auto keep = std::max<std::size_t>(
        1, static_cast<std::size_t>(std::llround(static_cast<double>(list.size()) * fraction)));
    item_rng.shuffle(list);
    kept.insert(kept.end(), list.begin(), list.begin() + static_cast<std::ptrdiff_t>(keep));
  }
  std::sort(kept.begin(), kept.end());
  const auto name = base->info().name + "+prior@" + format_number(severity);
  return data::subset(std::move(base), std::move(kept), name);
}

data::DatasetPtr concept_shift(data::DatasetPtr base, double share, std::uint64_t seed) {
  check_base(base, "concept_shift");
  MMKT_CHECK_INPUT(share >= 0 && share <= 1, "concept shift: share must be in [0,1], got ", share);
  auto labels = all_labels(*base, "concept shift");
  std::int64_t classes = static_cast<std::int64_t>(base->info().class_names.size());
  for (const auto l : labels) classes = std::max(classes, l + 1);
  const auto n = static_cast<std::int64_t>(labels.size());
  const auto changed = std::llround(share * static_cast<double>(n));
  if (changed > 0) {
    MMKT_CHECK_INPUT(classes >= 2, "concept shift needs at least 2 classes, ", base->info().name,
                     " has ", classes);
    // Sattolo's algorithm: a uniformly random cyclic permutation, so perm[c] != c for all c.
    std::vector<std::int64_t> perm(static_cast<std::size_t>(classes));
    std::iota(perm.begin(), perm.end(), 0);
    SplitMix perm_rng(stream_seed(seed, kDerangement));
    for (std::size_t i = perm.size() - 1; i > 0; --i) std::swap(perm[i], perm[perm_rng.below(i)]);
    // The first `changed` positions of a seeded Fisher-Yates shuffle of the items.
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    SplitMix item_rng(stream_seed(seed, kConceptItems));
    for (std::int64_t i = 0; i < changed; ++i) {
      const auto j =
          i + static_cast<std::int64_t>(item_rng.below(static_cast<std::uint64_t>(n - i)));
      std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
      auto& label = labels[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])];
      label = perm[static_cast<std::size_t>(label)];
    }
  }
  auto name = base->info().name + "+concept@" + format_number(share);
  return std::make_shared<ConceptShift>(std::move(base), torch::tensor(labels, torch::kInt64),
                                        std::move(name));
}

}  // namespace mmkt::eval
