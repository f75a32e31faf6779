// A load test of a running mmkt serve over loopback: N client threads, each with its own
// keep-alive connection (cpp-httplib's client), send text queries (POST /api/query, top 12)
// back to back, bounded by a request count and a time limit per level. Reports requests/s,
// p50/p99 latency as the client sees it, errors, and the server process's resident memory at
// the start and end of each level (the test runs in the server's own process).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mmkt::serve {

struct LoadOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  std::vector<int> clients = {1, 8, 32};
  std::int64_t requests = 10000;  // per level
  double max_seconds = 120;       // per level
  std::int64_t warmup = 200;      // requests before the first level (not counted)
  std::vector<std::string> queries = {"an ankle boot with a heel", "a t-shirt with short sleeves",
                                      "a bag with a handle", "trousers with two legs"};
};

struct LoadLevel {
  int clients = 0;
  std::int64_t requests = 0, errors = 0;
  double seconds = 0, requests_per_second = 0, p50_ms = 0, p99_ms = 0;
  double rss_start_mb = 0, rss_end_mb = 0;
};

std::vector<LoadLevel> run_load(const LoadOptions& options);
nlohmann::json load_json(const std::vector<LoadLevel>& levels);
std::string load_markdown(const std::vector<LoadLevel>& levels);
// This process's resident memory (VmRSS), MiB; 0 where /proc is missing.
double resident_mb();

}  // namespace mmkt::serve
