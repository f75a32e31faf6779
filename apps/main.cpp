// mmkt: one binary, one subcommand per job. Errors end as one line on stderr and a non-zero
// exit: 2 for bad input (files, config, arguments), 1 for anything else.
#include <cstdio>
#include <exception>

#include <c10/util/Exception.h>

#include "commands.h"
#include "mmkt/core/build_info.h"
#include "mmkt/core/cpu_setup.h"
#include "mmkt/core/error.h"

std::vector<std::string>& mmkt::app::command_line() {
  static std::vector<std::string> line;
  return line;
}

int main(int argc, char** argv) {
  using namespace mmkt;
  // Before anything else: may re-execute with a faster OpenBLAS core, then sets FTZ/DAZ on this
  // thread so that every thread started later inherits it (core/cpu_setup.h).
  early_cpu_setup(argc, argv);
  app::command_line().assign(argv, argv + argc);
  CLI::App root{
      "mmkt: Bayesian multimodal knowledge transfer (JMVAE, retrieval, zero-shot, "
      "distillation) on LibTorch"};
  root.set_version_flag("--version", std::string("mmkt ") + MMKT_VERSION);
  root.require_subcommand(1);
  root.fallthrough();
  app::CommonOptions common;
  root.add_option("--threads", common.runtime.threads,
                  "intra-op threads (default: all cores; libtorch's own default here is 1)");
  root.add_option("--device", common.runtime.device, "cpu, cuda or cuda:N")->capture_default_str();
  root.add_option("--seed", common.runtime.seed, "seed for every random generator")
      ->capture_default_str();
  bool keep_denormals = false;  // read by early_cpu_setup from argv; declared here for --help
  root.add_flag(
      "--keep-denormals", keep_denormals,
      "do not flush denormal floats to zero (FTZ/DAZ are set by default: denormal "
      "arithmetic made real training runs ~3x slower; MMKT_DENORMALS=keep does the same)");
  root.add_option("--log-level", common.runtime.log_level, "debug, info, warn, error or off")
      ->capture_default_str();

  app::register_info(root, common);
  app::register_tokenizer(root, common);
  app::register_data(root, common);
  app::register_train(root, common);
  app::register_eval(root, common);
  app::register_embed(root, common);
  app::register_distill(root, common);
  app::register_distill_table(root, common);
  app::register_query(root, common);
  app::register_zeroshot(root, common);
  app::register_generate(root, common);
  app::register_demo(root, common);
  app::register_bench(root, common);
  app::register_serve(root, common);
  app::register_transfer(root, common);
  app::register_transfer_table(root, common);

  try {
    root.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return root.exit(e);
  } catch (const InputError& e) {
    std::fprintf(stderr, "mmkt: error: %s\n", e.what());
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "mmkt: error: %s\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "mmkt: error (libtorch): %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mmkt: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
