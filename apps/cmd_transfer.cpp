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
#include "mmkt/transfer/table.h"

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

void register_transfer_table(CLI::App& root, CommonOptions& common) {
  struct Args {
    std::vector<std::string> dirs;
    std::string out, json;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = root.add_subcommand(
      "transfer-table", "one comparison table from several mmkt transfer outputs of one method");
  cmd->add_option("dirs", args->dirs, "transfer output folders (each with result.json)")
      ->required();
  cmd->add_option("--out", args->out, "also write the table to this Markdown file");
  cmd->add_option("--json", args->json, "also write the table as JSON to this file");
  cmd->callback([&common, args] {
    init_runtime(common.runtime);
    std::vector<std::pair<std::string, nlohmann::json>> results;
    for (const auto& dir : args->dirs) {
      const std::string path = dir + "/result.json";
      MMKT_CHECK_INPUT(io::file_exists(path), path, ": no transfer result here");
      nlohmann::json result;
      try {
        result = nlohmann::json::parse(io::read_file(path));
      } catch (const nlohmann::json::parse_error& e) {
        fail_input(path, ": malformed JSON: ", e.what());
      }
      // The column's name: the folder's own name.
      auto name = dir;
      while (name.size() > 1 && name.back() == '/') name.pop_back();
      name = name.substr(name.find_last_of('/') + 1);
      results.emplace_back(name, std::move(result));
    }
    const auto table = transfer::transfer_table(results);
    std::cout << table.markdown;
    if (!args->out.empty()) io::write_file_atomic(args->out, table.markdown);
    if (!args->json.empty()) io::write_file_atomic(args->json, table.json.dump(2) + "\n");
  });
}

}  // namespace mmkt::app
