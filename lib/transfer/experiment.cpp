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

}  // namespace mmkt::transfer
