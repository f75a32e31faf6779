// What the transfer experiments (hbda.h, dwp.h) share: reading their JSON options after
// io::merge_strict, and the mean +- std cells of their tables.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmkt/core/error.h"

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

}  // namespace mmkt::transfer
