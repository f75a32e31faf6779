// `mmkt bench`: speed figures (training step, evaluation, K = 1000 likelihood, query latency,
// data pipeline, matmul peak) as a Markdown table on stdout and JSON in --out.
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "mmkt/bench/bench.h"
#include "mmkt/io/files.h"
#include "mmkt/io/json_config.h"

namespace mmkt::app {

void register_bench(CLI::App& root, CommonOptions& common) {
  struct Args {
    bench::BenchOptions options;
    std::vector<std::string> parts;
    std::string out = "runs/bench";
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = root.add_subcommand("bench", "measure training, evaluation, query and data speed");
  cmd->add_option("--part", args->parts,
                  "matmul, train, train-mnist, eval, query, pipeline (repeatable; default all)")
      ->take_all();
  cmd->add_option("--repeats", args->options.repeats, "timings per figure (median reported)")
      ->capture_default_str();
  cmd->add_option("--steps", args->options.steps, "training steps per timing (MNIST)")
      ->capture_default_str();
  cmd->add_option("--warmup", args->options.warmup_steps, "training steps before timing")
      ->capture_default_str();
  cmd->add_option("--trained-epochs", args->options.trained_epochs,
                  "real MNIST epochs before timing the trained model's step (0: skip)")
      ->capture_default_str();
  cmd->add_option("--experiments", args->options.experiments,
                  "folder of the experiment configurations")
      ->capture_default_str();
  cmd->add_option("--out", args->out, "folder for bench.json and bench.md")->capture_default_str();
  cmd->add_flag("--json", args->json, "print the JSON report instead of the Markdown table");
  cmd->callback([&common, args] {
    const Runtime rt = init_runtime(common.runtime);
    if (!args->parts.empty()) args->options.parts = args->parts;
    const auto report = bench::run_benchmarks(args->options, rt);
    const auto markdown = bench::bench_markdown(report);
    std::filesystem::create_directories(args->out);
    io::write_json_file(args->out + "/bench.json", report);
    io::write_file_atomic(args->out + "/bench.md", markdown);
    std::cout << (args->json ? report.dump(2) : markdown) << std::endl;
  });
}

}  // namespace mmkt::app
