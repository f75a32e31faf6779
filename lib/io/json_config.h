// Strict JSON configuration: a user document is merged over documented defaults, and every
// key the defaults do not know is an error naming its full path (with a suggestion for
// near-misses). Values must have the default's type (an integer is accepted for a float).
// `--set a.b=value` overrides go through the same checks.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mmkt::io {

using nlohmann::json;

// Parses JSON text; malformed input throws InputError naming `source` and the byte position.
json parse_json(const std::string& text, const std::string& source);
// Reads and parses a JSON file.
json load_json_file(const std::string& path);

// Returns `defaults` with `user` merged in. Objects merge key by key; arrays and scalars
// replace. Keys listed in `open_paths` (e.g. "model.modalities") are taken as given (their
// elements are validated by the caller). Throws InputError "<source>: <path>: ...".
json merge_strict(const json& defaults, const json& user, const std::string& source,
                  const std::vector<std::string>& open_paths = {});

// Applies "a.b.c=value" to `config` (value parsed as JSON, else taken as a string), with the
// same key and type checks as merge_strict.
void apply_override(json& config, const std::string& assignment,
                    const std::vector<std::string>& open_paths = {});

// Checks that every key of `object` is in `allowed`; throws InputError naming `where` and the
// unknown key (with a near-miss suggestion).
void check_keys(const json& object, const std::vector<std::string>& allowed,
                const std::string& where);

// Writes JSON atomically, pretty-printed.
void write_json_file(const std::string& path, const json& value);

}  // namespace mmkt::io
