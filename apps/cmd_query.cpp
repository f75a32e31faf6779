// The commands a researcher runs against a trained run:
//   mmkt query RUN --text "..." | --image FILE   ranked test images or captions (index saved
//                                                with the run), contact sheet PNG + JSON
//   mmkt zeroshot RUN --image FILE | --split test   unseen-class prediction with its evidence
//   mmkt generate RUN --text "..." | --image FILE   an image grid, or captions
#include <cmath>
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/eval/embed.h"
#include "mmkt/eval/pictures.h"
#include "mmkt/eval/zero_shot.h"
#include "mmkt/image/convert.h"
#include "mmkt/io/files.h"
#include "mmkt/query/command.h"
#include "mmkt/query/generate.h"
#include "mmkt/query/index.h"
#include "mmkt/query/inputs.h"
#include "mmkt/query/zero_shot_classifier.h"
#include "mmkt/run/run.h"

namespace mmkt::app {

namespace {

// Exactly one of --text / --image.
void check_one_query(bool text_given, const std::string& image) {
  MMKT_CHECK_INPUT(text_given != !image.empty(), "give exactly one of --text or --image");
}

}  // namespace

void register_query(CLI::App& root, CommonOptions& common) {
  auto args = std::make_shared<query::QueryRequest>();
  auto* cmd = root.add_subcommand(
      "query", "rank indexed test images or captions for a caption or an image file");
  cmd->add_option("run", args->run, "run directory written by mmkt train")->required();
  auto* text_opt = cmd->add_option("--text", args->text, "query caption");
  cmd->add_option("--image", args->image, "query image file (any format OpenCV decodes)");
  cmd->add_option("--target", args->target,
                  "what to rank: image | text (default: the other modality)");
  cmd->add_option("--index", args->collection, "indexed collection: test | all (training + test)")
      ->capture_default_str();
  cmd->add_option("--score", args->score, "cosine | euclidean")->capture_default_str();
  cmd->add_option("--top", args->top, "results to return")->capture_default_str();
  cmd->add_option("--out", args->out,
                  "output folder for query.json and query.png (default RUN/query)");
  cmd->add_option("--repeat", args->repeat, "run the query N times and report the median latency")
      ->capture_default_str();
  cmd->callback([&common, args, text_opt] {
    const Runtime rt = init_runtime(common.runtime);
    args->has_text = text_opt->count() > 0;
    std::cout << query::answer_lines(query::run_query_request(*args, rt));
  });
}

void register_zeroshot(CLI::App& root, CommonOptions& common) {
  struct Args {
    std::string run, image, split, method = "dap";
    std::int64_t top = 3, max_train = 20000;
    bool all = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = root.add_subcommand(
      "zeroshot", "predict unseen classes of an image (or a split) with the evidence");
  cmd->add_option("run", args->run, "run directory written by mmkt train")->required();
  cmd->add_option("--image", args->image, "image file to classify");
  cmd->add_option("--split", args->split, "evaluate over a split instead (test)");
  cmd->add_option("--method", args->method, "dap | iap | text")->capture_default_str();
  cmd->add_option("--top", args->top, "classes to list")->capture_default_str();
  cmd->add_flag("--all-classes", args->all, "rank seen and unseen classes (generalized zero-shot)");
  cmd->add_option("--max-train", args->max_train, "training items the classifiers are fitted on")
      ->capture_default_str();
  cmd->callback([&common, args] {
    const Runtime rt = init_runtime(common.runtime);
    MMKT_CHECK_INPUT(args->image.empty() != args->split.empty(),
                     "give exactly one of --image or --split");
    MMKT_CHECK_INPUT(std::filesystem::is_directory(args->run), args->run,
                     ": no such run directory");
    auto run = load_run(args->run, rt.device);
    if (!args->split.empty()) {
      MMKT_CHECK_INPUT(args->split == "test", "--split '", args->split, "' (expected test)");
      const auto task = eval::zero_shot_task(run);
      MMKT_CHECK_INPUT(task.has_value(), "this run has no zero-shot task");
      eval::EmbedOptions o;
      o.modalities = {"image"};
      const auto test = eval::embed_dataset(run, run.data.test, rt.device, o);
      o.max_items = args->max_train;
      const auto train = eval::embed_dataset(run, run.data.train, rt.device, o);
      eval::ZeroShotOptions zo;
      zo.max_train = args->max_train;
      const auto report = eval::zero_shot_report(run, *task, train, test, zo);
      std::cout << eval::zero_shot_markdown(report);
      return;
    }
    const auto input = query::image_file_input(run, args->image, rt.device);
    const auto zs = query::fit_zero_shot(run, args->max_train, rt.device);
    torch::Tensor mu;
    {
      torch::NoGradGuard no_grad;
      mu = run.model->encode(query::modality_of_kind(run, models::ModalityKind::kImage), input)
               .mu.cpu();
    }
    const auto out = query::explain_zero_shot(zs, mu, args->method, args->all, args->top);
    std::cout << out.dump(2) << "\n";
    const auto& best = out["ranking"][0];
    log::info(args->image, ": ", best["class"].get<std::string>(), " (", args->method, ", among ",
              out["candidates"].get<std::string>(), " classes)");
  });
}

void register_generate(CLI::App& root, CommonOptions& common) {
  struct Args {
    std::string run, text, image, out;
    std::int64_t n = 16, beam = 1;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = root.add_subcommand(
      "generate", "images from a caption (--text) or captions from an image (--image)");
  cmd->add_option("run", args->run, "run directory written by mmkt train")->required();
  auto* text_opt = cmd->add_option("--text", args->text, "caption to draw");
  cmd->add_option("--image", args->image, "image file to describe");
  cmd->add_option("--n", args->n, "images or captions (the first from the posterior mean)")
      ->capture_default_str();
  cmd->add_option("--beam", args->beam, "caption beam width (1 = greedy)")->capture_default_str();
  cmd->add_option("--out", args->out, "PNG path for --text (default RUN/generated.png)");
  cmd->callback([&common, args, text_opt] {
    const Runtime rt = init_runtime(common.runtime);
    check_one_query(text_opt->count() > 0, args->image);
    MMKT_CHECK_INPUT(std::filesystem::is_directory(args->run), args->run,
                     ": no such run directory");
    auto run = load_run(args->run, rt.device);
    if (text_opt->count() > 0) {
      const auto images = query::images_from_text(
          run, query::text_input(run, args->text, rt.device), args->n, rt.seed);
      const std::string path = args->out.empty() ? args->run + "/generated.png" : args->out;
      const int columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(args->n))));
      image::write_png(path, image::make_grid(images, columns));
      log::info(args->n, " images for \"", args->text, "\" written to ", path);
    } else {
      const auto captions = query::captions_from_image(
          run, query::image_file_input(run, args->image, rt.device), args->n, args->beam, rt.seed);
      nlohmann::json out{{"image", args->image}, {"beam", args->beam}, {"captions", captions}};
      std::cout << out.dump(2) << "\n";
    }
  });
}

}  // namespace mmkt::app
