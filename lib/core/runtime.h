// Process-wide run-time set-up: intra-op threads, the BLAS actually loaded, the device, and one
// seed for every random generator. Called once by each app before any tensor work.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include <torch/types.h>

namespace mmkt {

// Which BLAS library the process has loaded (libtorch reaches BLAS through libblas.so.3, an
// alternatives link that may point at the slow reference implementation).
struct BlasInfo {
  std::string path;           // resolved path of the loaded library, "" when none was found
  std::string name;           // "OpenBLAS (openmp)", "reference BLAS", ...
  bool is_reference = false;  // the netlib reference BLAS: 10-20x slower matmuls
};
BlasInfo detect_blas();

// Sets libtorch's intra-op threads (OpenMP and BLAS). requested <= 0 means
// std::thread::hardware_concurrency(). Returns the count in effect.
int configure_threads(int requested);

// "cpu", "cuda" or "cuda:N". Throws InputError when this LibTorch build or machine has no CUDA.
torch::Device parse_device(const std::string& name);

// Seeds libtorch (CPU and CUDA), OpenCV's theRNG and mmkt::global_rng() from one value.
void seed_everything(std::uint64_t seed);
// A generator for code that has no seed of its own (seeded by seed_everything).
std::mt19937_64& global_rng();
// Derives an independent stream seed from a base seed and a label (splitmix64 over FNV-1a),
// so that e.g. the shuffler and the binarizer of one run never share a stream.
std::uint64_t derive_seed(std::uint64_t base, const std::string& stream);

struct RuntimeOptions {
  int threads = 0;  // <= 0: hardware_concurrency
  std::string device = "cpu";
  std::uint64_t seed = 0;
  std::string log_level = "info";
};

// Everything an app does at start-up: log level, threads, seed, device; logs one line naming
// version, threads, BLAS and device, and warns loudly when the reference BLAS is loaded.
struct Runtime {
  int threads = 1;
  torch::Device device = torch::kCPU;
  std::uint64_t seed = 0;
  BlasInfo blas;
  std::string blas_core;         // OpenBLAS's kernel family ("Haswell", ...), "" if not OpenBLAS
  bool flush_denormals = false;  // FTZ/DAZ in effect (core/cpu_setup.h)
};
Runtime init_runtime(const RuntimeOptions& options);

}  // namespace mmkt
