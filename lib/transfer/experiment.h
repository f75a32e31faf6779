// What the transfer experiments (hbda.h, dwp.h) share: reading their JSON options after
// io::merge_strict, the mean +- std cells of their tables, and shapes as a classification task.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "mmkt/core/error.h"
#include "mmkt/data/shapes.h"

namespace mmkt::transfer {

// j[key] as T; InputError "<source>: <key> has the wrong type (...)" otherwise.
template <typename T>
T read_option(const nlohmann::json& j, const char* key, const std::string& source) {
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    fail_input(source, ": ", key, " has the wrong type (", j.at(key).dump(), ")");
  }
}

inline bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// "0.812 +- 0.004" (sample standard deviation over the values), "0.812" for one value, "-" for
// none.
std::string mean_std(const std::vector<double>& values);

// L for a dataset named "shapes:L" (L in 1..5), else 0.
int shapes_dataset_level(const std::string& dataset);

// The shape factor (0..4, square .. star) of every item of a shapes dataset: the label that
// makes every level the same 5-class task on harder images (the level's own class label is
// the combination of all its active factors).
torch::Tensor shapes_shape_labels(const data::ShapesDataset& dataset);

}  // namespace mmkt::transfer
