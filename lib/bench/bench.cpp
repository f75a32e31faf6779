#include "mmkt/bench/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <iomanip>
#include <set>
#include <sstream>
#include <thread>

#include "mmkt/core/cpu_setup.h"
#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/data/batcher.h"
#include "mmkt/eval/embed.h"
#include "mmkt/eval/likelihood.h"
#include "mmkt/models/conv_transpose.h"
#include "mmkt/models/fused_gru.h"
#include "mmkt/optim/fused_adam.h"
#include "mmkt/query/answer.h"
#include "mmkt/query/index.h"
#include "mmkt/query/inputs.h"
#include "mmkt/run/config.h"
#include "mmkt/run/run.h"

namespace mmkt::bench {
namespace {
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Seconds per call of `fn`, called until at least `min_seconds` have passed: one timing.
double seconds_per_call(const std::function<void()>& fn, double min_seconds) {
  std::int64_t calls = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  while (elapsed < min_seconds) {
    fn();
    ++calls;
    elapsed = seconds_since(start);
  }
  return elapsed / static_cast<double>(calls);
}

// `repeats` timings of `fn` (>= min_seconds each), in milliseconds per call.
std::vector<double> ms_per_call(int repeats, double min_seconds, const std::function<void()>& fn) {
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) ms.push_back(1000.0 * seconds_per_call(fn, min_seconds));
  return ms;
}

nlohmann::json figure(const std::vector<double>& runs, const std::string& unit) {
  return {{"median", median(runs)}, {"runs", runs}, {"unit", unit}};
}

// An untrained run in memory, built from an experiment's configuration plus overrides.
LoadedRun in_memory_run(const std::string& config_path, const std::vector<std::string>& sets,
                        const torch::Device& device) {
  LoadedRun run;
  run.resolved = resolve_config_json(config_path, sets);
  run.config = resolve_data_choices(config_from_json(run.resolved, config_path));
  run.data = load_run_data(run.config, "");
  run.modalities = resolve_modalities(run.config, run.data);
  auto model_config = run.config.model;
  model_config.modalities = run.modalities;
  run.model = models::MultimodalVae(model_config);
  run.model->to(device);
  return run;
}

// The bench's conv-text variant of a caption run: a word tokenizer (overrides to pass to
// in_memory_run) and convolutional text networks of width 64 with 64-dimensional embeddings in
// place of the GRUs (experiments/fashion_strong_conv.json's text side); the rest unchanged.
const std::vector<std::string> kWordTokenizer = {"tokenizer.type=word", "tokenizer.vocab_size=512"};
void use_conv_text(LoadedRun& run, const torch::Device& device) {
  for (auto& m : run.modalities) {
    if (m.kind != models::ModalityKind::kText) continue;
    m.encoder = m.decoder = "conv";
    m.rnn_hidden = 64;
    m.embedding_dim = 64;
  }
  auto model_config = run.config.model;
  model_config.modalities = run.modalities;
  run.model = models::MultimodalVae(model_config);
  run.model->to(device);
}

std::vector<std::string> plus(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

data::BatcherOptions training_batches(const LoadedRun& run, int workers) {
  auto o = batcher_options(run, BatchPurpose::kTraining);
  o.workers = workers;
  return o;
}

// The training step (the same operations as train/trainer.cpp's loop: inputs to the device,
// drop the gradients, objective, backward, clipping when configured, FusedAdam, loss.item())
// on `prebuilt` batches, so that the step alone is timed. The model keeps its FusedAdam state
// between calls, so it can be trained for real epochs first (train_epochs) and timed again:
// a trained model's gradients, Adam moments and activations reach denormal magnitudes that an
// untrained one never shows (core/cpu_setup.h).
class StepTimer {
 public:
  StepTimer(LoadedRun& run, int prebuilt, const torch::Device& device)
      : run_(run),
        device_(device),
        parameters_(run.model->parameters()),
        adam_options_(torch::optim::AdamOptions(run.config.train.lr)
                          .betas({run.config.train.beta1, run.config.train.beta2})),
        fused_(parameters_, adam_options_),
        reference_(parameters_, adam_options_) {
    data::Batcher batcher(run.data.train, training_batches(run, 0));
    for (int k = 0; k < prebuilt; ++k) batches_.push_back(batcher.make_batch(0, k));
    options_ = objective_options_at(run.config, INFINITY);  // after every warm-up
  }

  // One step; `reference_adam`: libtorch's torch::optim::Adam with zero_grad() instead.
  void step(bool reference_adam) {
    step_on(
        batches_[static_cast<std::size_t>(next_++ % static_cast<std::int64_t>(batches_.size()))],
        options_, reference_adam);
  }

  // Samples/s over `steps` steps.
  double rate(int steps, bool reference_adam = false) {
    const auto start = Clock::now();
    for (int i = 0; i < steps; ++i) step(reference_adam);
    return static_cast<double>(run_.config.train.batch_size) * steps / seconds_since(start);
  }

  // Milliseconds of FusedAdam's update alone on the current gradients (after one step), median
  // of `repeats` timings of >= 0.2 s: the step's largest cost outside its matmuls.
  std::vector<double> adam_ms(int repeats) {
    step(false);
    return ms_per_call(repeats, 0.2, [&] { fused_.step(); });
  }

  // `epochs` real training epochs (fresh batches with their dynamic binarization, the run's
  // warm-ups and learning-rate schedule), as the trainer runs them.
  void train_epochs(int epochs) {
    model()->train();
    data::Batcher batcher(run_.data.train, training_batches(run_, 1));
    const auto per_epoch = batcher.batches_per_epoch();
    for (int e = 0; e < epochs; ++e) {
      batcher.start_epoch(e);
      std::int64_t k = 0;
      while (auto batch = batcher.next()) {
        const double progress = e + static_cast<double>(k++) / static_cast<double>(per_epoch);
        auto o = objective_options_at(run_.config, progress);
        set_learning_rate(learning_rate_at(run_.config.train, progress));
        step_on(*batch, o, false);
      }
    }
    set_learning_rate(run_.config.train.lr);
  }

 private:
  models::MultimodalVae& model() { return run_.model; }

  void set_learning_rate(double lr) {
    for (auto& group : fused_.param_groups())
      static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
  }

  void step_on(const data::Batch& batch, models::ObjectiveOptions& o, bool reference_adam) {
    auto& model = run_.model;
    model->train();
    o.labels = batch.labels.to(device_);
    const auto inputs = inputs_from_batch(batch, run_.modalities, device_);
    if (reference_adam) {
      reference_.zero_grad();
    } else {
      optim::clear_gradients(parameters_);
    }
    auto out = model->objective(inputs, o);
    const double loss = out.loss.item<double>();
    MMKT_CHECK(std::isfinite(loss), "bench: the training loss is ", loss);
    out.loss.backward();
    if (run_.config.train.grad_clip > 0) {
      torch::nn::utils::clip_grad_norm_(parameters_, run_.config.train.grad_clip);
    }
    if (reference_adam) {
      reference_.step();
    } else {
      fused_.step();
    }
  }

  LoadedRun& run_;
  torch::Device device_;
  std::vector<torch::Tensor> parameters_;
  torch::optim::AdamOptions adam_options_;
  optim::FusedAdam fused_;
  torch::optim::Adam reference_;
  std::vector<data::Batch> batches_;
  models::ObjectiveOptions options_;
  std::int64_t next_ = 0;
};

// Samples/s of the training step after `warmup` steps; `repeats` timings of `steps` steps.
// With `ablation`, the same model also steps with libtorch's torch::optim::Adam and
// zero_grad() (what mmkt used before FusedAdam); the two are timed in alternation, each
// going first in every other repeat, so that drifts of the machine hit both alike.
struct TrainingRates {
  std::vector<double> mmkt, reference_adam;
};
TrainingRates time_training(StepTimer& timer, int warmup, int steps, int repeats,
                            bool ablation = false) {
  for (int i = 0; i < warmup; ++i) {
    timer.step(false);
    if (ablation) timer.step(true);
  }
  TrainingRates rates;
  for (int r = 0; r < repeats; ++r) {
    if (ablation && r % 2 == 1) rates.reference_adam.push_back(timer.rate(steps, true));
    rates.mmkt.push_back(timer.rate(steps));
    if (ablation && r % 2 == 0) rates.reference_adam.push_back(timer.rate(steps, true));
  }
  return rates;
}
TrainingRates time_training(LoadedRun& run, int prebuilt, int warmup, int steps, int repeats,
                            const torch::Device& device, bool ablation = false) {
  StepTimer timer(run, prebuilt, device);
  return time_training(timer, warmup, steps, repeats, ablation);
}

// Runs `timing` with one of mmkt's fast paths switched off, restoring it afterwards (the
// ablation rows): `set` is models::set_fused_gru_enabled (libtorch's GRU instead of the fused
// one) or models::set_fast_conv_transpose_enabled (libtorch's ConvTranspose2d).
template <typename Timing>
std::vector<double> with_fast_path_off(void (*set)(bool), Timing timing) {
  struct Restore {
    void (*set)(bool);
    ~Restore() { set(true); }
  } restore{set};
  set(false);
  return timing();
}

// Milliseconds per pass over `gemms` (each [m,k] x [k,n] with the operand layouts a Linear's
// forward and backward use), median of `repeats` timings of >= 0.3 s.
std::vector<double> gemm_floor_ms(const std::vector<Gemm>& gemms, int repeats) {
  torch::NoGradGuard no_grad;
  struct Operands {
    torch::Tensor a, b, bias, c;
  };
  std::vector<Operands> ops;
  for (const auto& g : gemms) {
    // forward: x [m,k] W^T (W stored [n,k]); grad_W: g^T (g stored [k,m]) x; grad_x: g W.
    Operands o;
    o.a = g.transposed_a ? torch::randn({g.k, g.m}).t() : torch::randn({g.m, g.k});
    o.b = g.transposed_b ? torch::randn({g.n, g.k}).t() : torch::randn({g.k, g.n});
    if (g.bias) o.bias = torch::randn({g.n});
    o.c = torch::empty({g.m, g.n});
    ops.push_back(o);
  }
  const auto once = [&] {
    for (auto& o : ops) {
      if (o.bias.defined()) {
        torch::addmm_out(o.c, o.bias, o.a, o.b);
      } else {
        torch::mm_out(o.c, o.a, o.b);
      }
    }
  };
  for (int i = 0; i < 5; ++i) once();
  return ms_per_call(repeats, 0.3, once);
}

// Input widths of the modalities whose encoders are MLPs over the data (image pixels, label and
// attribute one-hots): the Linears that read them need no input gradient.
std::set<std::int64_t> data_widths(const std::vector<models::ModalityConfig>& modalities) {
  std::set<std::int64_t> widths;
  for (const auto& m : modalities) {
    if (m.kind == models::ModalityKind::kImage && m.encoder == "mlp") {
      std::int64_t n = 1;
      for (const auto d : m.shape) n *= d;
      widths.insert(n);
    } else if (m.kind == models::ModalityKind::kLabel ||
               m.kind == models::ModalityKind::kAttributes) {
      widths.insert(m.classes);
    }
  }
  return widths;
}

// Samples/s of the batcher (one background worker) feeding a consumer that takes each batch
// at once: `batches` batches per timing after 5 warm-up batches.
}  // namespace

nlohmann::json time_data_pipeline(const PipelineOptions& o, const Runtime& runtime) {
  MMKT_CHECK_INPUT(o.batch_size > 0 && o.batches > 0 && o.workers >= 0,
                   "data bench: --batch-size and --batches must be positive, --workers >= 0");
  const auto run = in_memory_run(
      "",
      {"data.dataset=" + o.dataset, "data.validation=0",
       "train.batch_size=" + std::to_string(o.batch_size), "seed=" + std::to_string(runtime.seed)},
      torch::kCPU);
  data::Batcher batcher(run.data.train, training_batches(run, o.workers));
  batcher.start_epoch(0);
  for (int i = 0; i < 5; ++i) batcher.next();  // warm-up
  const auto start = Clock::now();
  std::int64_t done = 0, samples = 0, epoch = 0;
  while (done < o.batches) {
    auto batch = batcher.next();
    if (!batch) {
      batcher.start_epoch(++epoch);
      continue;
    }
    samples += batch->size();
    ++done;
  }
  const double seconds = seconds_since(start);
  return {{"dataset", run.data.train->info().name},
          {"batch_size", o.batch_size},
          {"workers", o.workers},
          {"batches", done},
          {"seconds", seconds},
          {"batches_per_second", static_cast<double>(done) / seconds},
          {"samples_per_second", static_cast<double>(samples) / seconds}};
}

namespace {

std::vector<double> time_pipeline(const LoadedRun& run, int batches, int repeats) {
  data::Batcher batcher(run.data.train, training_batches(run, 1));
  const int total =
      static_cast<int>(std::min<std::int64_t>(batcher.batches_per_epoch(), batches + 5));
  std::vector<double> rates;
  for (int r = 0; r < repeats; ++r) {
    batcher.start_epoch(r);
    for (int i = 0; i < 5; ++i) batcher.next();
    const auto start = Clock::now();
    std::int64_t samples = 0;
    for (int i = 5; i < total; ++i) samples += batcher.next()->size();
    rates.push_back(static_cast<double>(samples) / seconds_since(start));
  }
  return rates;
}

// Forward + backward of the two first layers that read the same image in the MNIST JMVAE
// (q(z|x)'s 784 -> 512 and the joint encoder's image branch 784 -> 512, each + ReLU), as two
// matmuls and as one 784 -> 1024 matmul whose output is split: ms per call, alternating.
std::pair<std::vector<double>, std::vector<double>> time_shared_input_fusion(int repeats) {
  torch::manual_seed(0);
  const auto x = torch::rand({100, 784}).lt(0.13).to(torch::kFloat32);
  const auto w1 = torch::randn({512, 784}).mul_(0.03).requires_grad_();
  const auto w2 = torch::randn({512, 784}).mul_(0.03).requires_grad_();
  const auto b1 = torch::zeros({512}).requires_grad_();
  const auto b2 = torch::zeros({512}).requires_grad_();
  const auto wf = torch::cat({w1, w2}).detach().requires_grad_();
  const auto bf = torch::cat({b1, b2}).detach().requires_grad_();
  const auto g = torch::randn({100, 512});
  const auto separate = [&] {
    optim::clear_gradients({w1, w2, b1, b2});
    const auto h1 = torch::relu(torch::linear(x, w1, b1));
    const auto h2 = torch::relu(torch::linear(x, w2, b2));
    ((h1 * g).sum() + (h2 * g).sum()).backward();
  };
  const auto fused = [&] {
    optim::clear_gradients({wf, bf});
    const auto h = torch::relu(torch::linear(x, wf, bf)).chunk(2, 1);
    ((h[0] * g).sum() + (h[1] * g).sum()).backward();
  };
  const auto timed = [](const std::function<void()>& f) {
    const auto start = Clock::now();
    for (int i = 0; i < 50; ++i) f();
    return 1000.0 * seconds_since(start) / 50;
  };
  for (int i = 0; i < 5; ++i) {
    separate();
    fused();
  }
  std::vector<double> a, b;
  for (int r = 0; r < repeats; ++r) {
    a.push_back(timed(separate));
    b.push_back(timed(fused));
  }
  return {a, b};
}

std::string config_path(const BenchOptions& options, const std::string& name) {
  return options.experiments + "/" + name;
}

bool wants(const BenchOptions& options, const std::string& part) {
  return std::find(options.parts.begin(), options.parts.end(), part) != options.parts.end();
}

}  // namespace

std::vector<Gemm> training_gemms(torch::nn::Module& model, std::int64_t batch,
                                 const std::set<std::int64_t>& data_widths) {
  std::vector<Gemm> gemms;
  for (const auto& m : model.modules(/*include_self=*/true)) {
    const auto* linear = m->as<torch::nn::Linear>();
    if (!linear) continue;
    const auto out = linear->weight.size(0), in = linear->weight.size(1);
    const bool bias = linear->bias.defined();
    gemms.push_back({batch, in, out, false, true, bias});   // y = x W^T + b
    gemms.push_back({out, batch, in, true, false, false});  // grad_W = g^T x
    if (data_widths.count(in) == 0)
      gemms.push_back({batch, out, in, false, false, false});  // grad_x = g W
  }
  return gemms;
}

double median(std::vector<double> values) {
  MMKT_CHECK(!values.empty(), "median of no values");
  std::sort(values.begin(), values.end());
  const auto n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

std::int64_t linear_multiply_adds(torch::nn::Module& module) {
  std::int64_t total = 0;
  for (const auto& m : module.modules(/*include_self=*/true)) {
    if (const auto* linear = m->as<torch::nn::Linear>()) {
      total += linear->weight.size(0) * linear->weight.size(1);
    }
  }
  return total;
}

double matmul_gflops(std::int64_t m, std::int64_t k, std::int64_t n, int repeats) {
  torch::NoGradGuard no_grad;
  const auto a = torch::randn({m, k});
  const auto b = torch::randn({k, n});
  auto c = torch::empty({m, n});
  for (int i = 0; i < 3; ++i) torch::mm_out(c, a, b);
  std::vector<double> rates;
  for (const double ms : ms_per_call(repeats, 0.2, [&] { torch::mm_out(c, a, b); })) {
    rates.push_back(2.0 * m * k * n / (ms / 1000.0) / 1e9);
  }
  return median(rates);
}

nlohmann::json run_benchmarks(const BenchOptions& options, const Runtime& runtime) {
  for (const auto& p : options.parts) {
    MMKT_CHECK_INPUT(p == "matmul" || p == "train" || p == "train-mnist" || p == "eval" ||
                         p == "query" || p == "pipeline",
                     "bench: unknown part '", p,
                     "' (expected matmul, train, train-mnist, eval, query, pipeline)");
  }
  MMKT_CHECK_INPUT(options.repeats >= 1 && options.steps >= 1 && options.warmup_steps >= 0,
                   "bench: --repeats and --steps must be >= 1, --warmup >= 0");
  const auto device = runtime.device;
  nlohmann::json report;
  report["machine"] = {{"threads", runtime.threads},
                       {"blas", runtime.blas.name},
                       {"device", device.str()},
                       {"hardware_threads", std::thread::hardware_concurrency()},
                       {"repeats", options.repeats}};
  const auto mnist_config = config_path(options, "mnist_jmvae_paper.json");
  const auto fashion_config = config_path(options, "fashion_captions_short.json");
  const auto shapes_config = config_path(options, "shapes_l3.json");

  const bool train_mnist = wants(options, "train") || wants(options, "train-mnist");
  double peak = 0;
  if (wants(options, "matmul") || train_mnist) {
    log::info("bench: matmul peak");
    peak = matmul_gflops(1024, 1024, 1024, options.repeats);
    report["matmul_1024_gflops"] = peak;
    report["matmul_100x784x512_gflops"] = matmul_gflops(100, 784, 512, options.repeats);
  }

  double mnist_train = 0, fashion_train = 0;
  if (train_mnist || wants(options, "pipeline") || wants(options, "eval")) {
    auto mnist = in_memory_run(mnist_config, {"data.validation=0"}, device);
    if (train_mnist || wants(options, "pipeline")) {
      log::info("bench: MNIST paper-architecture training step");
      StepTimer timer(mnist, 20, device);
      const auto both = time_training(timer, options.warmup_steps, options.steps, options.repeats,
                                      /*ablation=*/true);
      const auto& rates = both.mmkt;
      mnist_train = median(rates);
      const auto batch = mnist.config.train.batch_size;
      const auto mads = linear_multiply_adds(*mnist.model);
      const double step_gflop = 6.0 * static_cast<double>(batch) * static_cast<double>(mads) / 1e9;
      const double gflops = step_gflop * mnist_train / batch;
      report["train_mnist"] = figure(rates, "samples/s");
      report["train_mnist"]["batch"] = batch;
      report["train_mnist"]["linear_multiply_adds"] = mads;
      report["train_mnist"]["gflop_per_step"] = step_gflop;
      report["train_mnist"]["gflops"] = gflops;
      report["train_mnist"]["share_of_matmul_peak"] = peak > 0 ? gflops / peak : 0.0;
      report["train_mnist_reference_adam"] = figure(both.reference_adam, "samples/s");

      log::info("bench: the step's own matmuls alone (its GEMM floor)");
      const auto gemms = training_gemms(*mnist.model, batch, data_widths(mnist.modalities));
      const auto floor = gemm_floor_ms(gemms, options.repeats);
      const double floor_ms = median(floor);
      const auto step_ms = [&](double samples_per_second) {
        return 1000.0 * batch / samples_per_second;
      };
      report["train_mnist_gemm_floor"] = figure(floor, "ms");
      report["train_mnist_gemm_floor"]["gemms"] = gemms.size();
      report["train_mnist_gemm_floor"]["step_ms"] = step_ms(mnist_train);
      report["train_mnist_gemm_floor"]["step_over_floor"] = step_ms(mnist_train) / floor_ms;
      std::int64_t parameters = 0;
      for (const auto& p : mnist.model->parameters()) parameters += p.numel();
      report["train_mnist_adam_ms"] = figure(timer.adam_ms(options.repeats), "ms");
      report["train_mnist_adam_ms"]["parameters"] = parameters;

      if (options.trained_epochs > 0) {
        // Real runs slow down after their first epoch when denormals are not flushed: time the
        // step again on the model trained for real epochs, in both floating-point modes, in
        // alternation.
        log::info("bench: training the MNIST model for ", options.trained_epochs,
                  " epoch(s), then timing its step with denormals flushed and kept");
        const auto start = Clock::now();
        timer.train_epochs(options.trained_epochs);
        const bool flushing = runtime.flush_denormals;
        std::vector<double> flushed, kept;
        for (int r = 0; r < options.repeats; ++r) {
          for (const bool mode : {r % 2 == 0, r % 2 != 0}) {
            apply_flush_denormals(mode);
            timer.step(false);  // the first step after a mode change is not timed
            (mode ? flushed : kept).push_back(timer.rate(options.steps));
          }
        }
        apply_flush_denormals(flushing);
        report["train_mnist_trained"] = figure(flushed, "samples/s");
        report["train_mnist_trained"]["epochs_trained"] = options.trained_epochs;
        report["train_mnist_trained"]["training_seconds"] = seconds_since(start);
        report["train_mnist_trained"]["step_over_floor"] = step_ms(median(flushed)) / floor_ms;
        report["train_mnist_trained_denormals_kept"] = figure(kept, "samples/s");
        report["train_mnist_trained_denormals_kept"]["step_over_floor"] =
            step_ms(median(kept)) / floor_ms;
      }
      if (runtime.threads > 1) {
        // Thread setting: the same step on one intra-op thread.
        log::info("bench: the MNIST step on 1 thread");
        at::set_num_threads(1);
        report["train_mnist_1_thread"] = figure(
            time_training(mnist, 20, options.warmup_steps, options.steps, options.repeats, device)
                .mmkt,
            "samples/s");
        at::set_num_threads(runtime.threads);
        apply_flush_denormals(runtime.flush_denormals);
      }
      log::info("bench: fusing the two matmuls that read the same image");
      const auto [separate, fused] = time_shared_input_fusion(options.repeats);
      report["shared_input_separate_ms"] = figure(separate, "ms");
      report["shared_input_fused_ms"] = figure(fused, "ms");
    }
    if (wants(options, "eval")) {
      log::info("bench: evaluation throughput and the K = 1000 likelihood");
      mnist.model->eval();
      std::vector<double> rates;
      for (int r = 0; r < options.repeats; ++r) {
        const auto start = Clock::now();
        const auto e = eval::embed_dataset(mnist, mnist.data.test, device);
        rates.push_back(static_cast<double>(e.labels.size(0)) / seconds_since(start));
      }
      report["eval_embed_mnist"] = figure(rates, "items/s");
      eval::LikelihoodOptions lo;
      lo.k = 1000;
      lo.max_items = 100;
      lo.estimates = {"joint"};
      std::vector<double> seconds;
      for (int r = 0; r < std::min(options.repeats, 3); ++r) {
        const auto start = Clock::now();
        eval::likelihood_report(mnist, mnist.data.test, lo, device);
        seconds.push_back(seconds_since(start));
      }
      report["likelihood_k1000_per_100_items"] = figure(seconds, "s");
      report["likelihood_k1000_per_100_items"]["estimate"] = "log p(image,label), q(z|image,label)";
    }
    if (wants(options, "pipeline")) {
      log::info("bench: MNIST data pipeline");
      const auto rates = time_pipeline(mnist, 200, options.repeats);
      report["pipeline_mnist"] = figure(rates, "samples/s");
      report["pipeline_mnist"]["ratio_to_training"] = median(rates) / mnist_train;
    }
  }

  if (wants(options, "train")) {
    // Each shapes figure: 8 pre-built batches of 100, steps/4 steps per timing.
    const int steps = std::max(1, options.steps / 4);
    const std::vector<std::string> small = {"data.validation=0", "data.shapes_train=2000",
                                            "data.shapes_test=100"};
    const int warmup = std::min(options.warmup_steps, 2);
    auto rate = [&](LoadedRun& run) {
      return figure(time_training(run, 8, warmup, steps, options.repeats, device).mmkt,
                    "samples/s");
    };
    // A config's step, its ablations, and the same with conv text and a word tokenizer.
    auto shapes_rows = [&](const std::string& config, const std::string& key,
                           bool gru_ablation) {
      auto run = in_memory_run(config, small, device);
      report[key] = rate(run);
      auto timing = [&] { return time_training(run, 8, 1, steps, options.repeats, device).mmkt; };
      report[key + "_libtorch_deconv"] =
          figure(with_fast_path_off(models::set_fast_conv_transpose_enabled, timing),
                 "samples/s");
      if (gru_ablation) {
        report[key + "_libtorch_gru"] =
            figure(with_fast_path_off(models::set_fused_gru_enabled, timing), "samples/s");
      }
      auto conv_text = in_memory_run(config, plus(small, kWordTokenizer), device);
      use_conv_text(conv_text, device);
      report[key + "_conv_text"] = rate(conv_text);
    };
    log::info("bench: shapes 64x64 conv (32 channels) + text training steps");
    shapes_rows(shapes_config, "train_shapes", /*gru_ablation=*/true);
    // The shapes-levels recipe (experiments/shapes_levels_long_a1.json: 16 channels, GRU text,
    // contrastive term).
    log::info("bench: shapes-levels recipe (16-channel convs) + text training steps");
    shapes_rows(config_path(options, "shapes_levels_long_a1.json"), "train_shapes_recipe",
                /*gru_ablation=*/false);
  }

  if (wants(options, "train") || wants(options, "pipeline") || wants(options, "query")) {
    auto fashion = in_memory_run(fashion_config, {"data.validation=0"}, device);
    if (wants(options, "train") || wants(options, "pipeline")) {
      log::info("bench: Fashion-MNIST + captions training step");
      const int steps = std::max(1, options.steps / 2);
      const auto rates = time_training(fashion, 10, std::min(options.warmup_steps, 3), steps,
                                       options.repeats, device)
                             .mmkt;
      fashion_train = median(rates);
      report["train_fashion"] = figure(rates, "samples/s");
      report["train_fashion_libtorch_gru"] =
          figure(with_fast_path_off(models::set_fused_gru_enabled, [&] {
                   return time_training(fashion, 10, 1, steps, options.repeats, device).mmkt;
                 }),
                 "samples/s");
      if (wants(options, "train")) {
        log::info("bench: Fashion-MNIST + captions, word tokenizer: GRU and conv text");
        auto words =
            in_memory_run(fashion_config, plus({"data.validation=0"}, kWordTokenizer), device);
        report["train_fashion_gru_word"] =
            figure(time_training(words, 10, std::min(options.warmup_steps, 3), steps,
                                 options.repeats, device)
                       .mmkt,
                   "samples/s");
        use_conv_text(words, device);
        report["train_fashion_conv_text"] =
            figure(time_training(words, 10, std::min(options.warmup_steps, 3), steps,
                                 options.repeats, device)
                       .mmkt,
                   "samples/s");
      }
    }
    if (wants(options, "pipeline")) {
      log::info("bench: Fashion-MNIST + captions data pipeline");
      const auto rates = time_pipeline(fashion, 100, options.repeats);
      report["pipeline_fashion"] = figure(rates, "samples/s");
      report["pipeline_fashion"]["ratio_to_training"] = median(rates) / fashion_train;
    }
    if (wants(options, "query")) {
      log::info("bench: text -> image query over every Fashion-MNIST image");
      fashion.model->eval();
      torch::NoGradGuard no_grad;
      const auto index = query::build_index(fashion, "", "image", "all", device);
      std::vector<double> ms, encode_ms, search_ms;
      for (int i = 0; i < 20 + 200; ++i) {
        // What `mmkt query` runs: caption -> tokens -> q(z|text) mean -> cosine top-10.
        const auto a = query::answer(fashion, index, {"an ankle boot with a heel", ""},
                                     {10, "cosine"}, device);
        MMKT_CHECK(a.hits.size() == 10, "bench: the query returned ", a.hits.size(), " hits");
        if (i < 20) continue;
        ms.push_back(a.encode_ms + a.search_ms);
        encode_ms.push_back(a.encode_ms);
        search_ms.push_back(a.search_ms);
      }
      report["query_text_to_image"] = figure(ms, "ms");
      report["query_text_to_image"]["items"] = index.size();
      report["query_text_to_image"]["encode_median_ms"] = median(encode_ms);
      report["query_text_to_image"]["search_median_ms"] = median(search_ms);
    }
  }
  return report;
}

std::string bench_markdown(const nlohmann::json& r) {
  std::ostringstream out;
  out << std::fixed;
  const auto& m = r.at("machine");
  out << "Machine: " << m.at("hardware_threads") << " hardware threads, "
      << m.at("threads").get<int>() << " intra-op threads, BLAS " << m.at("blas").get<std::string>()
      << ", device " << m.at("device").get<std::string>() << "; medians of "
      << m.at("repeats").get<int>() << " timings after warm-up.\n\n";
  out << "| figure | value |\n| --- | ---: |\n";
  const auto row = [&](const std::string& key, const std::string& label, int digits,
                       const std::string& extra = "") {
    if (!r.contains(key)) return;
    const auto& f = r.at(key);
    const double v = f.is_number() ? f.get<double>() : f.at("median").get<double>();
    const std::string unit = f.is_number() ? "GFLOP/s" : f.at("unit").get<std::string>();
    out << "| " << label << " | " << std::setprecision(digits) << v << " " << unit << extra
        << " |\n";
  };
  row("matmul_1024_gflops", "matmul 1024 x 1024 x 1024 (peak)", 1);
  row("matmul_100x784x512_gflops", "matmul 100 x 784 x 512 (the step's largest shape)", 1);
  if (r.contains("train_mnist")) {
    const auto& t = r.at("train_mnist");
    std::ostringstream extra;
    extra << std::fixed << std::setprecision(1) << " (" << t.at("gflops").get<double>()
          << " GFLOP/s = " << std::setprecision(0)
          << 100 * t.at("share_of_matmul_peak").get<double>() << "% of the matmul peak)";
    row("train_mnist", "JMVAE-kl training, MNIST paper architecture, batch 100", 0, extra.str());
  }
  row("train_mnist_reference_adam", "the same step with libtorch's Adam + zero_grad() (ablation)",
      0);
  if (r.contains("train_mnist_gemm_floor")) {
    const auto& f = r.at("train_mnist_gemm_floor");
    std::ostringstream extra;
    extra << std::fixed << std::setprecision(2) << " (the step: " << f.at("step_ms").get<double>()
          << " ms = " << f.at("step_over_floor").get<double>() << "x the floor)";
    row("train_mnist_gemm_floor", "the step's own matmuls alone at their shapes (GEMM floor)", 2,
        extra.str());
  }
  if (r.contains("train_mnist_adam_ms")) {
    row("train_mnist_adam_ms",
        "of which FusedAdam's update alone (" +
            std::to_string(r.at("train_mnist_adam_ms").at("parameters").get<std::int64_t>()) +
            " parameters)",
        2);
  }
  for (const auto& [key, label] :
       {std::pair<std::string, std::string>{
            "train_mnist_trained",
            "the same step on the model after real training epochs, denormals flushed (FTZ/DAZ)"},
        {"train_mnist_trained_denormals_kept", "the same trained model, denormals kept"}}) {
    if (!r.contains(key)) continue;
    std::ostringstream extra;
    extra << std::fixed << std::setprecision(2) << " ("
          << r.at(key).at("step_over_floor").get<double>() << "x the GEMM floor)";
    row(key, label, 0, extra.str());
  }
  row("train_mnist_1_thread", "the same step on 1 intra-op thread", 0);
  row("shared_input_separate_ms",
      "q(z|x) and joint image branch first layers (fwd + bwd), two 784 -> 512 matmuls", 3);
  row("shared_input_fused_ms", "the same as one 784 -> 1024 matmul, split", 3);
  row("train_shapes", "JMVAE-kl + triplet training, 64x64 conv + GRU text (shapes), batch 100", 0);
  row("train_shapes_libtorch_gru",
      "the same step with libtorch's GRU instead of the fused one (ablation)", 0);
  row("train_shapes_conv_text",
      "the same step with a word tokenizer and conv text networks (width 64)", 0);
  row("train_shapes_libtorch_deconv",
      "the GRU-text step with libtorch's ConvTranspose2d instead of conv kernels (ablation)", 0);
  row("train_shapes_recipe",
      "JMVAE-kl + contrastive, shapes-levels recipe (16-channel convs + GRU text), batch 100", 0);
  row("train_shapes_recipe_libtorch_deconv",
      "the same step with libtorch's ConvTranspose2d (ablation)", 0);
  row("train_shapes_recipe_conv_text",
      "the same step with a word tokenizer and conv text networks (width 64)", 0);
  row("train_fashion", "JMVAE-kl + triplet training, Fashion-MNIST MLP + GRU text, batch 100", 0);
  row("train_fashion_libtorch_gru",
      "the same step with libtorch's GRU instead of the fused one (ablation)", 0);
  row("train_fashion_gru_word", "the same step with a word tokenizer (fused GRU text)", 0);
  row("train_fashion_conv_text",
      "the same step with a word tokenizer and conv text networks (width 64)", 0);
  row("eval_embed_mnist", "evaluation: posterior means of both modalities (MNIST test set)", 0);
  row("likelihood_k1000_per_100_items", "K = 1000 log p(image,label), 100 items", 2);
  if (r.contains("query_text_to_image")) {
    const auto& q = r.at("query_text_to_image");
    std::ostringstream extra;
    extra << std::fixed << std::setprecision(3) << " (tokenize + encode "
          << q.value("encode_median_ms", 0.0) << ", score + top-10 "
          << q.value("search_median_ms", 0.0) << ")";
    row("query_text_to_image",
        "text -> image query, " + std::to_string(q.at("items").get<std::int64_t>()) + " items", 3,
        extra.str());
  }
  for (const auto& [key, label] :
       {std::pair<std::string, std::string>{"pipeline_mnist",
                                            "data pipeline, MNIST (dynamic binarization)"},
        {"pipeline_fashion", "data pipeline, Fashion-MNIST + tokenized captions"}}) {
    if (!r.contains(key)) continue;
    std::ostringstream extra;
    extra << std::fixed << std::setprecision(0) << " ("
          << r.at(key).at("ratio_to_training").get<double>() << "x the training step's rate)";
    row(key, label, 0, extra.str());
  }
  return out.str();
}

}  // namespace mmkt::bench
