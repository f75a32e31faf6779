#include "mmkt/io/json_config.h"

#include <algorithm>

#include "mmkt/core/error.h"
#include "mmkt/io/files.h"

namespace mmkt::io {
namespace {

// Levenshtein distance, for "did you mean" suggestions.
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string suggestion(const std::string& key, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_d = 3;  // suggest only close matches
  for (const auto& k : known) {
    const auto d = edit_distance(key, k);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  std::string list;
  for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
  return (best.empty() ? "" : " (did you mean '" + best + "'?)") + std::string("; known keys: ") +
         list;
}

std::string join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

bool types_compatible(const json& def, const json& val) {
  if (def.is_number_float()) return val.is_number();
  if (def.is_number_integer()) return val.is_number_integer();
  if (def.is_null()) return true;
  return def.type() == val.type();
}

std::string type_name(const json& v) {
  if (v.is_number_integer()) return "integer";
  if (v.is_number_float()) return "number";
  return v.type_name();
}

void merge_into(json& target, const json& user, const std::string& path, const std::string& source,
                const std::vector<std::string>& open_paths) {
  MMKT_CHECK_INPUT(user.is_object(), source, ": ", path.empty() ? "the configuration" : path,
                   " must be an object, got ", type_name(user));
  std::vector<std::string> known;
  for (const auto& [k, v] : target.items()) known.push_back(k);
  for (const auto& [key, value] : user.items()) {
    const std::string full = join(path, key);
    if (!target.contains(key)) {
      fail_input(source, ": ", full, ": unknown key", suggestion(key, known));
    }
    json& slot = target[key];
    const bool open = std::find(open_paths.begin(), open_paths.end(), full) != open_paths.end();
    if (open) {
      slot = value;
    } else if (slot.is_object()) {
      merge_into(slot, value, full, source, open_paths);
    } else {
      MMKT_CHECK_INPUT(types_compatible(slot, value), source, ": ", full, ": expected ",
                       type_name(slot), ", got ", type_name(value), " (", value.dump(), ")");
      if (slot.is_number_float() && value.is_number_integer()) {
        slot = value.get<double>();
      } else {
        slot = value;
      }
    }
  }
}

}  // namespace

json parse_json(const std::string& text, const std::string& source) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    fail_input(source, ": malformed JSON at byte ", e.byte, ": ", e.what());
  }
}

json load_json_file(const std::string& path) { return parse_json(read_file(path), path); }

json merge_strict(const json& defaults, const json& user, const std::string& source,
                  const std::vector<std::string>& open_paths) {
  json out = defaults;
  merge_into(out, user, "", source, open_paths);
  return out;
}

void apply_override(json& config, const std::string& assignment,
                    const std::vector<std::string>& open_paths) {
  const auto eq = assignment.find('=');
  MMKT_CHECK_INPUT(eq != std::string::npos && eq > 0, "--set '", assignment,
                   "': expected key.path=value");
  const std::string path = assignment.substr(0, eq);
  const std::string raw = assignment.substr(eq + 1);
  json value;
  try {
    value = json::parse(raw);
  } catch (const json::parse_error&) {
    value = raw;  // bare words are strings: --set data.dataset=mnist
  }
  // Build {"a": {"b": value}} and merge it with the same checks as a file.
  json nested = value;
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    parts.push_back(path.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    MMKT_CHECK_INPUT(!it->empty(), "--set '", assignment, "': empty key in path");
    nested = json{{*it, nested}};
  }
  merge_into(config, nested, "", "--set " + path, open_paths);
}

void check_keys(const json& object, const std::vector<std::string>& allowed,
                const std::string& where) {
  MMKT_CHECK_INPUT(object.is_object(), where, ": expected an object, got ", type_name(object));
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      fail_input(where, ".", key, ": unknown key", suggestion(key, allowed));
    }
  }
}

void write_json_file(const std::string& path, const json& value) {
  write_file_atomic(path, value.dump(2) + "\n");
}

}  // namespace mmkt::io
