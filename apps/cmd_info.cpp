// `mmkt info`: what this build and machine offer: version, threads, BLAS, devices, and a
// measured matmul rate, as JSON.
#include <chrono>
#include <iostream>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mmkt/bench/bench.h"
#include "mmkt/core/build_info.h"
#include "mmkt/core/cpu_setup.h"
#include "mmkt/text/tokenizer.h"

namespace mmkt::app {
namespace {

// Largest |C - C64| / max|C64| of an n x n float matmul against the same product in float64:
// checks that the BLAS kernels in use compute correctly (a wrong forced core would show here).
double matmul_relative_error(int n) {
  torch::NoGradGuard no_grad;
  auto a = torch::randn({n, n});
  auto b = torch::randn({n, n});
  const auto c = torch::mm(a, b).to(torch::kFloat64);
  const auto c64 = torch::mm(a.to(torch::kFloat64), b.to(torch::kFloat64));
  return ((c - c64).abs().max() / c64.abs().max()).item<double>();
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
    j["blas"] = {
        {"name", rt.blas.name}, {"path", rt.blas.path}, {"reference", rt.blas.is_reference}};
    j["blas_core"] = rt.blas_core;
    j["blas_core_forced_from"] = cpu_setup().blas_core_forced_from;
    j["blas_note"] = cpu_setup().note;
    j["flush_denormals"] = rt.flush_denormals;
    j["cpu"] = {{"avx2", cpu_features().avx2}, {"avx512", cpu_features().avx512}};
    j["device"] = rt.device.str();
    j["cuda_available"] = torch::cuda::is_available();
    j["cuda_devices"] = torch::cuda::device_count();
    j["sentencepiece_bridge"] = text::spm_bridge_path();
    if (*matmul_n > 0) {
      j["matmul_gflops"] = bench::matmul_gflops(*matmul_n, *matmul_n, *matmul_n, 3);
      j["matmul_relative_error"] = matmul_relative_error(*matmul_n);
    }
    std::cout << j.dump(2) << std::endl;
  });
}

}  // namespace mmkt::app
