#include "mmkt/transfer/experiment.h"

#include <cmath>
#include <iomanip>
#include <sstream>

namespace mmkt::transfer {

std::string mean_std(const std::vector<double>& v) {
  if (v.empty()) return "-";
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  std::ostringstream s;
  s << std::fixed << std::setprecision(3) << mean;
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - mean) * (x - mean);
    s << " +- " << std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  return s.str();
}

int shapes_dataset_level(const std::string& dataset) {
  const std::string prefix = "shapes:";
  if (dataset.size() != prefix.size() + 1 || dataset.compare(0, prefix.size(), prefix) != 0) {
    return 0;
  }
  const char c = dataset.back();
  return c >= '1' && c <= '5' ? c - '0' : 0;
}

torch::Tensor shapes_shape_labels(const data::ShapesDataset& dataset) {
  auto y = torch::empty({dataset.size()}, torch::kInt64);
  auto* out = y.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < dataset.size(); ++i) {
    out[i] = static_cast<std::int64_t>(dataset.factors(i).shape);
  }
  return y;
}

}  // namespace mmkt::transfer
