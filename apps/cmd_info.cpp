// `mmkt info`: what this build and machine offer: version, threads, BLAS, devices, and a
// measured matmul rate, as JSON.
#include <chrono>
#include <iostream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "commands.h"
#include "core/build_info.h"
#include "text/tokenizer.h"

namespace mmkt::app {
namespace {

// GFLOP/s of an n x n float matmul, median of `reps` runs after one warm-up.
double matmul_gflops(int n, int reps) {
  torch::NoGradGuard no_grad;
  auto a = torch::randn({n, n});
  auto b = torch::randn({n, n});
  auto c = torch::mm(a, b);
  std::vector<double> rates;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    c = torch::mm(a, b);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(2.0 * n * n * n / s / 1e9);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

}  // namespace

void register_info(CLI::App& root, CommonOptions& common) {
  auto* cmd = root.add_subcommand("info", "print build, threads, BLAS, devices and a matmul rate");
  auto matmul_n = std::make_shared<int>(1024);
  cmd->add_option("--matmul-size", *matmul_n, "size of the timed square matmul (0: skip)")
      ->capture_default_str();
  cmd->callback([&common, matmul_n] {
    const Runtime rt = init_runtime(common.runtime);
    nlohmann::json j;
    j["version"] = MMKT_VERSION;
    j["build_type"] = MMKT_BUILD_TYPE;
    j["threads"] = rt.threads;
    j["blas"] = {{"name", rt.blas.name}, {"path", rt.blas.path},
                 {"reference", rt.blas.is_reference}};
    j["device"] = rt.device.str();
    j["cuda_available"] = torch::cuda::is_available();
    j["cuda_devices"] = torch::cuda::device_count();
    j["sentencepiece_bridge"] = text::spm_bridge_path();
    if (*matmul_n > 0) j["matmul_gflops"] = matmul_gflops(*matmul_n, 5);
    std::cout << j.dump(2) << std::endl;
  });
}

}  // namespace mmkt::app
