// `mmkt serve RUN`: the run's page and JSON API over HTTP (lib/serve/), until Ctrl-C.
// With --load-test it serves on a free loopback port, drives itself with the load test
// (serve/load.h), writes load.{json,md} and exits.
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>

#include "commands.h"
#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/io/files.h"
#include "mmkt/serve/http.h"
#include "mmkt/serve/load.h"
#include "mmkt/serve/service.h"

namespace mmkt::app {
namespace {

std::atomic<bool> g_stop{false};  // set by SIGINT/SIGTERM (only a lock-free store there)
extern "C" void on_stop_signal(int) { g_stop.store(true); }

std::vector<int> parse_clients(const std::string& list) {
  std::vector<int> out;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    MMKT_CHECK_INPUT(!item.empty() && item.find_first_not_of("0123456789") == std::string::npos,
                     "--clients: '", list, "' (expected counts like 1,8,32)");
    out.push_back(std::stoi(item));
    MMKT_CHECK_INPUT(out.back() > 0 && out.back() <= 256, "--clients: counts lie in 1..256");
  }
  return out;
}

}  // namespace

void register_serve(CLI::App& root, CommonOptions& common) {
  struct Args {
    serve::ServiceOptions service;
    serve::HttpOptions http;
    double max_upload_mb = 8;
    bool load_test = false;
    std::int64_t requests = 10000;
    std::string clients = "1,8,32", out;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = root.add_subcommand(
      "serve", "a web page and a JSON API for retrieval, zero-shot and generation (Ctrl-C stops)");
  cmd->add_option("run", args->service.run_dir, "run directory written by mmkt train")->required();
  cmd->add_option("--host", args->http.host,
                  "address to listen on (0.0.0.0 exposes the model to every machine that can "
                  "reach this one)")
      ->capture_default_str();
  cmd->add_option("--port", args->http.port, "port (0 = any free port)")->capture_default_str();
  cmd->add_option("--index", args->service.collection, "what is searched: test | all")
      ->capture_default_str();
  cmd->add_option("--workers", args->http.threads, "request threads (0 = one per core)")
      ->capture_default_str();
  cmd->add_option("--max-upload-mb", args->max_upload_mb, "largest request body")
      ->capture_default_str();
  cmd->add_flag("--load-test", args->load_test,
                "serve on a free loopback port, run the load test against it, and exit");
  cmd->add_option("--requests", args->requests, "load test: requests per client count")
      ->capture_default_str();
  cmd->add_option("--clients", args->clients, "load test: concurrent clients per level")
      ->capture_default_str();
  cmd->add_option("--out", args->out, "load test: folder for load.json and load.md");
  cmd->callback([&common, args] {
    auto runtime = common.runtime;
    // One intra-op thread per request unless --threads says otherwise: requests run in
    // parallel on the --workers threads instead of competing for one OpenMP pool.
    if (runtime.threads <= 0) runtime.threads = 1;
    const Runtime rt = init_runtime(runtime);
    MMKT_CHECK_INPUT(args->max_upload_mb > 0 && args->max_upload_mb <= 1024,
                     "--max-upload-mb must lie in (0, 1024]");
    MMKT_CHECK_INPUT(std::filesystem::is_directory(args->service.run_dir), args->service.run_dir,
                     ": no such run directory");
    args->http.max_upload_bytes = static_cast<std::size_t>(args->max_upload_mb * (1 << 20));
    const auto clients = parse_clients(args->clients);
    if (args->load_test) {
      args->http.host = "127.0.0.1";
      args->http.port = 0;
    }
    serve::Service service(args->service, rt.device);
    serve::HttpServer server(service, args->http);
    const int port = server.bind();
    std::thread listener([&server] { server.listen(); });
    if (args->load_test) {
      serve::LoadOptions lo;
      lo.port = port;
      lo.clients = clients;
      lo.requests = args->requests;
      const auto levels = serve::run_load(lo);
      server.stop();
      listener.join();
      const auto md = serve::load_markdown(levels);
      std::cout << md;
      if (!args->out.empty()) {
        std::filesystem::create_directories(args->out);
        nlohmann::json report{{"run", args->service.run_dir},
                              {"index", args->service.collection},
                              {"indexed_images", service.image_items()},
                              {"workers", server.threads()},
                              {"intra_op_threads", rt.threads},
                              {"levels", serve::load_json(levels)}};
        io::write_file_atomic(args->out + "/load.json", report.dump(2) + "\n");
        io::write_file_atomic(args->out + "/load.md", md);
      }
      return;
    }
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    std::cout << "mmkt serve: http://" << args->http.host << ":" << port << "/  ("
              << service.image_items() << " images, " << server.threads()
              << " request threads; Ctrl-C stops)" << std::endl;
    while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log::info("serve: stopping");
    server.stop();
    listener.join();
  });
}

}  // namespace mmkt::app
