#include "mmkt/core/runtime.h"

#include <link.h>
#include <malloc.h>

#include <climits>
#include <cstdlib>
#include <thread>

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/utils.h>
#include <opencv2/core.hpp>

#include "mmkt/core/build_info.h"
#include "mmkt/core/cpu_setup.h"
#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/core/random.h"

namespace mmkt {
namespace {

int collect_blas(struct dl_phdr_info* info, size_t, void* data) {
  auto* paths = static_cast<std::vector<std::string>*>(data);
  if (info->dlpi_name == nullptr || info->dlpi_name[0] == '\0') return 0;
  const std::string name = info->dlpi_name;
  if (name.find("blas") != std::string::npos || name.find("mkl") != std::string::npos) {
    paths->push_back(name);
  }
  return 0;
}

std::string resolve(const std::string& path) {
  char buffer[PATH_MAX];
  return realpath(path.c_str(), buffer) != nullptr ? std::string(buffer) : path;
}

}  // namespace

BlasInfo detect_blas() {
  std::vector<std::string> loaded;
  dl_iterate_phdr(collect_blas, &loaded);
  BlasInfo info;
  for (const auto& raw : loaded) {
    const std::string path = resolve(raw);
    const bool is_libblas = path.find("libblas.so") != std::string::npos;
    if (!is_libblas && info.path.empty()) info.path = path;
    if (is_libblas) info.path = path;  // libblas.so.3 is the one libtorch calls
  }
  const std::string& p = info.path;
  if (p.empty()) {
    info.name = "none found (libtorch may carry its own kernels)";
  } else if (p.find("openblas-openmp") != std::string::npos) {
    info.name = "OpenBLAS (OpenMP)";
  } else if (p.find("openblas-pthread") != std::string::npos) {
    info.name = "OpenBLAS (pthreads)";
  } else if (p.find("openblas") != std::string::npos) {
    info.name = "OpenBLAS";
  } else if (p.find("blis") != std::string::npos) {
    info.name = "BLIS";
  } else if (p.find("mkl") != std::string::npos) {
    info.name = "Intel MKL";
  } else if (p.find("atlas") != std::string::npos) {
    info.name = "ATLAS";
  } else if (p.find("/blas/") != std::string::npos) {
    info.name = "reference BLAS (netlib)";
    info.is_reference = true;
  } else {
    info.name = "unknown BLAS";
  }
  return info;
}

int configure_threads(int requested) {
  int n = requested;
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  at::set_num_threads(n);
  return at::get_num_threads();
}

torch::Device parse_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available()) {
      fail_input("device '", name,
                 "' requested, but this LibTorch build has no CUDA support or no GPU is visible "
                 "(Debian's libtorch-dev is CPU-only; build mmkt against a CUDA LibTorch)");
    }
    int index = 0;
    if (name.size() > 5) {
      char* end = nullptr;
      const long v = std::strtol(name.c_str() + 5, &end, 10);
      MMKT_CHECK_INPUT(end != nullptr && *end == '\0' && v >= 0, "bad device '", name,
                       "' (expected cpu, cuda or cuda:N)");
      index = static_cast<int>(v);
    }
    const auto count = static_cast<int>(torch::cuda::device_count());
    MMKT_CHECK_INPUT(index < count, "device '", name, "' requested but only ", count,
                     " CUDA device(s) are visible");
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  fail_input("unknown device '", name, "' (expected cpu, cuda or cuda:N)");
}

std::mt19937_64& global_rng() {
  static std::mt19937_64 rng(0);
  return rng;
}

std::uint64_t derive_seed(std::uint64_t base, const std::string& stream) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a offset basis
  for (unsigned char c : stream) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return mix64(base ^ h);
}

void seed_everything(std::uint64_t seed) {
  torch::manual_seed(seed);  // CPU generator and, when present, every CUDA generator
  cv::theRNG().state = derive_seed(seed, "opencv");
  global_rng().seed(derive_seed(seed, "global"));
}

namespace {

// glibc serves allocations above a (dynamic, <= 32 MiB) threshold with fresh mmap()s and returns
// freed heap tops to the kernel, so every large temporary tensor (a 256 x 10k score block, a
// batch of decoder outputs) costs page faults on first touch. Keeping blocks up to 256 MiB on
// the heap and not trimming it halved `mmkt eval --metrics retrieval` on Fashion-MNIST
// (69.9 s -> 35.5 s, 2 threads, same run) and cut embedding the test set from 7.6 s to 2.2 s.
// The same effect as jemalloc/tcmalloc, which PyTorch recommends on CPU, without a dependency.
// MMKT_GLIBC_MALLOC=default keeps glibc's defaults.
void tune_allocator() {
#if defined(__GLIBC__)
  const char* keep = std::getenv("MMKT_GLIBC_MALLOC");
  if (keep && std::string(keep) == "default") return;
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
#endif
}

}  // namespace

Runtime init_runtime(const RuntimeOptions& options) {
  log::set_level(log::parse_level(options.log_level));
  tune_allocator();
  Runtime rt;
  rt.threads = configure_threads(options.threads);
  rt.device = parse_device(options.device);
  rt.seed = options.seed;
  seed_everything(options.seed);
  rt.blas = detect_blas();
  const CpuSetup& cpu = cpu_setup();
  // The pool may already exist (threads were set above): give every thread the start-up mode.
  if (cpu.ran) apply_flush_denormals(cpu.flush_denormals);
  rt.blas_core = cpu.blas_core;
  rt.flush_denormals = thread_flushes_denormals();
  log::info("mmkt ", MMKT_VERSION, " (", MMKT_BUILD_TYPE, "), threads ", rt.threads, ", device ",
            rt.device.str(), ", seed ", rt.seed, ", BLAS ", rt.blas.name,
            rt.blas.path.empty() ? "" : " [" + rt.blas.path + "]",
            cpu.note.empty() ? "" : ", " + cpu.note,
            rt.flush_denormals ? ", denormals flushed (FTZ/DAZ)" : ", denormals kept");
  if (rt.blas.is_reference) {
    log::warn("!!! the slow reference BLAS is loaded (", rt.blas.path,
              "): matrix products run 10-20x slower. Install an optimised one: "
              "apt-get install libopenblas0-openmp");
  }
  return rt;
}

}  // namespace mmkt
