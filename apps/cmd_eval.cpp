// `mmkt eval --run DIR`: every evaluation of a trained run (lib/eval/report.h), written to
// DIR/eval/ as report.json, report.md (also printed) and pictures/*.png.
// `mmkt embed --run DIR --out DIR2`: posterior means, log-variances and labels as .npy files.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <sstream>

#include "commands.h"
#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/eval/embed.h"
#include "mmkt/eval/report.h"
#include "mmkt/io/files.h"
#include "mmkt/io/npy.h"
#include "mmkt/run/run.h"

namespace mmkt::app {

namespace {

std::set<std::string> split_list(const std::string& s) {
  std::set<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.insert(item);
  }
  return out;
}

}  // namespace

void register_eval(CLI::App& root, CommonOptions& common) {
  struct Args {
    std::string run, out, checkpoint, metrics = "retrieval,probe,zeroshot,coherence,pictures";
    std::string split = "test";
    std::vector<std::string> shifts;
    eval::EvalOptions options;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = root.add_subcommand("eval",
                                  "evaluate a run: retrieval, likelihoods, linear probe, "
                                  "zero-shot, coherence, pictures, dataset shift");
  cmd->add_option("--run", args->run, "run directory written by mmkt train")->required();
  cmd->add_option("--out", args->out, "output folder (default RUN/eval)");
  cmd->add_option(
      "--checkpoint", args->checkpoint,
      "model file of the run to evaluate, e.g. checkpoint_epoch50.pt (default: best.pt, "
      "else checkpoint.pt)");
  cmd->add_option("--split", args->split,
                  "evaluate on the test set, or on the validation split carved from training "
                  "(for choosing recipes; seen classes only, so no zero-shot)")
      ->check(CLI::IsMember({"test", "validation"}))
      ->capture_default_str();
  cmd->add_option(
         "--metrics", args->metrics,
         "comma-separated: retrieval, likelihood, probe, zeroshot, coherence, pictures, or all")
      ->capture_default_str();
  cmd->add_option("--k", args->options.likelihood.k, "importance samples per item (likelihood)")
      ->capture_default_str();
  cmd->add_option("--likelihood-items", args->options.likelihood.max_items,
                  "evaluate likelihoods on the first N test items (0 = all)")
      ->capture_default_str();
  cmd->add_option("--likelihood-batch", args->options.likelihood.batch_size,
                  "items per likelihood batch")
      ->capture_default_str();
  cmd->add_option("--estimates", args->options.likelihood.estimates,
                  "likelihood estimates: joint, marginal, conditional")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--zs-features", args->options.zero_shot.features,
                  "zero-shot classifiers on 'latent' means or image 'encoder' features")
      ->capture_default_str();
  cmd->add_option("--zs-score", args->options.zero_shot.score,
                  "text zero-shot score: cosine | euclidean")
      ->capture_default_str();
  cmd->add_option("--coherence-items", args->options.coherence.max_items,
                  "test items judged for coherence")
      ->capture_default_str();
  cmd->add_option("--evaluator-epochs", args->options.evaluator.epochs,
                  "epochs of the image evaluator")
      ->capture_default_str();
  cmd->add_option("--evaluator-items", args->options.evaluator.max_items,
                  "real training images the image evaluator learns from")
      ->capture_default_str();
  cmd->add_option("--probe-items", args->options.probe_train_items,
                  "training items of the linear probe")
      ->capture_default_str();
  cmd->add_option("--shift", args->shifts,
                  "dataset shift KIND:S1,S2,... (rotation, noise, blur, contrast, photo, prior, "
                  "concept); repeatable");
  cmd->callback([&common, args] {
    const Runtime rt = init_runtime(common.runtime);
    auto& o = args->options;
    o.seed = rt.seed;
    o.likelihood.seed = rt.seed;
    o.coherence.seed = rt.seed;
    o.zero_shot.seed = rt.seed;
    const auto wanted = split_list(args->metrics);
    o.metrics.clear();
    for (const auto& m : wanted) {
      if (m == "all") {
        o.metrics.insert(eval::eval_metric_names().begin(), eval::eval_metric_names().end());
      } else {
        o.metrics.insert(m);
      }
    }
    for (const auto& s : args->shifts) o.shifts.push_back(eval::parse_shift_spec(s));
    auto run = load_run(args->run, rt.device, args->checkpoint);
    if (args->split == "validation") {
      MMKT_CHECK_INPUT(run.data.validation, args->run,
                       ": the run has no validation split (data.validation = 0)");
      run.data.test = run.data.validation;
      if (run.data.validation_unseen_classes.empty()) {
        if (o.metrics.erase("zeroshot"))
          log::warn("--split validation: no zero-shot (the split holds seen classes only; "
                    "data.validation_unseen holds classes out for it)");
      } else {
        // The validation classes play the unseen ones; the test's unseen classes are absent.
        // (Both lists are sorted: run_data.h.)
        run.data.absent_classes.clear();
        std::set_difference(run.data.unseen_classes.begin(), run.data.unseen_classes.end(),
                            run.data.validation_unseen_classes.begin(),
                            run.data.validation_unseen_classes.end(),
                            std::back_inserter(run.data.absent_classes));
        run.data.unseen_classes = run.data.validation_unseen_classes;
      }
    }
    const std::string dir = args->out.empty()
                                ? args->run + (args->split == "test" ? "/eval" : "/eval_validation")
                                : args->out;
    const auto report = eval::evaluate_run(run, o, dir, rt.device);
    std::cout << io::read_file(dir + "/report.md");
    log::info("evaluation written to ", dir, "/report.{json,md} and ", dir, "/pictures/ in ",
              report["seconds"]["total"].get<double>(), " s");
  });
}

void register_embed(CLI::App& root, CommonOptions& common) {
  struct Args {
    std::string run, out, split = "test";
    bool features = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = root.add_subcommand("embed",
                                  "write posterior means, log-variances and labels of a split as "
                                  ".npy files (numpy.load opens them)");
  cmd->add_option("--run", args->run, "run directory written by mmkt train")->required();
  cmd->add_option("--out", args->out, "output folder (default RUN/embeddings/SPLIT)");
  cmd->add_option("--split", args->split, "train | validation | test")->capture_default_str();
  cmd->add_flag("--features", args->features, "also write the unimodal encoders' features");
  cmd->callback([&common, args] {
    const Runtime rt = init_runtime(common.runtime);
    auto run = load_run(args->run, rt.device);
    data::DatasetPtr ds = args->split == "train"        ? run.data.train
                          : args->split == "validation" ? run.data.validation
                          : args->split == "test"       ? run.data.test
                                                        : nullptr;
    MMKT_CHECK_INPUT(args->split == "train" || args->split == "validation" || args->split == "test",
                     "--split '", args->split, "' (expected train, validation or test)");
    MMKT_CHECK_INPUT(ds != nullptr, args->run, ": the run has no ", args->split, " split");
    eval::EmbedOptions eo;
    eo.features = args->features;
    const auto e = eval::embed_dataset(run, ds, rt.device, eo);
    const std::string dir =
        args->out.empty() ? args->run + "/embeddings/" + args->split : args->out;
    std::filesystem::create_directories(dir);
    for (const auto& [m, t] : e.mu) io::write_npy(dir + "/mu_" + m + ".npy", t);
    for (const auto& [m, t] : e.logvar) io::write_npy(dir + "/logvar_" + m + ".npy", t);
    for (const auto& [m, t] : e.features) io::write_npy(dir + "/features_" + m + ".npy", t);
    io::write_npy(dir + "/labels.npy", e.labels);
    log::info(e.labels.size(0), " items of the ", args->split, " split embedded into ", dir,
              " (mu_<modality>.npy, logvar_<modality>.npy, labels.npy)");
  });
}

}  // namespace mmkt::app
