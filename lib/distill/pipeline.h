// `mmkt distill`: one student from a trained teacher run, end to end.
//   1. the transfer set: the teacher's training split with its outputs (transfer_set.h), or,
//      data-free, images reconstructed from the teacher's stored activation statistics
//      (data_free.h; the statistics are computed once from the training split and kept in
//      <teacher>/distill/ — the distillation itself then reads no training data);
//   2. heavy-auxiliary route ("-H"): a larger student of the same family learns from the
//      teacher first, then the student learns from that auxiliary, with the same method;
//   3. the student trains (distiller.h) and is evaluated beside the teacher's unimodal encoder
//      (student_report.h).
// Output folder: config.json, log.jsonl, student.json + student.pt, auxiliary/ (heavy route),
// result.json, result.md.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "mmkt/core/runtime.h"
#include "mmkt/distill/data_free.h"
#include "mmkt/distill/distiller.h"
#include "mmkt/distill/student_report.h"

namespace mmkt::distill {

struct DistillOptions {
  std::string teacher_dir;
  std::string out_dir;  // "" = <teacher>/distill/<label>
  std::string method = "pkt";
  std::string student = "mlp:64";
  std::string auxiliary = "mlp:256";  // the heavy route's auxiliary
  std::string modality = "image";
  bool heavy = false;
  bool data_free = false;
  // Antidistillation (net2net.h): the student starts as the function-preserving growth of the
  // trained student in this distill output folder (a smaller one of the same family).
  std::string grow_from;
  // The transfer set's targets come from the trained student in this folder instead of the
  // teacher: a (larger) student distilled from a small one.
  std::string student_teacher;
  std::int64_t max_items = 0;   // transfer-set items (0 = the whole training split)
  bool teacher_metrics = true;  // false: the teacher row has parameters and throughput only
  TrainOptions train;
  ReconstructionOptions reconstruction;
  StudentEvalOptions eval;
};

// The row name of a configuration: "<method>[-H][ data-free][ grown][ from a student]".
std::string distill_label(const DistillOptions& options);

// Runs everything; returns result.json's content.
nlohmann::json run_distillation(const DistillOptions& options, const Runtime& runtime);

// Rows for comparison_markdown from result.json files: the teacher (from the first result that
// evaluated it fully), then each result's auxiliary (heavy route) and student.
std::vector<nlohmann::json> comparison_rows(const std::vector<nlohmann::json>& results);

}  // namespace mmkt::distill
