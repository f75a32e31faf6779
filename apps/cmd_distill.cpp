// `mmkt distill --teacher RUN --method M --student S`: trains a small unimodal student from a
// trained multimodal teacher and evaluates it beside the teacher (lib/distill/pipeline.h).
// `mmkt distill-table DIR...`: the comparison table of several distillation outputs.
#include <iostream>
#include <memory>

#include "commands.h"
#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/core/strings.h"
#include "mmkt/distill/pipeline.h"
#include "mmkt/io/files.h"

namespace mmkt::app {

void register_distill(CLI::App& root, CommonOptions& common) {
  auto o = std::make_shared<distill::DistillOptions>();
  auto* cmd = root.add_subcommand(
      "distill", "distil a trained run into a small unimodal student and evaluate it");
  cmd->add_option("--teacher", o->teacher_dir, "run directory of the teacher (mmkt train)")
      ->required();
  cmd->add_option("--method", o->method,
                  "baseline | kd | gd | hint | pkt | vid | bayes | mse, a sum (pkt+bayes) or "
                  "weights (pkt=1,bayes=0.1)")
      ->capture_default_str();
  cmd->add_option("--student", o->student, "student network: mlp:W1,W2 | conv:C:W | gru:E:H:W")
      ->capture_default_str();
  cmd->add_option("--modality", o->modality, "the student's modality (image or text)")
      ->capture_default_str();
  cmd->add_flag("--heavy", o->heavy, "heavy-auxiliary route: teacher -> --auxiliary -> student");
  cmd->add_option("--auxiliary", o->auxiliary, "the heavy route's auxiliary network")
      ->capture_default_str();
  cmd->add_option("--grow-from", o->grow_from,
                  "antidistillation: start the student as the function-preserving (Net2Net) "
                  "growth of the trained student in this distill output folder");
  cmd->add_option("--student-teacher", o->student_teacher,
                  "learn from the trained student in this distill output folder instead of the "
                  "teacher (a larger student distilled from a small one)");
  cmd->add_flag("--data-free", o->data_free,
                "distil on images reconstructed from the teacher's activation statistics (Lopes et "
                "al. 2017)");
  cmd->add_option("--reconstruct-items", o->reconstruction.items,
                  "data-free: images to reconstruct")
      ->capture_default_str();
  cmd->add_option("--reconstruct-steps", o->reconstruction.steps,
                  "data-free: optimisation steps per batch")
      ->capture_default_str();
  cmd->add_option("--out", o->out_dir,
                  "output folder (default TEACHER/distill/<method>_<student>)");
  cmd->add_option("--epochs", o->train.epochs, "training epochs over the transfer set")
      ->capture_default_str();
  cmd->add_option("--batch-size", o->train.batch_size, "items per step")->capture_default_str();
  cmd->add_option("--lr", o->train.lr, "Adam learning rate")->capture_default_str();
  cmd->add_option("--temperature", o->train.temperature, "kd / gd temperature")
      ->capture_default_str();
  cmd->add_option("--target", o->train.target,
                  "posterior matched by pkt and bayes: joint | unimodal")
      ->capture_default_str();
  cmd->add_option("--max-items", o->max_items, "transfer-set items (0 = the whole training split)")
      ->capture_default_str();
  cmd->add_option("--probe-items", o->eval.probe_items, "training items of the linear probe")
      ->capture_default_str();
  cmd->add_option(
         "--teacher-metrics", o->teacher_metrics,
         "evaluate the teacher's retrieval/zero-shot/probe too (false: its size and speed only)")
      ->capture_default_str();
  auto metrics = std::make_shared<std::string>("retrieval,zeroshot,probe");
  cmd->add_option("--metrics", *metrics,
                  "what the student (and teacher) are evaluated on, from retrieval, zeroshot, probe "
                  "(retrieval alone is quick: for choosing methods on validation)")
      ->capture_default_str();
  cmd->callback([&common, o, metrics] {
    const Runtime rt = init_runtime(common.runtime);
    o->eval.retrieval = o->eval.zeroshot = o->eval.probe = false;
    for (const auto& m : split(*metrics, ',')) {
      if (m == "retrieval") {
        o->eval.retrieval = true;
      } else if (m == "zeroshot") {
        o->eval.zeroshot = true;
      } else if (m == "probe") {
        o->eval.probe = true;
      } else {
        fail_input("--metrics: unknown metric '", m, "' (expected retrieval, zeroshot or probe)");
      }
    }
    const auto result = distill::run_distillation(*o, rt);
    const std::string dir = result["dir"].get<std::string>();
    std::cout << io::read_file(dir + "/result.md");
    log::info("student, results and log written to ", dir);
  });
}

void register_distill_table(CLI::App& root, CommonOptions& common) {
  struct Args {
    std::vector<std::string> dirs;
    std::string out;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = root.add_subcommand("distill-table",
                                  "one comparison table from several mmkt distill outputs");
  cmd->add_option("dirs", args->dirs, "distill output folders (each with result.json)")->required();
  cmd->add_option("--out", args->out, "also write the table to this Markdown file");
  cmd->callback([&common, args] {
    init_runtime(common.runtime);
    std::vector<nlohmann::json> results;
    for (const auto& d : args->dirs) {
      const std::string path = d + "/result.json";
      MMKT_CHECK_INPUT(io::file_exists(path), path, ": no distillation result here");
      try {
        results.push_back(nlohmann::json::parse(io::read_file(path)));
      } catch (const nlohmann::json::parse_error& e) {
        fail_input(path, ": malformed JSON: ", e.what());
      }
    }
    const auto table = distill::comparison_markdown(distill::comparison_rows(results));
    std::cout << table;
    if (!args->out.empty()) io::write_file_atomic(args->out, table);
  });
}

}  // namespace mmkt::app
