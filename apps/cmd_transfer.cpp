// `mmkt transfer --method antidistill|hbda|dwp --config FILE --out DIR`: the lecture's transfer
// schemes beyond distillation, each an experiment that trains and judges its own models
// (lib/transfer/). A single grown student is also `mmkt distill --grow-from`.
#include <iostream>

#include "commands.h"
#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/io/files.h"
#include "mmkt/io/json_config.h"
#include "mmkt/transfer/antidistill.h"
#include "mmkt/transfer/dwp.h"
#include "mmkt/transfer/hbda.h"

namespace mmkt::app {

void register_transfer(CLI::App& root, CommonOptions& common) {
  struct Args {
    std::string method = "hbda";
    std::string config;
    std::string out;
    std::vector<std::string> set;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = root.add_subcommand(
      "transfer",
      "knowledge transfer: antidistillation (small -> large), hierarchical prior across domains "
      "(hbda), deep weight prior (dwp)");
  cmd->add_option("--method", args->method,
                  "antidistill (a small student grows into a large one) | hbda (shared "
                  "hierarchical prior across domains) | dwp (deep weight prior)")
      ->capture_default_str();
  cmd->add_option("--config", args->config, "experiment JSON (keys: see --print-config)");
  cmd->add_option("--set", args->set, "override a config key: key=value (repeatable)");
  cmd->add_option("--out", args->out, "output folder (result.json, result.md, log.jsonl)");
  auto* print = cmd->add_flag("--print-config", "print the method's default config and exit");
  cmd->callback([&common, args, print] {
    const Runtime rt = init_runtime(common.runtime);
    const std::string& method = args->method;
    MMKT_CHECK_INPUT(method == "antidistill" || method == "hbda" || method == "dwp",
                     "transfer --method '", method, "' (expected antidistill, hbda or dwp)");
    const nlohmann::json defaults = method == "hbda"  ? transfer::hbda_options_to_json({})
                                    : method == "dwp" ? transfer::dwp_options_to_json({})
                                                      : transfer::antidistill_options_to_json({});
    if (print->count() > 0) {
      std::cout << defaults.dump(2) << "\n";
      return;
    }
    MMKT_CHECK_INPUT(!args->out.empty(), "transfer: --out DIR is required");
    nlohmann::json user = nlohmann::json::object();
    std::string source = "defaults";
    if (!args->config.empty()) {
      user = io::load_json_file(args->config);
      source = args->config;
    }
    nlohmann::json config = io::merge_strict(defaults, user, source);
    for (const auto& s : args->set) io::apply_override(config, s);
    if (method == "hbda") {
      auto options = transfer::hbda_options_from_json(config, source);
      options.out_dir = args->out;
      transfer::run_hbda(options, rt);
    } else if (method == "dwp") {
      auto options = transfer::dwp_options_from_json(config, source);
      options.out_dir = args->out;
      transfer::run_dwp(options, rt);
    } else {
      auto options = transfer::antidistill_options_from_json(config, source);
      options.out_dir = args->out;
      transfer::run_antidistill(options, rt);
    }
    std::cout << io::read_file(args->out + "/result.md");
    log::info("results and log written to ", args->out);
  });
}

}  // namespace mmkt::app
