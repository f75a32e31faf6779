#include "mmkt/serve/service.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/image/convert.h"
#include "mmkt/io/base64.h"
#include "mmkt/io/files.h"
#include "mmkt/query/answer.h"
#include "mmkt/query/generate.h"
#include "mmkt/query/inputs.h"

namespace mmkt::serve {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kLatencyWindow = 1000;     // latencies kept per endpoint
constexpr std::size_t kMaxReportBytes = 200000;  // of RUN/eval/report.md shown in info()

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Text a client sent may not be UTF-8 (it reaches error messages): such bytes are replaced
// by U+FFFD rather than failing the reply.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Reply json_reply(const json& j) { return Reply{200, "application/json", dump(j)}; }

// The request's JSON object, every field among `allowed`.
json parse_request(const std::string& body, const std::set<std::string>& allowed) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    fail_input("malformed JSON: ", e.what());
  }
  MMKT_CHECK_INPUT(j.is_object(), "the request must be a JSON object");
  for (const auto& item : j.items()) {
    if (allowed.count(item.key()) == 0) {
      std::string names;
      for (const auto& a : allowed) names += (names.empty() ? "" : ", ") + a;
      fail_input("unknown field '", item.key(), "' (expected ", names, ")");
    }
  }
  return j;
}

std::string string_field(const json& j, const std::string& key, const std::string& fallback) {
  if (!j.contains(key)) return fallback;
  MMKT_CHECK_INPUT(j[key].is_string(), "field '", key, "' must be a string");
  return j[key].get<std::string>();
}

std::int64_t int_field(const json& j, const std::string& key, std::int64_t fallback,
                       std::int64_t lo, std::int64_t hi) {
  if (!j.contains(key)) return fallback;
  MMKT_CHECK_INPUT(j[key].is_number_integer(), "field '", key, "' must be an integer");
  const auto v = j[key].get<std::int64_t>();
  MMKT_CHECK_INPUT(v >= lo && v <= hi, "field '", key, "' must lie in [", lo, ", ", hi, "], got ",
                   v);
  return v;
}

bool bool_field(const json& j, const std::string& key, bool fallback) {
  if (!j.contains(key)) return fallback;
  MMKT_CHECK_INPUT(j[key].is_boolean(), "field '", key, "' must be true or false");
  return j[key].get<bool>();
}

// The image bytes of field "image": base64, or a data URL ("data:image/png;base64,...").
std::string image_field(const json& j) {
  auto text = string_field(j, "image", "");
  MMKT_CHECK_INPUT(!text.empty(), "field 'image' is empty");
  if (text.rfind("data:", 0) == 0) {
    const auto comma = text.find(',');
    MMKT_CHECK_INPUT(
        comma != std::string::npos && text.substr(0, comma).find(";base64") != std::string::npos,
        "field 'image': a data URL must be base64 (data:<type>;base64,...)");
    text = text.substr(comma + 1);
  }
  return io::base64_decode(text, "field 'image'");
}

std::string png_data_url(const torch::Tensor& image) {
  return "data:image/png;base64," + io::base64_encode(image::encode_png(image));
}

std::string modality_or_empty(const LoadedRun& run, models::ModalityKind kind) {
  for (const auto& m : run.modalities) {
    if (m.kind == kind) return m.name;
  }
  return "";
}

}  // namespace

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(std::max<std::size_t>(rank, 1), v.size()) - 1];
}

Reply error_reply(int status, const std::string& message) {
  return Reply{status, "application/json", dump(json{{"error", message}, {"status", status}})};
}

Service::Service(const ServiceOptions& options, const torch::Device& device)
    : options_(options), device_(device), run_(load_run(options.run_dir, device)) {
  MMKT_CHECK_INPUT(options_.collection == "test" || options_.collection == "all", "--index '",
                   options_.collection, "' (expected test or all)");
  image_modality_ = modality_or_empty(run_, models::ModalityKind::kImage);
  text_modality_ = modality_or_empty(run_, models::ModalityKind::kText);
  MMKT_CHECK_INPUT(!image_modality_.empty(), options_.run_dir,
                   ": mmkt serve needs a run with an image modality");
  image_index_ =
      query::open_index(run_, options_.run_dir, image_modality_, options_.collection, device_);
  if (!text_modality_.empty()) {
    text_index_ =
        query::open_index(run_, options_.run_dir, text_modality_, options_.collection, device_);
  }
  if (eval::zero_shot_task(run_).has_value()) {
    zero_shot_ = query::fit_zero_shot(run_, options_.zero_shot_max_train, device_);
  }
  log::info("serve: ", options_.run_dir, ", ", image_index_.size(), " indexed images",
            text_modality_.empty() ? "" : ", " + std::to_string(text_index_.size()) + " captions",
            zero_shot_ ? ", zero-shot over " + std::to_string(zero_shot_->task.unseen.size()) +
                             " unseen classes"
                       : "");
}

template <typename F>
Reply Service::timed(const std::string& endpoint, F&& handler) {
  const auto start = Clock::now();
  Reply reply;
  try {
    reply = handler();
  } catch (const InputError& e) {
    reply = error_reply(400, e.what());
  }
  record(endpoint, ms_since(start));
  return reply;
}

void Service::record(const std::string& endpoint, double ms) {
  std::lock_guard<std::mutex> lock(latency_mutex_);
  auto& v = latencies_[endpoint];
  if (v.size() == kLatencyWindow) v.erase(v.begin());
  v.push_back(ms);
}

Reply Service::info() {
  return timed("info", [&] {
    json modalities = json::array();
    for (const auto& m : run_.modalities) {
      modalities.push_back({{"name", m.name},
                            {"kind", models::to_string(m.kind)},
                            {"encoder", m.encoder},
                            {"decoder", m.decoder}});
    }
    json out{{"run", options_.run_dir},
             {"device", device_.str()},
             {"dataset", run_.config.data.dataset},
             {"model",
              {{"type", run_.config.model.type},
               {"latent_dim", run_.config.model.latent_dim},
               {"modalities", modalities}}},
             {"index",
              {{"collection", options_.collection},
               {"images", image_index_.size()},
               {"captions", text_modality_.empty() ? 0 : text_index_.size()}}},
             {"config", run_.resolved}};
    json zs{{"available", zero_shot_.has_value()}};
    if (zero_shot_) {
      zs["unseen_classes"] = json::array();
      for (auto c : zero_shot_->task.unseen) {
        zs["unseen_classes"].push_back(zero_shot_->task.class_names[static_cast<std::size_t>(c)]);
      }
      zs["methods"] =
          zero_shot_->prototypes.defined() ? json{"dap", "iap", "text"} : json{"dap", "iap"};
    }
    out["zero_shot"] = zs;
    const auto report = options_.run_dir + "/eval/report.md";
    if (io::file_exists(report))
      out["eval_report_md"] = io::read_file(report).substr(0, kMaxReportBytes);
    json requests = json::object();
    {
      std::lock_guard<std::mutex> lock(latency_mutex_);
      for (const auto& [endpoint, v] : latencies_) {
        requests[endpoint] = {{"count", v.size()},
                              {"p50_ms", percentile(v, 0.5)},
                              {"p99_ms", percentile(v, 0.99)},
                              {"last_ms", v.back()}};
      }
    }
    out["latency_ms"] = requests;
    return json_reply(out);
  });
}

Reply Service::query(const std::string& body) {
  const auto start = Clock::now();
  return timed("query", [&] {
    const auto j = parse_request(body, {"text", "image", "target", "top", "score"});
    const bool by_text = j.contains("text");
    MMKT_CHECK_INPUT(by_text != j.contains("image"), "give exactly one of 'text' and 'image'");
    query::Question question;
    if (by_text) {
      question.text = string_field(j, "text", "");
      MMKT_CHECK_INPUT(!question.text.empty(), "field 'text' is empty");
      MMKT_CHECK_INPUT(!text_modality_.empty(), "this run has no text modality");
    } else {
      question.image_bytes = image_field(j);
    }
    const auto target = string_field(j, "target", by_text ? "image" : "text");
    MMKT_CHECK_INPUT(target == "image" || target == "text", "field 'target': '", target,
                     "' (expected image or text)");
    MMKT_CHECK_INPUT(target == "image" || !text_modality_.empty(), "this run has no text modality");
    const query::AnswerOptions options{int_field(j, "top", 12, 1, 100),
                                       string_field(j, "score", "cosine")};
    MMKT_CHECK_INPUT(options.score == "cosine" || options.score == "euclidean", "field 'score': '",
                     options.score, "' (expected cosine or euclidean)");
    const auto& index = target == "image" ? image_index_ : text_index_;
    torch::NoGradGuard no_grad;
    const auto a = query::answer(run_, index, question, options, device_);
    auto out = query::answer_json(run_, index, question, options, a);
    if (target == "image") {
      for (auto& r : out["results"])
        r["url"] = "/api/item/" + std::to_string(r["item"].get<std::int64_t>()) + ".png";
    }
    out["index_items"] = index.size();
    out["encode_ms"] = a.encode_ms;
    out["search_ms"] = a.search_ms;
    out["latency_ms"] = ms_since(start);
    return json_reply(out);
  });
}

Reply Service::zeroshot(const std::string& body) {
  const auto start = Clock::now();
  return timed("zeroshot", [&] {
    const auto j = parse_request(body, {"image", "method", "top", "all_classes"});
    if (!zero_shot_) return error_reply(404, "this run has no zero-shot task");
    MMKT_CHECK_INPUT(j.contains("image"), "field 'image' is required");
    const auto method = string_field(j, "method", "all");
    std::vector<std::string> methods = {"dap", "iap"};
    if (zero_shot_->prototypes.defined()) methods.push_back("text");
    if (method != "all") {
      MMKT_CHECK_INPUT(std::find(methods.begin(), methods.end(), method) != methods.end(),
                       "field 'method': '", method, "' (expected all or one of this run's: ",
                       methods.size() == 3 ? "dap, iap, text" : "dap, iap", ")");
      methods = {method};
    }
    const auto top = int_field(j, "top", 5, 1, 100);
    const bool all_classes = bool_field(j, "all_classes", false);
    const auto input =
        query::image_bytes_input(run_, image_field(j), "the uploaded image", device_);
    torch::NoGradGuard no_grad;
    const auto mu = run_.model->encode(image_modality_, input).mu.cpu();
    json out{{"methods", json::object()}};
    for (const auto& m : methods) {
      out["methods"][m] = query::explain_zero_shot(*zero_shot_, mu, m, all_classes, top);
    }
    out["latency_ms"] = ms_since(start);
    return json_reply(out);
  });
}

Reply Service::generate(const std::string& body) {
  const auto start = Clock::now();
  return timed("generate", [&] {
    const auto j = parse_request(body, {"text", "image", "n", "beam"});
    const bool by_text = j.contains("text");
    MMKT_CHECK_INPUT(by_text != j.contains("image"), "give exactly one of 'text' and 'image'");
    MMKT_CHECK_INPUT(!text_modality_.empty(), "this run has no text modality");
    json out;
    if (by_text) {
      MMKT_CHECK_INPUT(!j.contains("beam"), "field 'beam' is for captions of an image");
      const auto n = int_field(j, "n", 16, 1, 64);
      const auto text = string_field(j, "text", "");
      MMKT_CHECK_INPUT(!text.empty(), "field 'text' is empty");
      const auto images =
          query::images_from_text(run_, query::text_input(run_, text, device_), n, 0);
      const int columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
      const auto scale = image::viewing_scale(images.size(2));
      out = {{"text", text},
             {"n", n},
             {"grid_png", png_data_url(image::make_grid(image::upscale_nearest(images, scale),
                                                        columns, 2 * scale))}};
    } else {
      const auto n = int_field(j, "n", 3, 1, 10);
      const auto beam = int_field(j, "beam", 3, 1, 8);
      const auto input =
          query::image_bytes_input(run_, image_field(j), "the uploaded image", device_);
      out = {{"n", n},
             {"beam", beam},
             {"captions", query::captions_from_image(run_, input, n, beam, 0)}};
    }
    out["latency_ms"] = ms_since(start);
    return json_reply(out);
  });
}

Reply Service::item_png(const std::string& id) {
  return timed("item", [&] {
    const bool digits =
        !id.empty() && id.size() <= 12 &&
        std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) return error_reply(404, "no such item");
    const auto row = std::stoll(id);
    if (row >= image_index_.size()) return error_reply(404, "no such item");
    const auto image = query::index_images(run_, image_index_, {row})[0];
    return Reply{200, "image/png",
                 image::encode_png(image::upscale_nearest(image.unsqueeze(0),
                                                          image::viewing_scale(image.size(1)))[0])};
  });
}

}  // namespace mmkt::serve
