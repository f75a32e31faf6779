// `mmkt bench`: the speed figures researchers ask for, each the median of repeated timings
// after a warm-up, in one process on one machine:
//   matmul     GFLOP/s of a 1024^3 float matmul (the machine's practical peak here) and of the
//              MNIST step's largest matmul shape (100 x 784 x 512)
//   train      JMVAE-kl training samples/s: the MNIST paper architecture at batch 100 (with its
//              achieved GFLOP/s = 6 x batch x sum(in x out of every Linear) / step seconds, the
//              usual forward + backward count, and that as a share of the matmul peak); the
//              64x64 conv + GRU text setting of experiments/shapes_l3.json (32 channels) and
//              of the shapes-levels recipe (experiments/shapes_levels_long_a1.json, 16
//              channels), each also with conv text and a word tokenizer; the Fashion-MNIST +
//              captions step of experiments/fashion_captions_short.json. Ablation rows switch
//              the fused GRU and the conv-kernel transposed convolution off
//   eval       posterior means of every modality, items/s (MNIST test set, batch 1000), and the
//              K = 1000 importance-weighted log p(image,label): seconds per 100 items
//   query      a text -> image query over a 70,000-item index (tokenize, encode, score, top-10)
//   pipeline   batches the training loop consumes, built by the batcher (one worker), samples/s,
//              for MNIST (dynamic binarization) and Fashion-MNIST + tokenized captions, and
//              the ratio to the matching training step's samples/s
// The models are untrained, except for train_mnist_trained: a model trained for real epochs
// (--trained-epochs), timed with denormals flushed and kept, because a trained model's
// gradients and Adam moments reach denormal magnitudes that cost far more than normal numbers.
// train_mnist_gemm_floor times the step's own matmuls alone at their shapes: the step's cost
// over that floor is what everything else (elementwise work, the loss, Adam, the framework) adds.
// Training steps run on pre-built batches so that the step alone is timed (the pipeline is
// measured separately).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mmkt/core/runtime.h"

namespace mmkt::bench {

// Parts: matmul, train (all three settings), train-mnist (the MNIST step only), eval, query,
// pipeline (which also times the MNIST and Fashion training steps it is compared with).
struct BenchOptions {
  std::vector<std::string> parts = {"matmul", "train", "eval", "query", "pipeline"};
  std::string experiments = "experiments";  // where the configurations are read
  int repeats = 5;                          // timings per figure (the median is reported)
  int warmup_steps = 5;                     // training steps before timing
  int steps = 20;          // training steps per timing (MNIST; the slower settings use fewer)
  int trained_epochs = 1;  // real MNIST epochs before timing the trained model's step (0: skip)
};

// Runs the requested parts; returns {"machine": {...}, "<figure>": {"median", "runs", "unit"},
// ...}.
nlohmann::json run_benchmarks(const BenchOptions& options, const Runtime& runtime);
std::string bench_markdown(const nlohmann::json& report);

// `mmkt data bench`: the batcher alone on a built-in dataset's training split, making batches as
// training does (batcher_options(run, BatchPurpose::kTraining): shuffled, binarized where the
// dataset is, captions tokenized by a tokenizer trained on its captions) with `workers` threads;
// batches/s and samples/s over `batches` batches after 5 warm-up ones.
struct PipelineOptions {
  std::string dataset = "fashion-mnist";  // fashion-mnist | mnist | shapes
  std::int64_t batch_size = 100;
  std::int64_t batches = 300;
  int workers = 1;
};
nlohmann::json time_data_pipeline(const PipelineOptions& options, const Runtime& runtime);

// Median of `values` (mean of the middle two for an even count); throws on an empty list.
double median(std::vector<double> values);
// sum(in_features x out_features) over every torch::nn::Linear in `module`: a training step
// costs 6 x batch x this many FLOPs in its matmuls (2 forward, 4 backward).
std::int64_t linear_multiply_adds(torch::nn::Module& module);
// One matmul of a training step: [m,k] x [k,n], with the operand layouts libtorch uses.
struct Gemm {
  std::int64_t m, k, n;
  bool transposed_a, transposed_b, bias;
};
// The matmuls of one training step over every torch::nn::Linear [out, in] in `model` at `batch`
// rows: forward y = x W^T + b, grad_W = g^T x, and grad_x = g W unless the layer reads data
// (its in_features is one of `data_widths`: autograd computes no gradient for the data).
std::vector<Gemm> training_gemms(torch::nn::Module& model, std::int64_t batch,
                                 const std::set<std::int64_t>& data_widths);
// GFLOP/s of a float32 [m,k] x [k,n] matmul, median of `repeats` timings of >= 0.2 s.
double matmul_gflops(std::int64_t m, std::int64_t k, std::int64_t n, int repeats);

}  // namespace mmkt::bench
