#include "mmkt/distill/pipeline.h"

#include <filesystem>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/distill/net2net.h"
#include "mmkt/io/files.h"
#include "mmkt/run/run.h"

namespace mmkt::distill {

std::string distill_label(const DistillOptions& o) {
  return o.method + (o.heavy ? "-H" : "") + (o.data_free ? " data-free" : "") +
         (o.grow_from.empty() ? "" : " grown") +
         (o.student_teacher.empty() ? "" : " from a student");
}

namespace {

std::string folder_name(const DistillOptions& o) {
  std::string s = o.method + (o.heavy ? "-H" : "") + (o.data_free ? "-datafree" : "") +
                  (o.grow_from.empty() ? "" : "-grown") +
                  (o.student_teacher.empty() ? "" : "-fromstudent") + "_" + o.student;
  for (auto& c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '_';
  }
  return s;
}

nlohmann::json options_json(const DistillOptions& o) {
  nlohmann::json weights;
  for (const auto& [k, v] : parse_method(o.method)) weights[k] = v;
  return {{"teacher", o.teacher_dir},
          {"method", o.method},
          {"weights", weights},
          {"student", o.student},
          {"auxiliary", o.heavy ? nlohmann::json(o.auxiliary) : nlohmann::json()},
          {"modality", o.modality},
          {"heavy", o.heavy},
          {"data_free", o.data_free},
          {"grow_from", o.grow_from},
          {"student_teacher", o.student_teacher},
          {"max_items", o.max_items},
          {"epochs", o.train.epochs},
          {"batch_size", o.train.batch_size},
          {"lr", o.train.lr},
          {"temperature", o.train.temperature},
          {"target", o.train.target},
          {"seed", o.train.seed},
          {"reconstruction", o.data_free ? nlohmann::json{{"items", o.reconstruction.items},
                                                          {"steps", o.reconstruction.steps},
                                                          {"lr", o.reconstruction.lr}}
                                         : nlohmann::json()}};
}

// The transfer set without the training data: statistics (computed and stored on first use),
// then reconstructed images labelled by the class they were drawn for.
TransferSet data_free_transfer(LoadedRun& run, const DistillOptions& o, nlohmann::json& info,
                               const torch::Device& device) {
  MMKT_CHECK_INPUT(o.modality == "image", "data-free distillation reconstructs images only");
  const std::string path = o.teacher_dir + "/distill/activation_stats_" + o.modality + ".pt";
  if (!io::file_exists(path)) {
    log::info("data-free: keeping the teacher's activation statistics in ", path,
              " (the only pass over the training data)");
    torch::NoGradGuard no_grad;
    run.model->eval();
    const auto inputs =
        collect_inputs(run, run.data.train, o.modality, 0, false, /*binarize=*/true);
    std::vector<torch::Tensor> features;
    for (const auto& b : inputs.batches)
      features.push_back(run.model->unimodal_features(o.modality, b.to(device)).cpu());
    std::filesystem::create_directories(o.teacher_dir + "/distill");
    save_activation_stats(path, activation_stats(o.modality, torch::cat(features), inputs.labels));
  }
  const auto stats = load_activation_stats(path);
  std::vector<std::int64_t> shape;
  for (const auto& m : run.modalities) {
    if (m.name == o.modality) shape = m.shape;
  }
  auto ro = o.reconstruction;
  ro.seed = o.train.seed;
  const auto r = reconstruct_inputs(run.model, stats, shape, ro, device);
  info = {{"statistics", path},
          {"items", r.labels.size(0)},
          {"feature_loss_initial", r.initial_loss},
          {"feature_loss_final", r.final_loss}};
  std::int64_t classes = 0;
  if (run.data.class_attributes) classes = run.data.class_attributes->num_classes();
  auto t = transfer_from_inputs(run.model, o.modality, models::ModalityInput{r.images, {}},
                                r.labels, classes, device);
  t.source = "teacher (data-free reconstructions)";
  return t;
}

Student new_student(LoadedRun& run, const std::string& spec, const std::string& modality,
                    std::int64_t classes) {
  for (const auto& m : run.modalities) {
    if (m.name == modality) {
      return Student(parse_student_spec(spec, m, run.config.model.latent_dim, classes));
    }
  }
  fail_input("the teacher has no modality '", modality, "'");
}

}  // namespace

nlohmann::json run_distillation(const DistillOptions& o, const Runtime& rt) {
  const auto weights = parse_method(o.method);
  MMKT_CHECK_INPUT(!o.heavy || uses_teacher(weights),
                   "the heavy-auxiliary route needs a method that uses the "
                   "teacher (not '",
                   o.method, "')");
  auto run = load_run(o.teacher_dir, rt.device);
  const std::string dir =
      o.out_dir.empty() ? o.teacher_dir + "/distill/" + folder_name(o) : o.out_dir;
  std::filesystem::create_directories(dir);
  nlohmann::json result{{"label", distill_label(o)}, {"options", options_json(o)}};
  io::write_file_atomic(dir + "/config.json", result["options"].dump(2) + "\n");
  log::info("distilling ", o.teacher_dir, " into a ", o.student, " ", o.modality, " student with ",
            distill_label(o), " -> ", dir);

  // 1. The transfer set.
  TransferSet transfer;
  if (o.data_free) {
    nlohmann::json info;
    auto seeded = o;
    seeded.train.seed = rt.seed;  // --seed drives the reconstruction noise too
    transfer = data_free_transfer(run, seeded, info, rt.device);
    result["data_free"] = info;
  } else {
    transfer = transfer_from_teacher(run, o.modality, o.max_items, rt.device);
  }
  auto train_options = o.train;
  train_options.seed = rt.seed;
  if (!o.student_teacher.empty()) {
    MMKT_CHECK_INPUT(!o.heavy, "--student-teacher and --heavy exclude each other");
    auto small = load_student(o.student_teacher, rt.device);
    transfer =
        transfer_from_student(small, transfer.input, transfer.labels, transfer.classes, rt.device);
    transfer.source = "student " + small->spec().text + " (" + o.student_teacher + ")";
  }

  // 2. The heavy-auxiliary route.
  std::optional<Student> auxiliary;
  if (o.heavy) {
    torch::manual_seed(derive_seed(rt.seed, "distill-auxiliary-init"));
    auxiliary = new_student(run, o.auxiliary, o.modality, transfer.classes);
    std::filesystem::create_directories(dir + "/auxiliary");
    auto ao = train_options;
    ao.log_path = dir + "/auxiliary/log.jsonl";
    log::info("heavy route: training the auxiliary ", o.auxiliary, " from the teacher");
    result["auxiliary_training"] = train_student(*auxiliary, transfer, weights, ao, rt.device);
    save_student(dir + "/auxiliary", *auxiliary);
    transfer = transfer_from_student(*auxiliary, transfer.input, transfer.labels, transfer.classes,
                                     rt.device);
  }

  // 3. The student.
  torch::manual_seed(derive_seed(rt.seed, "distill-student-init"));
  auto student = new_student(run, o.student, o.modality, transfer.classes);
  if (!o.grow_from.empty()) {
    auto small = load_student(o.grow_from, rt.device);
    student = grow_student(small, student->spec(), derive_seed(rt.seed, "distill-growth"));
    result["grown_from"] = {{"dir", o.grow_from}, {"student", small->spec().text}};
    log::info("the student starts as ", small->spec().text, " from ", o.grow_from,
              ", grown (Net2Net, function-preserving) to ", o.student);
  }
  train_options.log_path = dir + "/log.jsonl";
  result["training"] = train_student(student, transfer, weights, train_options, rt.device);
  result["training"]["transfer_items"] = transfer.size();
  result["training"]["learned_from"] = transfer.source;
  save_student(dir, student);

  // 4. Evaluation beside the teacher's unimodal encoder.
  auto eo = o.eval;
  const auto data = evaluation_data(run, o.modality, eo, rt.device);
  const auto teacher = teacher_embedder(run, o.modality);
  nlohmann::json teacher_row;
  if (o.teacher_metrics) {
    teacher_row = evaluate_embedder(run, teacher, data, eo, rt.device);
  } else {
    teacher_row = {{"name", "teacher"},
                   {"modality", o.modality},
                   {"parameters", teacher.parameters},
                   {"images_per_second", throughput(teacher, data.test, eo, rt.device)}};
  }
  result["teacher"] = teacher_row;
  auto with_ratios = [&](nlohmann::json row, const std::string& label) {
    row["label"] = label;
    row["teacher_parameters"] = teacher_row["parameters"];
    row["teacher_images_per_second"] = teacher_row["images_per_second"];
    row["parameter_ratio"] =
        row["parameters"].get<double>() / teacher_row["parameters"].get<double>();
    row["speedup"] =
        row["images_per_second"].get<double>() / teacher_row["images_per_second"].get<double>();
    return row;
  };
  if (auxiliary) {
    result["auxiliary"] =
        with_ratios(evaluate_embedder(run, student_embedder(*auxiliary, "auxiliary " + o.auxiliary),
                                      data, eo, rt.device),
                    "auxiliary " + o.auxiliary + " (" + o.method + ")");
  }
  result["student"] = with_ratios(
      evaluate_embedder(run, student_embedder(student, o.student), data, eo, rt.device),
      distill_label(o) + " " + o.student + (o.modality == "image" ? "" : " (" + o.modality + ")"));
  io::write_file_atomic(dir + "/result.json", result.dump(2) + "\n");
  const auto table = comparison_markdown(comparison_rows({result}));
  io::write_file_atomic(dir + "/result.md", "# " + distill_label(o) + " (" + o.student + ") from " +
                                                o.teacher_dir + "\n\n" + table);
  result["dir"] = dir;
  return result;
}

std::vector<nlohmann::json> comparison_rows(const std::vector<nlohmann::json>& results) {
  std::vector<nlohmann::json> rows;
  for (const auto& r : results) {
    if (r.contains("teacher") && r["teacher"].contains("retrieval")) {
      auto t = r["teacher"];
      t["label"] = "teacher (" + t.value("modality", std::string("image")) + " encoder)";
      rows.push_back(t);
      break;
    }
  }
  for (const auto& r : results) {
    if (r.contains("auxiliary")) rows.push_back(r["auxiliary"]);
    MMKT_CHECK_INPUT(r.contains("student"), "a distillation result without a student row");
    rows.push_back(r["student"]);
  }
  return rows;
}

}  // namespace mmkt::distill
