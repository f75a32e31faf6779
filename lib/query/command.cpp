#include "mmkt/query/command.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <sstream>
#include <vector>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/io/files.h"
#include "mmkt/query/answer.h"
#include "mmkt/query/index.h"
#include "mmkt/query/inputs.h"
#include "mmkt/run/run.h"

namespace mmkt::query {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

}  // namespace

nlohmann::json run_query_request(const QueryRequest& r, const Runtime& rt) {
  const auto start = Clock::now();
  MMKT_CHECK_INPUT(r.has_text != !r.image.empty(), "give exactly one of --text or --image");
  MMKT_CHECK_INPUT(std::filesystem::is_directory(r.run), r.run, ": no such run directory");
  MMKT_CHECK_INPUT(r.repeat > 0, "--repeat must be positive");
  auto run = load_run(r.run, rt.device);
  using models::ModalityKind;
  const auto target = r.target.empty() ? (r.has_text ? ModalityKind::kImage : ModalityKind::kText)
                                       : models::parse_modality_kind(r.target, "--target");
  MMKT_CHECK_INPUT(target == ModalityKind::kImage || target == ModalityKind::kText, "--target '",
                   r.target, "' (expected image or text)");
  const auto target_modality = modality_of_kind(run, target);
  bool built = false;
  auto index = open_index(run, r.run, target_modality, r.collection, rt.device, &built);
  const double cold_ms = ms_since(start);

  const Question question{r.has_text ? r.text : "", r.has_text ? "" : r.image};
  const AnswerOptions options{r.top, r.score};
  Answer reply;
  std::vector<double> latencies;
  for (int i = 0; i < r.repeat; ++i) {
    reply = answer(run, index, question, options, rt.device);
    latencies.push_back(reply.encode_ms + reply.search_ms);
  }
  std::sort(latencies.begin(), latencies.end());
  const double median_ms = latencies[latencies.size() / 2];

  const std::string dir = r.out.empty() ? r.run + "/query" : r.out;
  std::filesystem::create_directories(dir);
  auto out = answer_json(run, index, question, options, reply);
  out["index"] = {{"collection", index.collection}, {"items", index.size()}, {"built_now", built}};
  out["latency_ms"] = {{"median", median_ms},
                       {"repeats", r.repeat},
                       {"min", latencies.front()},
                       {"max", latencies.back()}};
  out["cold_start_ms"] = cold_ms;
  io::write_file_atomic(dir + "/query.json", out.dump(2) + "\n");
  if (target == ModalityKind::kImage) {
    write_answer_png(run, index, question, reply, dir + "/query.png");
  }
  log::info("latency ", median_ms, " ms per query (median of ", r.repeat,
            ", encoder + search over ", index.size(), " items), cold start ", cold_ms,
            " ms; wrote ", dir, "/query.json",
            target == ModalityKind::kImage ? " and query.png" : "");
  return out;
}

std::string answer_lines(const nlohmann::json& answer) {
  std::ostringstream s;
  s << "query: " << answer["query"].get<std::string>() << " ("
    << answer["query_modality"].get<std::string>() << " -> "
    << answer["target_modality"].get<std::string>() << ", " << answer["index"]["items"].get<int>()
    << " items)\n";
  for (const auto& item : answer["results"]) {
    s << std::setw(3) << item["rank"].get<int>() << "  " << std::fixed << std::setprecision(3)
      << item["score"].get<double>() << "  " << item["class"].get<std::string>();
    if (item.contains("caption")) s << "  " << item["caption"].get<std::string>();
    s << "\n";
  }
  return s.str();
}

}  // namespace mmkt::query
