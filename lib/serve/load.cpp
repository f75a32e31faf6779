#include "mmkt/serve/load.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <mutex>
#include <sstream>
#include <thread>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/serve/service.h"

namespace mmkt::serve {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

double resident_mb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  }
  return 0;
}

std::vector<LoadLevel> run_load(const LoadOptions& o) {
  MMKT_CHECK_INPUT(o.port > 0 && !o.queries.empty() && o.requests > 0, "run_load: bad options");
  std::vector<std::string> bodies;
  for (const auto& q : o.queries) bodies.push_back(nlohmann::json{{"text", q}, {"top", 12}}.dump());
  {
    httplib::Client warm(o.host, o.port);
    warm.set_keep_alive(true);
    warm.set_tcp_nodelay(true);
    for (std::int64_t i = 0; i < o.warmup; ++i) {
      warm.Post("/api/query", bodies[static_cast<std::size_t>(i) % bodies.size()],
                "application/json");
    }
  }
  std::vector<LoadLevel> levels;
  for (int clients : o.clients) {
    LoadLevel level;
    level.clients = clients;
    level.rss_start_mb = resident_mb();
    std::atomic<std::int64_t> next{0}, errors{0};
    std::mutex mutex;
    std::vector<double> latencies;
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(o.max_seconds));
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&] {
        httplib::Client client(o.host, o.port);
        client.set_keep_alive(true);
        client.set_tcp_nodelay(true);
        std::vector<double> mine;
        for (std::int64_t i = next++; i < o.requests && Clock::now() < deadline; i = next++) {
          const auto t0 = Clock::now();
          const auto res =
              client.Post("/api/query", bodies[static_cast<std::size_t>(i) % bodies.size()],
                          "application/json");
          mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
          if (!res || res->status != 200) ++errors;
        }
        std::lock_guard<std::mutex> lock(mutex);
        latencies.insert(latencies.end(), mine.begin(), mine.end());
      });
    }
    for (auto& t : threads) t.join();
    level.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    level.requests = static_cast<std::int64_t>(latencies.size());
    level.errors = errors;
    level.requests_per_second = static_cast<double>(level.requests) / level.seconds;
    level.p50_ms = percentile(latencies, 0.5);
    level.p99_ms = percentile(latencies, 0.99);
    level.rss_end_mb = resident_mb();
    log::info("load: ", clients, " clients, ", level.requests, " requests in ", level.seconds,
              " s: ", level.requests_per_second, " requests/s, p50 ", level.p50_ms, " ms, p99 ",
              level.p99_ms, " ms, ", level.errors, " errors, RSS ", level.rss_start_mb, " -> ",
              level.rss_end_mb, " MiB");
    levels.push_back(level);
  }
  return levels;
}

nlohmann::json load_json(const std::vector<LoadLevel>& levels) {
  auto out = nlohmann::json::array();
  for (const auto& l : levels) {
    out.push_back({{"clients", l.clients},
                   {"requests", l.requests},
                   {"errors", l.errors},
                   {"seconds", l.seconds},
                   {"requests_per_second", l.requests_per_second},
                   {"p50_ms", l.p50_ms},
                   {"p99_ms", l.p99_ms},
                   {"rss_start_mb", l.rss_start_mb},
                   {"rss_end_mb", l.rss_end_mb}});
  }
  return out;
}

std::string load_markdown(const std::vector<LoadLevel>& levels) {
  std::ostringstream s;
  s << "| clients | requests | errors | requests/s | p50 ms | p99 ms | RSS start -> end (MiB) |\n"
    << "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
  s << std::fixed;
  for (const auto& l : levels) {
    s << "| " << l.clients << " | " << l.requests << " | " << l.errors << " | "
      << std::setprecision(0) << l.requests_per_second << " | " << std::setprecision(2) << l.p50_ms
      << " | " << l.p99_ms << " | " << std::setprecision(1) << l.rss_start_mb << " -> "
      << l.rss_end_mb << " |\n";
  }
  return s.str();
}

}  // namespace mmkt::serve
