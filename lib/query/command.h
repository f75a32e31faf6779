// `mmkt query` as one library call: what the command does between parsing its options and
// printing, so that the app stays a thin layer of options (apps/commands.h).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "mmkt/core/runtime.h"

namespace mmkt::query {

struct QueryRequest {
  std::string run;                  // run directory written by mmkt train
  std::string text;                 // the caption asked (when has_text)
  bool has_text = false;            // exactly one of a caption and an image file
  std::string image;                // the image file asked
  std::string target;               // image | text; "" = the other modality
  std::string collection = "test";  // indexed collection: test | all
  std::string score = "cosine";     // cosine | euclidean
  std::string out;                  // folder for query.json and query.png ("" = RUN/query)
  std::int64_t top = 12;
  int repeat = 1;  // answers timed; the median latency is reported
};

// Loads the run, opens its index of `target` items (building and saving it on first use),
// answers the question `repeat` times, and writes query.json (answer_json plus the index,
// latency and cold-start figures) and, for an image index, query.png into the output folder.
// Returns what query.json holds. InputError on a malformed request (both or neither of text and
// image, no such run, repeat < 1, a target that is neither image nor text).
nlohmann::json run_query_request(const QueryRequest& request, const Runtime& runtime);

// query.json's answer as terminal lines: "rank  score  class[  caption]".
std::string answer_lines(const nlohmann::json& answer);

}  // namespace mmkt::query
