// The datasets a run names in data.dataset, each described once. Adding a dataset means one
// entry in datasets.cpp (plus its item loader, a data::Dataset under lib/data/): configuration
// checks, the run's automatic data choices and splits, the default modalities, coherence and
// zero-shot evaluation ask this table for the dataset's traits instead of comparing names.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mmkt/data/class_attributes.h"
#include "mmkt/data/dataset.h"
#include "mmkt/run/config.h"

namespace mmkt {

// A dataset's items as its files hold them, before the run splits them.
struct DatasetSource {
  data::DatasetPtr train;  // the training items, every class
  data::DatasetPtr test;   // null: the run carves 10% of `train` for testing
  std::optional<data::ClassAttributes> class_attributes;
  // Classes held out of training that the dataset defines itself (the shapes' compositional
  // combinations, already absent from `train`); a class-attribute file's unseen classes come
  // with class_attributes instead.
  std::vector<std::int64_t> unseen_classes;
};

struct DatasetEntry {
  std::string name;  // the value of data.dataset
  // data.binarize under "auto": "dynamic" (near-binary digits and clothes, Bernoulli pixels) or
  // "none" (drawn shapes); "" = decided by surveying the images (resolve_data_choices).
  std::string auto_binarize;
  // The default second modality is a class label (MNIST, as in the JMVAE paper), not a caption.
  bool label_modality = false;
  // A user's own files: channels, resolution, binarization, free bits, network sizes and the
  // likelihood follow a survey of the data, and a run with too few steps is warned about.
  bool user_data = false;
  // Labels are combinations of generative factors (the shapes), judged factor by factor by
  // coherence and described by per-factor attributes in zero-shot, rather than plain classes.
  bool factor_labels = false;
  // Checks the configuration keys this dataset requires (may be empty).
  std::function<void(const RunConfig&)> check;
  std::function<DatasetSource(const RunConfig&)> load;
  // Real images of every class, the unseen ones included, for training evaluation classifiers;
  // datasets that draw items fresh draw `max_items` of them (0 = their training size).
  std::function<data::DatasetPtr(const RunConfig&, std::int64_t max_items)> evaluator_images;
};

// The entry named `name`; an unknown name fails with the list of known ones.
const DatasetEntry& dataset_entry(const std::string& name);
std::vector<std::string> dataset_names();

}  // namespace mmkt
