// Process start-up on the CPU, done first thing in main() before any thread or pool exists:
//
// 1. Denormal numbers. As training proceeds, gradients, Adam moments and activations reach
//    denormal magnitudes (< 1.2e-38 in float32), and x86 arithmetic on denormals is many times
//    slower: a real MNIST JMVAE run went from 14 s per epoch (epoch 1) to 41-48 s (epochs 4-40)
//    while the printed losses were identical with flushing on. We set flush-to-zero (FTZ, MXCSR
//    bit 15) and denormals-are-zero (DAZ, bit 6), as torch.set_flush_denormal(True) does for
//    PyTorch. MXCSR is per thread and a new thread inherits its creator's, so setting it on the
//    main thread before libgomp, OpenBLAS, the batcher or Gloo start threads covers them all;
//    apply_flush_denormals() also sets it on every OpenMP thread of an existing pool.
//    Off switch: MMKT_DENORMALS=keep in the environment, or --keep-denormals on the command line.
//
// 2. The BLAS core. Debian 12's OpenBLAS 0.3.21 (a DYNAMIC_ARCH build) does not recognise recent
//    CPUs (Sapphire Rapids, Zen 4): it falls back to its generic Prescott (SSE3) kernels, 2.5-5x
//    slower than its Haswell (AVX2) or SkylakeX (AVX-512) ones on the same machine, or runs an
//    AVX-512 CPU with its AVX2 kernels (1.6x slower, measured; see openblas_core_to_force).
//    OpenBLAS reads OPENBLAS_CORETYPE only when it loads, so the fix is to re-execute the process
//    once with that variable set. Off switch: MMKT_BLAS_FIX=0; a user's own OPENBLAS_CORETYPE wins
//    unless MMKT_BLAS_FIX=override.
#pragma once

#include <string>

namespace mmkt {

// --- floating-point mode of the calling thread ---
// Sets or clears FTZ and DAZ in the calling thread's MXCSR (no-op off x86).
void set_thread_flush_denormals(bool on);
// True when both FTZ and DAZ are set in the calling thread's MXCSR.
bool thread_flushes_denormals();
// Sets the mode on the calling thread and on every thread of the OpenMP pool (libtorch's
// intra-op threads and OpenMP OpenBLAS's); returns how many OpenMP threads confirmed it.
int apply_flush_denormals(bool on);
// True when every OpenMP thread (and the caller) has FTZ and DAZ set.
bool all_threads_flush_denormals();

// --- the OpenBLAS core ---
struct CpuFeatures {
  bool avx2 = false;
  bool avx512 = false;  // AVX-512 F, CD, BW, DQ and VL: what OpenBLAS's SkylakeX kernels use
};
CpuFeatures cpu_features();  // cpuid of this machine
// The name OpenBLAS reports for the kernels it chose ("Haswell", "Prescott", ...), or "" when
// the loaded BLAS is not OpenBLAS (openblas_get_corename looked up at run time, no link needed).
std::string openblas_core_name();
// The OPENBLAS_CORETYPE to force, or "" to keep what OpenBLAS chose:
//  - on a CPU with AVX-512 (see CpuFeatures): any core without AVX-512 kernels -> "SkylakeX".
//    This covers the generic fallbacks (Prescott, ...) and also AVX2-only cores chosen for
//    AVX-512 CPUs that 0.3.21 does not know (Zen 4 is run with its Haswell kernels): on such a
//    machine (2-vCPU AMD EPYC) `mmkt bench --part train-mnist` measured 4224 samples/s with
//    Haswell and 5826 with AVX-512 kernels, and the 1024^3 matmul 174 vs 312 GFLOP/s
//    (experiments/results/bench_train_mnist/);
//  - on a CPU with AVX2 only: a core without AVX2 kernels (Prescott, Core2, Nehalem,
//    Sandybridge, ...) -> "Haswell".
std::string openblas_core_to_force(const std::string& detected, const CpuFeatures& cpu);

// What early_cpu_setup did, for the start-up line and `mmkt info`.
struct CpuSetup {
  bool ran = false;  // early_cpu_setup was called (the mmkt binary; not unit tests)
  bool flush_denormals = false;
  std::string blas_core;              // core in effect ("" when not OpenBLAS)
  std::string blas_core_forced_from;  // the auto-detected core when we forced another, else ""
  std::string note;                   // one human-readable line
};
const CpuSetup& cpu_setup();

// First thing in main(): may re-execute the process (execv of /proc/self/exe with
// OPENBLAS_CORETYPE set) and then sets FTZ/DAZ on the main thread. Never throws; a failed
// re-exec continues with the detected core and says so in cpu_setup().note.
void early_cpu_setup(int argc, char** argv);

}  // namespace mmkt
