#include "mmkt/run/datasets.h"

#include <algorithm>

#include "mmkt/core/error.h"
#include "mmkt/core/runtime.h"
#include "mmkt/data/labelled_images.h"
#include "mmkt/data/manifest.h"
#include "mmkt/data/shapes.h"

namespace mmkt {
namespace {

data::LabelledImagesOptions labelled_options(const RunConfig& config, const std::string& split) {
  data::LabelledImagesOptions o;
  o.dataset = config.data.dataset;
  o.root = config.data.root;
  o.attributes_file = config.data.attributes_file;
  o.seed = config.seed;
  o.split = split;
  return o;
}

DatasetSource load_labelled_images(const RunConfig& config) {
  DatasetSource out;
  auto train = std::make_shared<data::LabelledImageDataset>(labelled_options(config, "train"));
  out.class_attributes = train->class_attributes();
  out.train = train;
  out.test = std::make_shared<data::LabelledImageDataset>(labelled_options(config, "test"));
  return out;
}

data::DatasetPtr labelled_images_for_evaluator(const RunConfig& config, std::int64_t) {
  return std::make_shared<data::LabelledImageDataset>(labelled_options(config, "train"));
}

data::ShapesOptions shapes_options(const RunConfig& config, std::uint64_t seed, std::int64_t size,
                                   data::ShapesSplit split) {
  data::ShapesOptions o;
  o.level = config.data.shapes_level;
  o.seed = seed;
  o.holdout = data::default_shapes_holdout(config.data.shapes_level);
  o.size = size;
  o.split = split;
  return o;
}

DatasetSource load_shapes(const RunConfig& config) {
  const auto& d = config.data;
  DatasetSource out;
  const auto combinations = data::default_shapes_holdout(d.shapes_level);
  const bool holdout = d.zero_shot_split && !combinations.empty();
  out.train = std::make_shared<data::ShapesDataset>(
      shapes_options(config, config.seed, d.shapes_train,
                     holdout ? data::ShapesSplit::kTrain : data::ShapesSplit::kAll));
  out.test = std::make_shared<data::ShapesDataset>(shapes_options(
      config, derive_seed(config.seed, "shapes-test"), d.shapes_test, data::ShapesSplit::kAll));
  if (holdout) {  // the held-out combinations' class indices (the training split lacks them)
    for (std::int64_t c = 0; c < data::shapes_num_classes(d.shapes_level); ++c) {
      if (data::shapes_matches_holdout(data::shapes_factors_from_label(c, d.shapes_level),
                                       combinations)) {
        out.unseen_classes.push_back(c);
      }
    }
  }
  return out;
}

data::DatasetPtr shapes_for_evaluator(const RunConfig& config, std::int64_t max_items) {
  return std::make_shared<data::ShapesDataset>(shapes_options(
      config, derive_seed(config.seed, "shapes-evaluator"),
      max_items > 0 ? max_items : config.data.shapes_train, data::ShapesSplit::kAll));
}

data::ManifestOptions manifest_options(const RunConfig& config, const std::string& path) {
  data::ManifestOptions o;
  o.path = path;
  o.channels = config.data.channels;
  o.image_size = config.data.image_size;
  o.attributes_file = config.data.attributes_file;
  return o;
}

DatasetSource load_manifest(const RunConfig& config) {
  const auto& d = config.data;
  DatasetSource out;
  auto train = std::make_shared<data::ManifestDataset>(manifest_options(config, d.manifest));
  out.class_attributes = train->class_attributes();
  out.train = train;
  if (!d.test_manifest.empty()) {
    out.test = std::make_shared<data::ManifestDataset>(manifest_options(config, d.test_manifest));
  }
  return out;
}

data::DatasetPtr manifest_for_evaluator(const RunConfig& config, std::int64_t) {
  return std::make_shared<data::ManifestDataset>(manifest_options(config, config.data.manifest));
}

const std::vector<DatasetEntry>& registry() {
  static const std::vector<DatasetEntry> entries = [] {
    std::vector<DatasetEntry> e;
    DatasetEntry mnist;
    mnist.name = "mnist";
    mnist.auto_binarize = "dynamic";
    mnist.label_modality = true;
    mnist.load = load_labelled_images;
    mnist.evaluator_images = labelled_images_for_evaluator;
    e.push_back(mnist);

    DatasetEntry fashion = mnist;
    fashion.name = "fashion-mnist";
    fashion.label_modality = false;
    e.push_back(fashion);

    DatasetEntry shapes;
    shapes.name = "shapes";
    shapes.auto_binarize = "none";
    shapes.factor_labels = true;
    shapes.load = load_shapes;
    shapes.evaluator_images = shapes_for_evaluator;
    e.push_back(shapes);

    DatasetEntry manifest;
    manifest.name = "manifest";
    manifest.user_data = true;
    manifest.check = [](const RunConfig& c) {
      MMKT_CHECK_INPUT(!c.data.manifest.empty(),
                       "data.manifest: required when data.dataset is manifest");
    };
    manifest.load = load_manifest;
    manifest.evaluator_images = manifest_for_evaluator;
    e.push_back(manifest);
    return e;
  }();
  return entries;
}

}  // namespace

const DatasetEntry& dataset_entry(const std::string& name) {
  const auto& entries = registry();
  const auto it = std::find_if(entries.begin(), entries.end(),
                               [&](const DatasetEntry& e) { return e.name == name; });
  if (it == entries.end()) {
    std::string known;
    for (const auto& e : entries) known += (known.empty() ? "" : ", ") + e.name;
    fail_input("unknown dataset '", name, "' (known: ", known, ")");
  }
  return *it;
}

std::vector<std::string> dataset_names() {
  std::vector<std::string> out;
  for (const auto& e : registry()) out.push_back(e.name);
  return out;
}

}  // namespace mmkt
