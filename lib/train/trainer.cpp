#include "mmkt/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include <unistd.h>

#include "mmkt/core/build_info.h"
#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/core/progress.h"
#include "mmkt/data/batcher.h"
#include "mmkt/dist/communicator.h"
#include "mmkt/distill/grow_vae.h"
#include "mmkt/io/checkpoint.h"
#include "mmkt/io/files.h"
#include "mmkt/io/json_config.h"
#include "mmkt/optim/fused_adam.h"
#include "mmkt/run/datasets.h"

namespace mmkt::train {
namespace {
using Clock = std::chrono::steady_clock;

std::string format_terms(const std::map<std::string, double>& terms) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(3);
  const char* sep = "";
  for (const auto& [k, v] : terms) {
    out << sep << k << " " << v;
    sep = ", ";
  }
  return out.str();
}

// A file of rank 0's run directory on another rank: published by rank 0 through the store
// (no shared filesystem needed), written to a private temporary file that `use` reads.
template <typename Use>
void with_file_from_rank0(dist::Communicator& comm, const std::string& key, const std::string& path,
                          bool available, Use use) {
  if (comm.rank() == 0) {
    comm.publish(key, available ? io::read_file(path) : std::string());
    use(available ? path : std::string());
    return;
  }
  const auto bytes = comm.fetch(key);
  if (bytes.empty()) {
    use(std::string());
    return;
  }
  const auto local =
      (std::filesystem::temp_directory_path() /
       ("mmkt_rank" + std::to_string(comm.rank()) + "_" + std::to_string(::getpid()) + "_" +
        std::filesystem::path(path).filename().string()))
          .string();
  io::write_file_atomic(local, bytes);
  try {
    use(local);
  } catch (...) {
    std::filesystem::remove(local);
    throw;
  }
  std::filesystem::remove(local);
}

}  // namespace

std::map<std::string, double> evaluate_terms(models::MultimodalVae& model,
                                             const data::DatasetPtr& dataset,
                                             const RunConfig& config, const RunData& data,
                                             const std::vector<models::ModalityConfig>& modalities,
                                             const torch::Device& device) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  auto generator = at::detail::getDefaultCPUGenerator();
  const auto saved = generator.get_state();
  torch::manual_seed(derive_seed(config.seed, "evaluation"));
  data::Batcher batcher(dataset, batcher_options(config, data, BatchPurpose::kEvaluation));
  models::ObjectiveOptions options;
  std::map<std::string, double> sums;
  std::int64_t count = 0;
  batcher.start_epoch(0);
  while (auto batch = batcher.next()) {
    const auto out = model->objective(inputs_from_batch(*batch, modalities, device), options);
    const auto n = batch->size();
    for (const auto& [k, v] : out.terms) sums[k] += v.item<double>() * static_cast<double>(n);
    count += n;
  }
  for (auto& [k, v] : sums) v /= static_cast<double>(count);
  generator.set_state(saved);
  if (was_training) model->train();
  return sums;
}

std::optional<std::string> collapse_warning(const std::map<std::string, double>& train_terms,
                                            std::int64_t epoch) {
  const auto kl = train_terms.find("kl");
  if (kl == train_terms.end() || kl->second >= kCollapseKlNats) return std::nullopt;
  std::ostringstream out;
  out << std::setprecision(3) << "posterior collapse: KL(q(z|all) || p(z)) is " << kl->second
      << " nats per item after epoch " << epoch << " (below " << kCollapseKlNats
      << "): the decoders model the data without z, so retrieval and generation learn nothing. "
         "Likely causes: an image likelihood that does not fit the pixels (bernoulli on "
         "continuous or colour images), decoders strong enough to ignore z, a KL warm-up too "
         "short for the data. Try: train.free_bits=0.25, a longer train.warmup_epochs, likelihood "
         "gaussian with likelihood_scale 0 (learned), smaller image networks, more epochs.";
  return out.str();
}

namespace {

// One training process's hold on a run: the configuration, where the run lives, its rank among
// the workers, the data, the model with its optimizer, and the counters a checkpoint keeps.
struct Session {
  Session(const RunConfig& c, const std::string& run_dir, const Parallel& parallel,
          const torch::Device& d)
      : config(c),
        paths{run_dir},
        comm(parallel.comm),
        bucket_bytes(parallel.bucket_bytes),
        world(comm ? comm->world_size() : 1),
        rank(comm ? comm->rank() : 0),
        leader(rank == 0),
        device(d) {}
  const RunConfig& config;
  RunPaths paths;
  dist::Communicator* comm = nullptr;
  std::int64_t bucket_bytes = 0;
  int world = 1, rank = 0;
  bool leader = true;  // the only rank that reads or writes the run directory
  torch::Device device{torch::kCPU};
  RunData data;
  std::vector<models::ModalityConfig> modalities;
  models::MultimodalVae model{nullptr};
  std::unique_ptr<optim::FusedAdam> optimizer;
  std::vector<torch::Tensor> params;
  io::TrainingState state;
};

// The epoch's terms (means over its rows) and what timing needs.
struct EpochResult {
  std::map<std::string, double> terms;
  std::int64_t rows = 0;  // over every rank
  double seconds = 0, comm_seconds = 0;
};

// The files training writes into a run directory, config.json and the lock aside: the named
// ones and every checkpoint_epochN.pt.
std::vector<std::filesystem::path> run_files(const RunPaths& paths) {
  std::vector<std::filesystem::path> out = {paths.checkpoint(), paths.best(), paths.log(),
                                            paths.summary(), paths.tokenizer()};
  for (const auto& entry : std::filesystem::directory_iterator(paths.dir)) {
    const auto name = entry.path().filename().string();
    if (name.rfind("checkpoint_epoch", 0) == 0 && entry.path().extension() == ".pt") {
      out.push_back(entry.path());
    }
  }
  return out;
}

// Takes the run's lock; then, for a fresh run, refuses an old run's files (overwriting: deletes
// them, and eval/ with its reports on the old model) and writes config.json. Returns the lock
// (held until training ends); a leader's job.
io::FileLock claim_run_dir(const RunPaths& paths, const nlohmann::json& resolved, RunStart start) {
  std::filesystem::create_directories(paths.dir);
  std::string holder;
  auto lock = io::FileLock::try_acquire(paths.lock(), &holder);
  MMKT_CHECK_INPUT(lock.has_value(), paths.dir, ": another mmkt train (pid ", holder,
                   ") is writing this run; wait for it or choose another --run directory");
  if (start == RunStart::kResume) return std::move(*lock);
  if (start == RunStart::kOverwrite) {
    for (const auto& f : run_files(paths)) std::filesystem::remove(f);
    std::filesystem::remove_all(paths.dir + "/eval");
  }
  // A fresh run must not pick up an old run's tokenizer or append to its log.
  std::string stale;
  for (const auto& f : run_files(paths)) {
    if (std::filesystem::exists(f)) stale += (stale.empty() ? "" : ", ") + f.filename().string();
  }
  MMKT_CHECK_INPUT(stale.empty(), paths.dir, ": already holds run files (", stale,
                   "); use --resume to continue that run, --overwrite to replace it, or "
                   "choose another --run directory");
  io::write_json_file(paths.config(), resolved);
  return std::move(*lock);
}

// The datasets; the other ranks take rank 0's tokenizer (trained there, or the run's).
RunData load_data(const Session& s) {
  RunData data;
  if (!s.comm) {
    data = load_run_data(s.config, s.paths.tokenizer());
  } else if (s.leader) {
    data = load_run_data(s.config, s.paths.tokenizer());
    with_file_from_rank0(*s.comm, "tokenizer", s.paths.tokenizer(), data.tokenizer != nullptr,
                         [](const std::string&) {});
  } else {
    with_file_from_rank0(*s.comm, "tokenizer", s.paths.tokenizer(), false,
                         [&](const std::string& local) { data = load_run_data(s.config, local); });
  }
  return data;
}

void build_model(Session& s) {
  s.modalities = resolve_modalities(s.config, s.data);
  auto model_config = s.config.model;
  model_config.modalities = s.modalities;
  s.model = models::MultimodalVae(model_config);
  s.model->to(s.device);
  s.optimizer = std::make_unique<optim::FusedAdam>(
      s.model->parameters(), torch::optim::AdamOptions(s.config.train.lr)
                                 .betas({s.config.train.beta1, s.config.train.beta2}));
  s.params = s.model->parameters();
  std::int64_t parameters = 0;
  std::string modalities;
  for (const auto& p : s.params) parameters += p.numel();
  for (const auto& m : s.modalities)
    modalities += " " + m.name + "(" + m.encoder + "/" + m.likelihood + ")";
  log::info("model: ", s.config.model.type, ", latent ", s.config.model.latent_dim, ", ",
            parameters, " parameters, modalities:", modalities);
}

// train.init_from: the model starts as a trained run's (a fresh run only). The same
// architecture is a warm start; wider MLPs grow from it, computing the same function
// (antidistillation, distill/grow_vae.h). Text networks carry over only with the same
// tokenizer, so the two runs' tokenizer files must be identical.
void init_from_run(Session& s) {
  const auto& dir = s.config.train.init_from;
  MMKT_CHECK_INPUT(std::filesystem::is_directory(dir), "train.init_from ", dir,
                   ": no such run directory");
  auto source = load_run(dir, torch::kCPU);
  const RunPaths source_paths{dir};
  const bool source_text = io::file_exists(source_paths.tokenizer());
  const bool own_text = io::file_exists(s.paths.tokenizer());
  MMKT_CHECK_INPUT(source_text == own_text &&
                       (!own_text || io::read_file(source_paths.tokenizer()) ==
                                         io::read_file(s.paths.tokenizer())),
                   "train.init_from ", dir,
                   ": its tokenizer differs from this run's, so its text networks would read other "
                   "token ids (train this run on the same captions and tokenizer settings)");
  auto grown = distill::grow_multimodal_vae(source.model, s.model->config(), s.config.seed);
  const auto from = grown->named_parameters();
  torch::NoGradGuard no_grad;
  for (auto& p : s.model->named_parameters()) p.value().copy_(from[p.key()]);
  std::int64_t before = 0;
  for (const auto& p : source.model->parameters()) before += p.numel();
  log::info("model: starts from ", dir, " (", before,
            " parameters; MLPs wider than its own grown by Net2Net)");
}

// Resume: the latest checkpoint (model, optimizer, counters, RNG) on every rank, then
// config.json. Data parallelism: every replica starts from rank 0's weights.
void restore(Session& s, bool resume, const nlohmann::json& resolved) {
  if (resume) {
    const auto load = [&](const std::string& file) {
      s.state = io::load_checkpoint(file, *s.model, s.optimizer.get(), /*restore_rng=*/true);
    };
    if (s.comm) {
      with_file_from_rank0(*s.comm, "checkpoint", s.paths.checkpoint(), true, load);
    } else {
      load(s.paths.checkpoint());
    }
    // config.json changes only now that the checkpoint has loaded under it: a resume whose
    // --set does not fit the checkpoint fails above and leaves the run as it was.
    if (s.leader) io::write_json_file(s.paths.config(), resolved);
    log::info("resuming ", s.paths.dir, " after epoch ", s.state.epochs_done, " (step ",
              s.state.step, ")");
  }
  if (s.comm) {
    // The replicas are seeded alike; broadcasting rank 0's weights makes it certain.
    std::vector<torch::Tensor> state_tensors;
    for (const auto& p : s.params) state_tensors.push_back(p.detach());
    for (const auto& b : s.model->buffers()) state_tensors.push_back(b.detach());
    s.comm->broadcast(state_tensors, 0);
    log::info("data-parallel: ", s.world, " workers (c10d Gloo), global batch ",
              s.config.train.batch_size, " = ", s.world, " shards of ~",
              s.config.train.batch_size / s.world, ", buckets of ",
              static_cast<double>(s.bucket_bytes) / (1 << 20), " MiB");
  }
}

// The optimizer step after the gradients are in (and averaged over the ranks).
void apply_gradients(Session& s, std::int64_t rows, std::int64_t global_rows) {
  if (s.comm) dist::average_gradients(*s.comm, s.params, rows, global_rows, s.bucket_bytes);
  if (s.config.train.grad_clip > 0) {
    torch::nn::utils::clip_grad_norm_(s.params, s.config.train.grad_clip);
  }
  s.optimizer->step();
  ++s.state.step;
}

// One optimizer step on `batch` at fractional epoch `progress`; adds the batch's terms (times
// its rows) to `sums`. A rank without rows in a short last batch contributes zero gradients.
void train_step(Session& s, const data::Batch& batch, double progress, std::int64_t epoch,
                std::int64_t k, std::map<std::string, double>& sums) {
  auto options = objective_options_at(s.config, progress);
  options.token_dropout = s.config.train.token_dropout;  // training steps only
  const double lr = learning_rate_at(s.config.train, progress);
  for (auto& group : s.optimizer->param_groups()) {
    static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
  }
  optim::clear_gradients(s.params);
  const auto n = batch.size();
  if (n == 0) {
    MMKT_CHECK(s.comm != nullptr, "an empty training batch");
    apply_gradients(s, 0, batch.global_rows);
    return;
  }
  options.labels = batch.labels.to(s.device);
  const auto inputs = inputs_from_batch(batch, s.modalities, s.device);
  models::Output out;
  // Terms that couple items (triplets) see the whole global batch (models/batch_peers.h); the
  // peers live until backward, which sends their gradients to the owning ranks.
  std::optional<dist::StepPeers> peers;
  if (s.comm) peers.emplace(*s.comm, batch.global_offset, n, batch.global_rows);
  {
    // Draw the global batch's noise and keep this shard's rows (see models/gaussian.h).
    models::NoiseShardGuard noise({batch.global_offset, s.comm ? batch.global_rows : 0});
    models::BatchPeersGuard coupled(peers ? &*peers : nullptr);
    out = s.model->objective(inputs, options);
  }
  const double loss = out.loss.item<double>();
  if (!std::isfinite(loss)) {
    std::string terms;
    for (const auto& [name, v] : out.terms)
      terms += " " + name + "=" + std::to_string(v.item<double>());
    check_finite_loss(loss, "epoch " + std::to_string(epoch + 1) + " step " + std::to_string(k + 1),
                      "terms:" + terms,
                      "training stopped. " +
                          (io::file_exists(s.paths.checkpoint())
                               ? "The last good checkpoint is " + s.paths.checkpoint() +
                                     " (after epoch " + std::to_string(s.state.epochs_done) + ")"
                               : std::string("No checkpoint was written yet")) +
                          ". Lower train.lr or set train.grad_clip.");
  }
  out.loss.backward();
  apply_gradients(s, n, batch.global_rows);
  for (const auto& [name, v] : out.terms) sums[name] += v.item<double>() * static_cast<double>(n);
}

// One epoch of training: its steps, then its terms summed over the ranks.
EpochResult run_epoch(Session& s, data::Batcher& batcher, std::int64_t epoch,
                      std::int64_t steps_per_epoch, LoopProgress& progress) {
  s.model->train();
  batcher.start_epoch(epoch);
  progress.start_epoch(epoch);
  EpochResult r;
  std::int64_t seen = 0, seen_global = 0;  // rows of this rank, rows of the global batches
  const double comm_at_start = s.comm ? s.comm->communication_seconds() : 0.0;
  for (std::int64_t k = 0; k < steps_per_epoch; ++k) {
    auto batch = batcher.next();
    if (!batch) break;
    seen_global += batch->global_rows;
    seen += batch->size();
    train_step(s, *batch, static_cast<double>(epoch) + static_cast<double>(k) / steps_per_epoch,
               epoch, k, r.terms);
    if (!s.leader || seen == 0) continue;
    std::ostringstream details, extra;
    details << std::fixed << std::setprecision(2) << "loss " << r.terms["loss"] / seen << " elbo "
            << r.terms["elbo"] / seen;
    if (s.comm) {
      extra << " (" << s.world << " workers, comm " << std::fixed << std::setprecision(1)
            << 1000.0 * (s.comm->communication_seconds() - comm_at_start) / (k + 1) << " ms/step)";
    }
    progress.step(k, seen_global, details.str(), extra.str());
  }
  if (s.comm) {
    // The epoch's terms over all ranks: sums of (term x rows) and the row count.
    std::vector<double> values{static_cast<double>(seen)};
    for (const auto& [name, v] : r.terms) values.push_back(v);
    auto packed = torch::tensor(values, torch::kFloat64);
    s.comm->allreduce_sum({packed}, s.bucket_bytes);
    seen = static_cast<std::int64_t>(packed[0].item<double>() + 0.5);
    std::int64_t i = 1;
    for (auto& [name, v] : r.terms) v = packed[i++].item<double>();
    r.comm_seconds = s.comm->communication_seconds() - comm_at_start;
  }
  r.seconds = progress.epoch_seconds();
  r.rows = seen;
  for (auto& [name, v] : r.terms) v /= static_cast<double>(std::max<std::int64_t>(seen, 1));
  return r;
}

// After epoch `epoch` (0-based): the leader validates, checkpoints and logs; every rank follows
// its early-stopping decision. Returns whether to stop.
bool finish_epoch(Session& s, std::int64_t epoch, const EpochResult& r) {
  s.state.epochs_done = epoch + 1;
  if (!s.leader) {
    auto stop = torch::zeros({1}, torch::kInt64);
    s.comm->broadcast({stop}, 0);
    return stop.item<std::int64_t>() != 0;
  }
  const auto& train = s.config.train;
  nlohmann::json record{
      {"epoch", epoch + 1}, {"step", s.state.step}, {"seconds", r.seconds}, {"train", r.terms}};
  if (const auto warning = collapse_warning(r.terms, epoch + 1)) {
    log::warn(*warning);
    record["warning"] = *warning;
  }
  if (train.lr_schedule != "constant") {
    record["lr"] = learning_rate_at(train, static_cast<double>(epoch + 1));
  }
  std::string val_text;
  if (s.data.validation) {
    const auto val =
        evaluate_terms(s.model, s.data.validation, s.config, s.data, s.modalities, s.device);
    record["validation"] = val;
    val_text = " | validation " + format_terms(val);
    if (val.at("loss") < s.state.best_validation) {
      s.state.best_validation = val.at("loss");
      s.state.epochs_without_improvement = 0;
      io::save_checkpoint(s.paths.best(), *s.model, nullptr, s.state);
    } else {
      ++s.state.epochs_without_improvement;
    }
  }
  io::save_checkpoint(s.paths.checkpoint(), *s.model, s.optimizer.get(), s.state);
  const auto& keep = train.keep_checkpoints;
  if (std::find(keep.begin(), keep.end(), epoch + 1) != keep.end()) {
    io::save_checkpoint(s.paths.checkpoint_at(epoch + 1), *s.model, nullptr, s.state);
  }
  append_jsonl(s.paths.log(), record);
  log::info("epoch ", epoch + 1, "/", train.epochs, " done in ", format_duration(r.seconds),
            " | train loss ", r.terms.at("loss"), ", elbo ", r.terms.at("elbo"), val_text);
  const bool stop =
      train.early_stopping > 0 && s.state.epochs_without_improvement >= train.early_stopping;
  if (s.comm) {
    auto flag = torch::full({1}, stop ? 1 : 0, torch::kInt64);
    s.comm->broadcast({flag}, 0);
  }
  if (stop) {
    log::info("early stopping: no validation improvement for ", s.state.epochs_without_improvement,
              " epochs");
  }
  return stop;
}

}  // namespace

nlohmann::json train_run(const RunConfig& config_in, const nlohmann::json& resolved_in,
                         const std::string& run_dir, RunStart start, const Runtime& runtime,
                         const Parallel& parallel) {
  const bool resume = start == RunStart::kResume;
  // Automatic choices are made once and kept in config.json (eval, query and distill read them).
  const RunConfig config = resolve_data_choices(config_in);
  nlohmann::json resolved = resolved_in;
  store_data_choices(config, resolved);
  Session s(config, run_dir, parallel, runtime.device);
  MMKT_CHECK_INPUT(config.train.batch_size >= s.world, "train.batch_size (",
                   config.train.batch_size, ") must be at least the number of workers (", s.world,
                   "): it is the global batch, split between them");
  std::optional<io::FileLock> lock;  // held by the leader until train_run returns
  if (s.leader) lock.emplace(claim_run_dir(s.paths, resolved, start));
  s.data = load_data(s);
  build_model(s);
  if (!resume && !config.train.init_from.empty()) init_from_run(s);
  restore(s, resume, resolved);

  auto batches = batcher_options(config, s.data, BatchPurpose::kTraining);
  batches.shard_rank = s.rank;  // each rank takes its rows of every global batch
  batches.shard_count = s.world;
  data::Batcher batcher(s.data.train, batches);
  std::int64_t steps_per_epoch = batcher.batches_per_epoch();
  if (config.train.max_steps_per_epoch > 0) {
    steps_per_epoch = std::min(steps_per_epoch, config.train.max_steps_per_epoch);
  }
  const auto epochs = config.train.epochs;
  if (s.comm && config.triplet.weight > 0) {
    // A rank without rows could not take part in the triplet terms' collectives.
    const auto last = s.data.train->size() % config.train.batch_size;
    MMKT_CHECK_INPUT(
        last == 0 || last >= s.world, "the last global batch of an epoch holds ", last,
        " items, fewer than the ", s.world, " workers: with triplets on, every ",
        "worker needs a row of every batch; change train.batch_size or the worker count");
  }
  if (s.leader && !resume && dataset_entry(config.data.dataset).user_data &&
      steps_per_epoch * epochs < kFewManifestSteps) {
    log::warn("this run trains ", steps_per_epoch * epochs, " steps (", epochs, " epochs of ",
              steps_per_epoch, ") on ", s.data.train->size(),
              " items: too few for the networks to learn the data; experiments/own_data.json "
              "trains 30 epochs (raise train.epochs)");
  }

  LoopProgress progress("epoch", epochs, steps_per_epoch, config.train.progress_seconds);
  double seconds_in_epochs = 0, comm_seconds = 0;
  std::int64_t epochs_timed = 0, samples_trained = 0, steps_timed = 0;
  bool stopped_early = false;
  for (std::int64_t epoch = s.state.epochs_done; epoch < epochs && !stopped_early; ++epoch) {
    const auto r = run_epoch(s, batcher, epoch, steps_per_epoch, progress);
    seconds_in_epochs += r.seconds;
    comm_seconds += r.comm_seconds;
    samples_trained += r.rows;
    steps_timed += steps_per_epoch;
    ++epochs_timed;
    stopped_early = finish_epoch(s, epoch, r);
  }
  if (!s.leader) return {{"rank", s.rank}, {"world_size", s.world}, {"steps", s.state.step}};

  // Final figures on the test set (fixed binarization), with the best model when validating.
  if (io::file_exists(s.paths.best()))
    io::load_checkpoint(s.paths.best(), *s.model, nullptr, false);
  const auto test = evaluate_terms(s.model, s.data.test, config, s.data, s.modalities, s.device);
  nlohmann::json summary{
      {"mmkt_version", MMKT_VERSION},
      {"epochs_done", s.state.epochs_done},
      {"steps", s.state.step},
      {"stopped_early", stopped_early},
      {"seconds_per_epoch", epochs_timed ? seconds_in_epochs / epochs_timed : 0.0},
      {"train_samples_per_second",
       seconds_in_epochs > 0 ? samples_trained / seconds_in_epochs : 0.0},
      {"threads", runtime.threads},
      {"world_size", s.world},
      {"communication_seconds_per_step",
       steps_timed > 0 ? comm_seconds / static_cast<double>(steps_timed) : 0.0},
      {"device", s.device.str()},
      {"test", test},
      {"test_elbo", test.count("elbo") ? test.at("elbo") : 0.0},
      {"test_items", s.data.test->size()}};
  io::write_json_file(s.paths.summary(), summary);
  log::info("test (", s.data.test->size(), " items, single-sample bound): ", format_terms(test));
  log::info("run written to ", run_dir);
  return summary;
}

}  // namespace mmkt::train
