#include "mmkt/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "mmkt/core/build_info.h"
#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/data/batcher.h"
#include "mmkt/dist/communicator.h"
#include "mmkt/io/checkpoint.h"
#include "mmkt/io/files.h"
#include "mmkt/io/json_config.h"
#include "mmkt/optim/fused_adam.h"

namespace mmkt::train {
namespace {
using Clock = std::chrono::steady_clock;

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<long>(seconds + 0.5);
  std::ostringstream out;
  if (s >= 3600) out << s / 3600 << "h";
  out << std::setfill('0');
  if (s >= 60) out << (s >= 3600 ? std::setw(2) : std::setw(1)) << (s / 60) % 60 << "m";
  out << std::setw(s >= 60 ? 2 : 1) << s % 60 << "s";
  return out.str();
}

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

// Test hook: MMKT_FAULT_KILL="RANK:STEP" makes that rank kill itself with SIGKILL right after
// optimizer step STEP, to check that the other workers stop with an error (tests only).
void maybe_inject_fault(const dist::Communicator* comm, std::int64_t step) {
  static const char* spec = std::getenv("MMKT_FAULT_KILL");
  if (!spec || !comm) return;
  int rank = -1;
  long long at = -1;
  if (std::sscanf(spec, "%d:%lld", &rank, &at) == 2 && rank == comm->rank() && at == step) {
    std::raise(SIGKILL);
  }
}

void append_line(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  MMKT_CHECK(static_cast<bool>(out), path, ": cannot append");
  out << line << "\n";
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

nlohmann::json train_run(const RunConfig& config_in, const nlohmann::json& resolved_in,
                         const std::string& run_dir, bool resume, const Runtime& runtime,
                         const Parallel& parallel) {
  // Automatic choices are made once and kept in config.json (eval, query and distill read them).
  const RunConfig config = resolve_data_choices(config_in);
  nlohmann::json resolved = resolved_in;
  store_data_choices(config, resolved);
  const RunPaths paths{run_dir};
  dist::Communicator* comm = parallel.comm;
  const int world = comm ? comm->world_size() : 1;
  const int rank = comm ? comm->rank() : 0;
  const bool leader = rank == 0;  // the only rank that reads or writes the run directory
  MMKT_CHECK_INPUT(config.train.batch_size >= world, "train.batch_size (", config.train.batch_size,
                   ") must be at least the number of workers (", world,
                   "): it is the global batch, split between them");
  std::optional<io::FileLock> lock;  // held by the leader until train_run returns
  if (leader) {
    std::filesystem::create_directories(run_dir);
    std::string holder;
    lock = io::FileLock::try_acquire(paths.lock(), &holder);
    MMKT_CHECK_INPUT(lock.has_value(), run_dir, ": another mmkt train (pid ", holder,
                     ") is writing this run; wait for it or choose another --run directory");
    if (!resume) {
      // A fresh run must not pick up an old run's tokenizer or append to its log.
      std::string stale;
      for (const auto& f :
           {paths.checkpoint(), paths.best(), paths.log(), paths.summary(), paths.tokenizer()}) {
        if (io::file_exists(f))
          stale += (stale.empty() ? "" : ", ") + std::filesystem::path(f).filename().string();
      }
      MMKT_CHECK_INPUT(stale.empty(), run_dir, ": already holds run files (", stale,
                       "); use --resume to continue that run, --overwrite to replace it, or "
                       "choose another --run directory");
      io::write_json_file(paths.config(), resolved);
    }
  }
  const auto device = runtime.device;
  RunData data;
  if (!comm) {
    data = load_run_data(config, paths.tokenizer());
  } else if (leader) {
    data = load_run_data(config, paths.tokenizer());
    with_file_from_rank0(*comm, "tokenizer", paths.tokenizer(), data.tokenizer != nullptr,
                         [](const std::string&) {});
  } else {
    with_file_from_rank0(*comm, "tokenizer", paths.tokenizer(), false,
                         [&](const std::string& local) { data = load_run_data(config, local); });
  }
  const auto modalities = resolve_modalities(config, data);
  auto model_config = config.model;
  model_config.modalities = modalities;
  models::MultimodalVae model(model_config);
  model->to(device);
  optim::FusedAdam optimizer(
      model->parameters(),
      torch::optim::AdamOptions(config.train.lr).betas({config.train.beta1, config.train.beta2}));
  std::int64_t parameters = 0;
  for (const auto& p : model->parameters()) parameters += p.numel();
  log::info("model: ", config.model.type, ", latent ", config.model.latent_dim, ", ", parameters,
            " parameters, modalities:", [&] {
              std::string s;
              for (const auto& m : modalities)
                s += " " + m.name + "(" + m.encoder + "/" + m.likelihood + ")";
              return s;
            }());

  io::TrainingState state;
  if (resume) {
    const auto load = [&](const std::string& file) {
      state = io::load_checkpoint(file, *model, &optimizer, /*restore_rng=*/true);
    };
    if (comm) {
      with_file_from_rank0(*comm, "checkpoint", paths.checkpoint(), true, load);
    } else {
      load(paths.checkpoint());
    }
    // config.json changes only now that the checkpoint has loaded under it: a resume whose
    // --set does not fit the checkpoint fails above and leaves the run as it was.
    if (leader) io::write_json_file(paths.config(), resolved);
    log::info("resuming ", run_dir, " after epoch ", state.epochs_done, " (step ", state.step, ")");
  }
  std::vector<torch::Tensor> params = model->parameters();
  if (comm) {
    // Every replica starts from rank 0's weights (they are seeded alike; this makes it certain).
    std::vector<torch::Tensor> state_tensors;
    for (const auto& p : params) state_tensors.push_back(p.detach());
    for (const auto& b : model->buffers()) state_tensors.push_back(b.detach());
    comm->broadcast(state_tensors, 0);
    log::info("data-parallel: ", world, " workers (c10d ", "Gloo), global batch ",
              config.train.batch_size, " = ", world, " shards of ~",
              config.train.batch_size / world, ", buckets of ",
              parallel.bucket_bytes / double(1 << 20), " MiB");
  }

  auto training_batches = batcher_options(config, data, BatchPurpose::kTraining);
  training_batches.shard_rank = rank;  // each rank takes its rows of every global batch
  training_batches.shard_count = world;
  data::Batcher batcher(data.train, training_batches);
  std::int64_t steps_per_epoch = batcher.batches_per_epoch();
  if (config.train.max_steps_per_epoch > 0) {
    steps_per_epoch = std::min(steps_per_epoch, config.train.max_steps_per_epoch);
  }
  const auto total_epochs = config.train.epochs;
  if (comm && config.triplet.weight > 0) {
    // A rank without rows could not take part in the triplet terms' collectives.
    const auto last = data.train->size() % config.train.batch_size;
    MMKT_CHECK_INPUT(last == 0 || last >= world, "the last global batch of an epoch holds ", last,
                     " items, fewer than the ", world, " workers: with triplets on, every worker ",
                     "needs a row of every batch; change train.batch_size or the worker count");
  }
  if (leader && !resume && config.data.dataset == "manifest" &&
      steps_per_epoch * total_epochs < kFewManifestSteps) {
    log::warn(
        "this run trains ", steps_per_epoch * total_epochs, " steps (", total_epochs, " epochs of ",
        steps_per_epoch, ") on ", data.train->size(),
        " items: too few for the networks to learn the data; experiments/own_data.json trains "
        "30 epochs (raise train.epochs)");
  }
  double seconds_in_epochs = 0;
  std::int64_t epochs_timed = 0;
  std::int64_t samples_trained = 0;
  std::int64_t steps_timed = 0;
  double comm_seconds = 0;
  bool stopped_early = false;

  for (std::int64_t epoch = state.epochs_done; epoch < total_epochs; ++epoch) {
    model->train();
    batcher.start_epoch(epoch);
    const auto epoch_start = Clock::now();
    auto last_progress = epoch_start;
    std::map<std::string, double> sums;
    std::int64_t seen = 0;         // rows of this rank
    std::int64_t seen_global = 0;  // rows of the global batches
    const double comm_at_epoch_start = comm ? comm->communication_seconds() : 0.0;
    for (std::int64_t k = 0; k < steps_per_epoch; ++k) {
      auto batch = batcher.next();
      if (!batch) break;
      seen_global += batch->global_rows;
      const double progress = static_cast<double>(epoch) + static_cast<double>(k) / steps_per_epoch;
      auto options = objective_options_at(config, progress);
      const double lr = learning_rate_at(config.train, progress);
      for (auto& group : optimizer.param_groups()) {
        static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
      }
      optim::clear_gradients(params);
      const auto n = batch->size();
      if (n == 0) {
        MMKT_CHECK(comm != nullptr, "an empty training batch");
        // This rank has no rows in a short last batch: it contributes a zero gradient.
        dist::average_gradients(*comm, params, 0, batch->global_rows, parallel.bucket_bytes);
        if (config.train.grad_clip > 0)
          torch::nn::utils::clip_grad_norm_(params, config.train.grad_clip);
        optimizer.step();
        ++state.step;
        continue;
      }
      options.labels = batch->labels.to(device);
      const auto inputs = inputs_from_batch(*batch, modalities, device);
      models::Output out;
      // Terms that couple items (triplets) see the whole global batch (models/batch_peers.h);
      // the peers live until backward, which sends their gradients to the owning ranks.
      std::optional<dist::StepPeers> peers;
      if (comm) peers.emplace(*comm, batch->global_offset, n, batch->global_rows);
      {
        // Draw the global batch's noise and keep this shard's rows (see models/gaussian.h).
        models::NoiseShardGuard noise({batch->global_offset, comm ? batch->global_rows : 0});
        models::BatchPeersGuard coupled(peers ? &*peers : nullptr);
        out = model->objective(inputs, options);
      }
      const double loss = out.loss.item<double>();
      if (!std::isfinite(loss)) {
        std::string terms;
        for (const auto& [name, v] : out.terms)
          terms += " " + name + "=" + std::to_string(v.item<double>());
        fail("epoch ", epoch + 1, " step ", k + 1, ": the loss is ", loss, " (terms:", terms,
             "); training stopped. ",
             io::file_exists(paths.checkpoint())
                 ? "The last good checkpoint is " + paths.checkpoint() + " (after epoch " +
                       std::to_string(state.epochs_done) + ")"
                 : std::string("No checkpoint was written yet"),
             ". Lower train.lr or set train.grad_clip.");
      }
      out.loss.backward();
      if (comm)
        dist::average_gradients(*comm, params, n, batch->global_rows, parallel.bucket_bytes);
      if (config.train.grad_clip > 0) {
        torch::nn::utils::clip_grad_norm_(params, config.train.grad_clip);
      }
      optimizer.step();
      ++state.step;
      maybe_inject_fault(comm, state.step);
      seen += n;
      for (const auto& [name, v] : out.terms)
        sums[name] += v.item<double>() * static_cast<double>(n);

      const auto now = Clock::now();
      const double since = std::chrono::duration<double>(now - last_progress).count();
      if (leader && (since >= config.train.progress_seconds || k + 1 == steps_per_epoch)) {
        last_progress = now;
        const double elapsed = std::chrono::duration<double>(now - epoch_start).count();
        const double rate = static_cast<double>(seen_global) / std::max(elapsed, 1e-9);
        const double epoch_left = elapsed / (k + 1) * static_cast<double>(steps_per_epoch - k - 1);
        const double per_epoch = elapsed / (k + 1) * static_cast<double>(steps_per_epoch);
        const double total_left =
            epoch_left + per_epoch * static_cast<double>(total_epochs - epoch - 1);
        std::ostringstream line;
        line << "epoch " << epoch + 1 << "/" << total_epochs << " step " << k + 1 << "/"
             << steps_per_epoch << " | loss " << std::fixed << std::setprecision(2)
             << sums["loss"] / seen << " elbo " << sums["elbo"] / seen << " | "
             << std::setprecision(0) << rate << " samples/s";
        if (comm) {
          line << " (" << world << " workers, comm " << std::setprecision(1)
               << 1000.0 * (comm->communication_seconds() - comm_at_epoch_start) / (k + 1)
               << " ms/step)";
        }
        line << " | ETA epoch " << format_duration(epoch_left) << ", run "
             << format_duration(total_left);
        log::info(line.str());
      }
    }
    if (comm) {
      // The epoch's terms over all ranks: sums of (term x rows) and the row count.
      std::vector<double> values{static_cast<double>(seen)};
      for (const auto& [name, v] : sums) values.push_back(v);
      auto packed = torch::tensor(values, torch::kFloat64);
      comm->allreduce_sum({packed}, parallel.bucket_bytes);
      seen = static_cast<std::int64_t>(packed[0].item<double>() + 0.5);
      std::int64_t i = 1;
      for (auto& [name, v] : sums) v = packed[i++].item<double>();
      comm_seconds += comm->communication_seconds() - comm_at_epoch_start;
    }
    const double epoch_seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    seconds_in_epochs += epoch_seconds;
    ++epochs_timed;
    samples_trained += seen;
    steps_timed += steps_per_epoch;
    for (auto& [name, v] : sums) v /= static_cast<double>(std::max<std::int64_t>(seen, 1));

    nlohmann::json record{
        {"epoch", epoch + 1}, {"step", state.step}, {"seconds", epoch_seconds}, {"train", sums}};
    if (const auto warning = collapse_warning(sums, epoch + 1); warning && leader) {
      log::warn(*warning);
      record["warning"] = *warning;
    }
    if (config.train.lr_schedule != "constant") {
      record["lr"] = learning_rate_at(config.train, static_cast<double>(epoch + 1));
    }
    std::string val_text;
    state.epochs_done = epoch + 1;
    if (!leader) {
      // Rank 0 validates and checkpoints; everyone follows its early-stopping decision.
      auto stop = torch::zeros({1}, torch::kInt64);
      comm->broadcast({stop}, 0);
      if (stop.item<std::int64_t>() != 0) {
        stopped_early = true;
        break;
      }
      continue;
    }
    if (data.validation) {
      const auto val = evaluate_terms(model, data.validation, config, data, modalities, device);
      record["validation"] = val;
      val_text = " | validation " + format_terms(val);
      const double val_loss = val.at("loss");
      if (val_loss < state.best_validation) {
        state.best_validation = val_loss;
        state.epochs_without_improvement = 0;
        io::save_checkpoint(paths.best(), *model, nullptr, state);
      } else {
        ++state.epochs_without_improvement;
      }
    }
    io::save_checkpoint(paths.checkpoint(), *model, &optimizer, state);
    const auto& keep = config.train.keep_checkpoints;
    if (std::find(keep.begin(), keep.end(), epoch + 1) != keep.end()) {
      io::save_checkpoint(paths.checkpoint_at(epoch + 1), *model, nullptr, state);
    }
    append_line(paths.log(), record.dump());
    log::info("epoch ", epoch + 1, "/", total_epochs, " done in ", format_duration(epoch_seconds),
              " | train loss ", sums["loss"], ", elbo ", sums["elbo"], val_text);
    const bool stop = config.train.early_stopping > 0 &&
                      state.epochs_without_improvement >= config.train.early_stopping;
    if (comm) {
      auto flag = torch::full({1}, stop ? 1 : 0, torch::kInt64);
      comm->broadcast({flag}, 0);
    }
    if (stop) {
      log::info("early stopping: no validation improvement for ", state.epochs_without_improvement,
                " epochs");
      stopped_early = true;
      break;
    }
  }
  if (!leader) {
    return {{"rank", rank}, {"world_size", world}, {"steps", state.step}};
  }

  // Final figures on the test set (fixed binarization), with the best model when validating.
  if (io::file_exists(paths.best())) io::load_checkpoint(paths.best(), *model, nullptr, false);
  const auto test = evaluate_terms(model, data.test, config, data, modalities, device);
  nlohmann::json summary{
      {"mmkt_version", MMKT_VERSION},
      {"epochs_done", state.epochs_done},
      {"steps", state.step},
      {"stopped_early", stopped_early},
      {"seconds_per_epoch", epochs_timed ? seconds_in_epochs / epochs_timed : 0.0},
      {"train_samples_per_second",
       seconds_in_epochs > 0 ? samples_trained / seconds_in_epochs : 0.0},
      {"threads", runtime.threads},
      {"world_size", world},
      {"communication_seconds_per_step",
       steps_timed > 0 ? comm_seconds / static_cast<double>(steps_timed) : 0.0},
      {"device", device.str()},
      {"test", test},
      {"test_elbo", test.count("elbo") ? test.at("elbo") : 0.0},
      {"test_items", data.test->size()}};
  io::write_json_file(paths.summary(), summary);
  log::info("test (", data.test->size(), " items, single-sample bound): ", format_terms(test));
  log::info("run written to ", run_dir);
  return summary;
}

}  // namespace mmkt::train
