// Small string helpers shared by option parsers.
#pragma once

#include <sstream>
#include <string>
#include <vector>

namespace mmkt {

// "a,b,,c" split on ',' -> {"a", "b", "", "c"} (empty fields kept; "" -> {}).
inline std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, separator)) out.push_back(item);
  return out;
}

}  // namespace mmkt
