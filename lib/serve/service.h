// mmkt serve's JSON API, independent of HTTP (serve/http.h puts it on the wire). One run is
// loaded once; its image and caption indexes and its zero-shot classifiers are built at start.
// Every method may be called from many threads at once: the model, the indexes and the
// classifiers are shared read-only, and inference runs under NoGradGuard.
//
//   info()                 the run: configuration, modalities, indexes, zero-shot classes, its
//                          eval report (RUN/eval/report.md) and the measured latency per endpoint
//   query(body)            {"text": "..."} or {"image": base64 or a data URL}, optional
//                          "target" (image | text; default the other modality), "top" (1..100,
//                          12), "score" (cosine | euclidean) -> query::answer_json + "url" of
//                          each image hit + "latency_ms"
//   zeroshot(body)         {"image": ..., optional "method" (dap | iap | text | all), "top",
//                          "all_classes"} -> query::explain_zero_shot per method
//   generate(body)         {"text": "...", "n" (1..64, 16)} -> a grid of the drawn images as a
//                          PNG data URL; {"image": ..., "n" (1..10, 3), "beam" (1..8, 3)} ->
//                          captions
//   item_png(id)           the indexed image `id` (digits only) as PNG, upscaled to >= 112 px
// Bad requests (malformed JSON, unknown or mistyped fields, empty or non-UTF-8 text, images
// that do not decode) get status 400 with {"error": ...}; what the run cannot do, 404.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmkt/query/index.h"
#include "mmkt/query/zero_shot_classifier.h"
#include "mmkt/run/run.h"

namespace mmkt::serve {

struct ServiceOptions {
  std::string run_dir;
  std::string collection = "test";           // what is indexed: test | all (training + test)
  std::int64_t zero_shot_max_train = 20000;  // training embeddings the classifiers are fitted on
};

struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// The nearest-rank p-quantile (0 < p <= 1) of `values`; 0 for none.
double percentile(std::vector<double> values, double p);

// {"error": message, "status": status} as a reply.
Reply error_reply(int status, const std::string& message);

class Service {
 public:
  Service(const ServiceOptions& options, const torch::Device& device);

  Reply info();
  Reply query(const std::string& body);
  Reply zeroshot(const std::string& body);
  Reply generate(const std::string& body);
  Reply item_png(const std::string& id);

  std::int64_t image_items() const { return image_index_.size(); }

 private:
  // Runs `handler`, turning InputError into 400 and recording the latency under `endpoint`.
  template <typename F>
  Reply timed(const std::string& endpoint, F&& handler);
  void record(const std::string& endpoint, double ms);

  ServiceOptions options_;
  torch::Device device_;
  LoadedRun run_;
  std::string image_modality_, text_modality_;  // "" when the run has none
  query::SearchIndex image_index_, text_index_;
  std::optional<query::ZeroShotClassifier> zero_shot_;
  std::mutex latency_mutex_;
  std::map<std::string, std::vector<double>> latencies_;  // the last kLatencyWindow per endpoint
};

}  // namespace mmkt::serve
