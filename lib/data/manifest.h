// Your own data: a JSONL manifest, one object per line:
//   {"image": "imgs/001.jpg", "text": "a red heart", "label": 3, "attributes": [0, 1, 0]}
// "image" (absolute or relative to the manifest's folder) and "text" are required; "label"
// (an integer, or a class name when a class-attribute file names the classes), "class" (a
// class name) and "attributes" (0/1 numbers, the same count on every line) are optional; "id"
// is carried along. Any other key is an error. Images are decoded by OpenCV (any format it
// reads), converted to RGB or grey, resized and centre-cropped to image_size, kept as uint8
// and normalised to [0,1] on access. Every line is checked when the dataset is loaded.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mmkt/data/class_attributes.h"
#include "mmkt/data/dataset.h"

namespace mmkt::data {

// The largest integer "label" a manifest may use. Labels are class indices 0..C-1 and a class
// name is made for each index up to the largest, so an unchecked 4000000000 would hang building
// four billion names. Identifiers of other kinds belong in "id", or in "class" as names.
constexpr std::int64_t kMaxManifestLabel = 999'999;

struct ManifestOptions {
  std::string path;             // the .jsonl manifest
  int channels = 3;             // 3 = RGB, 1 = grey
  int image_size = 64;          // square side after resize + centre crop
  std::string attributes_file;  // optional class-attribute JSON (data/README.md): class names,
                                // per-class attributes, zero-shot split
  int threads = 2;              // image decoding threads
};

// What the images of a manifest look like, from an evenly spaced sample of them: what the
// automatic choices of a manifest run are made from (run/run_data.h resolve_data_choices).
struct ManifestImageSurvey {
  std::int64_t items = 0;     // lines in the manifest
  std::int64_t surveyed = 0;  // images decoded
  std::int64_t colour = 0;    // of those, images with > 2% of pixels whose channels differ by > 16
  double binary_pixel_share = 0.0;  // pixels whose grey value is within 16 of 0 or 255
  int median_short_side = 0;        // pixels
  bool binary() const { return binary_pixel_share >= 0.98; }
};
// Decodes up to `max_images` images of the manifest (errors name the line, as loading does).
ManifestImageSurvey survey_manifest_images(const std::string& manifest,
                                           std::int64_t max_images = 400, int threads = 2);

class ManifestDataset : public Dataset {
 public:
  explicit ManifestDataset(const ManifestOptions& options);

  std::int64_t size() const override { return images_.size(0); }
  Sample get(std::int64_t index) const override;
  const DatasetInfo& info() const override { return info_; }
  torch::Tensor images(const std::vector<std::int64_t>& indices) const override;
  std::vector<std::string> captions(const std::vector<std::int64_t>& indices) const override;
  torch::Tensor labels(const std::vector<std::int64_t>& indices) const override;
  torch::Tensor attributes(const std::vector<std::int64_t>& indices) const override;

  const std::optional<ClassAttributes>& class_attributes() const { return attrs_; }
  const std::vector<std::string>& image_paths() const { return paths_; }

 private:
  torch::Tensor images_;  // [N,C,S,S] uint8
  std::vector<std::string> captions_;
  std::vector<std::string> paths_;
  torch::Tensor labels_;      // [N] int64
  torch::Tensor attributes_;  // [N,A] float32 or undefined
  std::optional<ClassAttributes> attrs_;
  DatasetInfo info_;
};

}  // namespace mmkt::data
