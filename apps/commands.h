// Subcommands of the `mmkt` binary. Each register_* adds one CLI11 subcommand whose callback
// parses nothing more and calls one library function; main.cpp owns the shared options.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "mmkt/core/runtime.h"

namespace mmkt::app {

// Options every subcommand accepts (--threads, --device, --seed, --log-level).
struct CommonOptions {
  RuntimeOptions runtime;
};

// The process's own argv (set by main), for subcommands that re-run the binary (--nproc).
std::vector<std::string>& command_line();

void register_info(CLI::App& root, CommonOptions& common);
void register_tokenizer(CLI::App& root, CommonOptions& common);
void register_data(CLI::App& root, CommonOptions& common);
void register_train(CLI::App& root, CommonOptions& common);
void register_eval(CLI::App& root, CommonOptions& common);
void register_embed(CLI::App& root, CommonOptions& common);
void register_distill(CLI::App& root, CommonOptions& common);
void register_distill_table(CLI::App& root, CommonOptions& common);
void register_transfer_table(CLI::App& root, CommonOptions& common);
void register_query(CLI::App& root, CommonOptions& common);
void register_zeroshot(CLI::App& root, CommonOptions& common);
void register_generate(CLI::App& root, CommonOptions& common);
void register_demo(CLI::App& root, CommonOptions& common);
void register_bench(CLI::App& root, CommonOptions& common);
void register_serve(CLI::App& root, CommonOptions& common);
void register_transfer(CLI::App& root, CommonOptions& common);

}  // namespace mmkt::app
