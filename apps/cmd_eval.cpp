// `mmkt eval --run DIR`: retrieval figures of a trained run on its test set, as JSON
// (DIR/eval/retrieval.json) and a Markdown table (DIR/eval/retrieval.md, also printed).
#include <chrono>
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "core/log.h"
#include "eval/embed.h"
#include "io/files.h"
#include "io/json_config.h"
#include "train/trainer.h"

namespace mmkt::app {

void register_eval(CLI::App& root, CommonOptions& common) {
  struct Args {
    std::string run;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = root.add_subcommand("eval", "evaluate a run: cross-modal retrieval on the test set");
  cmd->add_option("--run", args->run, "run directory written by mmkt train")->required();
  cmd->callback([&common, args] {
    const Runtime rt = init_runtime(common.runtime);
    auto run = train::load_run(args->run, rt.device);
    const auto t0 = std::chrono::steady_clock::now();
    const auto e = eval::embed_dataset(run, run.data.test, rt.device);
    const auto report = eval::retrieval_report(e, "image", "text");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string dir = args->run + "/eval";
    std::filesystem::create_directories(dir);
    io::write_json_file(dir + "/retrieval.json", report);
    const auto table = eval::retrieval_markdown(report);
    io::write_file_atomic(dir + "/retrieval.md", table);
    log::info("retrieval over ", e.labels.size(0), " test items (class-level relevance; 'pair' = the paired item) in ",
              seconds, " s; written to ", dir);
    std::cout << table;
  });
}

}  // namespace mmkt::app
