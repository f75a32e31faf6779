// Compiled with -fopenmp (see CMakeLists.txt) so that apply_flush_denormals can reach every
// thread of the OpenMP pool that libtorch and OpenMP OpenBLAS share.
#include "mmkt/core/cpu_setup.h"

#include <dlfcn.h>
#include <strings.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <xmmintrin.h>
#define MMKT_X86 1
#endif
#include <omp.h>

namespace mmkt {
namespace {

#ifdef MMKT_X86
constexpr unsigned kFtz = 0x8000;  // MXCSR bit 15: results that would be denormal become 0
constexpr unsigned kDaz = 0x0040;  // MXCSR bit 6: denormal inputs are read as 0
#endif

CpuSetup& mutable_setup() {
  static CpuSetup setup;
  return setup;
}

bool env_is(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, value) == 0;
}

}  // namespace

void set_thread_flush_denormals(bool on) {
#ifdef MMKT_X86
  const unsigned csr = _mm_getcsr();
  _mm_setcsr(on ? (csr | kFtz | kDaz) : (csr & ~(kFtz | kDaz)));
#else
  (void)on;
#endif
}

bool thread_flushes_denormals() {
#ifdef MMKT_X86
  const unsigned csr = _mm_getcsr();
  return (csr & kFtz) != 0 && (csr & kDaz) != 0;
#else
  return false;
#endif
}

int apply_flush_denormals(bool on) {
  set_thread_flush_denormals(on);
  std::atomic<int> confirmed{0};
  // One parallel region as wide as the pool: libgomp reuses its threads across regions, so every
  // thread that later runs libtorch or OpenBLAS work is one of these (or is created later by a
  // thread that already has the mode, and inherits it).
#pragma omp parallel num_threads(omp_get_max_threads())
  {
    set_thread_flush_denormals(on);
    if (thread_flushes_denormals() == on) confirmed.fetch_add(1);
  }
  mutable_setup().flush_denormals = on;
  return confirmed.load();
}

bool all_threads_flush_denormals() {
  std::atomic<int> off{0};
#pragma omp parallel num_threads(omp_get_max_threads())
  {
    if (!thread_flushes_denormals()) off.fetch_add(1);
  }
  return off.load() == 0 && thread_flushes_denormals();
}

CpuFeatures cpu_features() {
  CpuFeatures f;
#ifdef MMKT_X86
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl");
#endif
  return f;
}

std::string openblas_core_name() {
  using CoreName = char* (*)();
  auto fn = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (fn == nullptr) return "";
  const char* name = fn();
  return name ? std::string(name) : std::string();
}

std::string openblas_core_to_force(const std::string& detected, const CpuFeatures& cpu) {
  if (detected.empty()) return "";  // not OpenBLAS
  // OpenBLAS core names (driver/others/dynamic.c) by the widest vectors their kernels use.
  static const std::vector<std::string> avx512_cores = {"SkylakeX", "Cooperlake", "SapphireRapids"};
  static const std::vector<std::string> avx2_cores = {"Haswell", "Zen",  "Excavator",
                                                      "Zen2",    "Zen3", "Alderlake"};
  const auto in = [&](const std::vector<std::string>& names) {
    for (const auto& c : names) {
      if (strcasecmp(c.c_str(), detected.c_str()) == 0) return true;
    }
    return false;
  };
  if (in(avx512_cores)) return "";
  if (cpu.avx512) return "SkylakeX";
  if (in(avx2_cores)) return "";
  if (cpu.avx2) return "Haswell";
  return "";
}

const CpuSetup& cpu_setup() { return mutable_setup(); }

void early_cpu_setup(int argc, char** argv) {
  auto& setup = mutable_setup();
  setup.ran = true;
  // 1. The BLAS core (may not return: execv replaces the process).
  const std::string detected = openblas_core_name();
  setup.blas_core = detected;
  const char* forced_from = std::getenv("MMKT_BLAS_FORCED_FROM");
  if (forced_from != nullptr) {
    // We are the re-executed process: say what happened, and keep the marker out of children
    // that should decide for themselves (they inherit OPENBLAS_CORETYPE, which is enough).
    setup.blas_core_forced_from = forced_from;
    setup.note = "OpenBLAS core " + detected +
                 " (forced with OPENBLAS_CORETYPE: OpenBLAS had chosen " + forced_from +
                 ", whose kernels do not use all of this CPU; MMKT_BLAS_FIX=0 turns this off)";
    unsetenv("MMKT_BLAS_FORCED_FROM");
  } else if (!detected.empty()) {
    // MMKT_BLAS_FIX=override also replaces a generic core that OPENBLAS_CORETYPE asked for
    // (a site-wide setting, or the tests, which start from Prescott on any machine).
    const bool user_chose =
        std::getenv("OPENBLAS_CORETYPE") != nullptr && !env_is("MMKT_BLAS_FIX", "override");
    const bool disabled = env_is("MMKT_BLAS_FIX", "0");
    const std::string target = openblas_core_to_force(detected, cpu_features());
    if (!target.empty() && !user_chose && !disabled) {
      setenv("OPENBLAS_CORETYPE", target.c_str(), 1);
      setenv("MMKT_BLAS_FORCED_FROM", detected.c_str(), 1);
      execv("/proc/self/exe", argv);
      // Still here: the re-exec failed. Continue with the slow kernels, loudly.
      unsetenv("OPENBLAS_CORETYPE");
      unsetenv("MMKT_BLAS_FORCED_FROM");
      setup.note = "OpenBLAS core " + detected + " lacks the " +
                   (target == "SkylakeX" ? "AVX-512" : "AVX2") +
                   " kernels this CPU can run, and re-executing with OPENBLAS_CORETYPE=" + target +
                   " failed (" + std::strerror(errno) +
                   "): matrix products run 1.5-5x slower than they could";
    } else if (!target.empty()) {
      setup.note = "OpenBLAS core " + detected + " lacks the " +
                   (target == "SkylakeX" ? "AVX-512" : "AVX2") + " kernels this CPU can run (" +
                   (user_chose ? "OPENBLAS_CORETYPE set by the user" : "MMKT_BLAS_FIX=0") +
                   "): OPENBLAS_CORETYPE=" + target + " would be faster";
    } else {
      setup.note = "OpenBLAS core " + detected;
    }
  }
  // 2. FTZ/DAZ on the main thread before any thread exists; threads inherit it.
  bool keep = env_is("MMKT_DENORMALS", "keep");
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--keep-denormals") == 0) keep = true;
  }
  set_thread_flush_denormals(!keep);
  setup.flush_denormals = !keep;
}

}  // namespace mmkt
