#include "mmkt/eval/report.h"

#include <chrono>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/core/runtime.h"
#include "mmkt/data/batcher.h"
#include "mmkt/data/labelled_images.h"
#include "mmkt/eval/linear.h"
#include "mmkt/eval/pictures.h"
#include "mmkt/eval/retrieval.h"
#include "mmkt/eval/shift.h"
#include "mmkt/image/convert.h"
#include "mmkt/io/files.h"
#include "mmkt/io/json_config.h"
#include "mmkt/run/run_data.h"

namespace mmkt::eval {

const std::vector<std::string>& eval_metric_names() {
  static const std::vector<std::string> names = {"retrieval", "likelihood", "probe",
                                                 "zeroshot",  "coherence",  "pictures"};
  return names;
}

ShiftSpec parse_shift_spec(const std::string& spec) {
  const auto colon = spec.find(':');
  MMKT_CHECK_INPUT(colon != std::string::npos && colon > 0 && colon + 1 < spec.size(), "shift '",
                   spec, "': expected KIND:S1,S2,... (e.g. rotation:1,2,3 or concept:0.1,0.3)");
  ShiftSpec s;
  s.kind = spec.substr(0, colon);
  auto kinds = covariate_shift_kinds();
  kinds.push_back("prior");
  kinds.push_back("concept");
  MMKT_CHECK_INPUT(std::find(kinds.begin(), kinds.end(), s.kind) != kinds.end(), "shift '", spec,
                   "': unknown kind '", s.kind, "'");
  std::stringstream in(spec.substr(colon + 1));
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      std::size_t used = 0;
      const double v = std::stod(item, &used);
      MMKT_CHECK_INPUT(used == item.size() && v >= 0, "");
      s.severities.push_back(v);
    } catch (const std::exception&) {
      fail_input("shift '", spec, "': severity '", item, "' is not a number >= 0");
    }
  }
  MMKT_CHECK_INPUT(!s.severities.empty(), "shift '", spec, "': no severity given");
  return s;
}

nlohmann::json probe_report(const Embeddings& train, const Embeddings& test, std::int64_t classes) {
  const auto clf = fit_softmax(train.mu.at("image"), train.labels, classes);
  const double acc = accuracy(clf.predict(test.mu.at("image")), test.labels);
  log::info("linear probe on image posterior means: accuracy ", acc, " (", train.labels.size(0),
            " training items, ", classes, " classes)");
  return {{"accuracy", acc},
          {"train_items", train.labels.size(0)},
          {"test_items", test.labels.size(0)},
          {"classes", classes}};
}

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Retrieval: text<->image and image->image with a text modality, image->image otherwise;
// seen- and unseen-class queries also apart when the run holds classes out.
nlohmann::json retrieval_of(const LoadedRun& run, const Embeddings& e) {
  const auto& unseen = run.data.unseen_classes;
  if (e.mu.count("text")) return retrieval_report(e, "image", "text", unseen);
  return image_retrieval_report(e, "image", unseen);
}

std::int64_t num_classes(const LoadedRun& run) {
  const auto& names = run.data.test->info().class_names;
  return static_cast<std::int64_t>(names.size());  // 0 = unlabelled: no probe, no scatter
}

// Reconstructions: originals, q(z|image) means decoded, q(z|all) means decoded.
void reconstruction_picture(LoadedRun& run, const std::string& path, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  auto bo = batcher_options(run, BatchPurpose::kEvaluation);
  bo.batch_size = 12;
  data::Batcher b(run.data.test, bo);
  b.start_epoch(0);
  const auto batch = b.next();
  const auto inputs = inputs_from_batch(*batch, run.modalities, device);
  auto& dec = run.model->decoder("image");
  const auto from_image = dec.mean(run.model->encode("image", inputs.at("image")).mu).cpu();
  const auto from_all = dec.mean(run.model->encode_joint(inputs).mu).cpu();
  const auto grid =
      torch::cat(std::vector<torch::Tensor>{batch->images.cpu(), from_image, from_all});
  image::write_png(
      path, image::make_grid(image::upscale_nearest(grid, image::viewing_scale(grid.size(2))),
                             static_cast<int>(batch->size())));
}

// A contact sheet for a few text queries against the test images (cosine on posterior means).
void contact_sheet_picture(const LoadedRun& run, const Embeddings& e, const std::string& path) {
  const std::int64_t queries = 6, top = 8;
  namespace F = torch::nn::functional;
  const auto n = e.labels.size(0);
  std::vector<std::int64_t> picks;
  std::vector<std::string> captions;
  // One query from each of the first classes met, spread over the test set.
  std::set<std::int64_t> classes_seen;
  for (std::int64_t i = 0; i < n && static_cast<std::int64_t>(picks.size()) < queries; i += 97) {
    const auto c = e.labels[i].item<std::int64_t>();
    if (classes_seen.insert(c).second) picks.push_back(i);
  }
  const auto idx = torch::tensor(picks, torch::kInt64);
  const auto q =
      F::normalize(e.mu.at("text").index_select(0, idx), F::NormalizeFuncOptions().dim(1));
  const auto db = F::normalize(e.mu.at("image"), F::NormalizeFuncOptions().dim(1));
  const auto best = std::get<1>(torch::mm(q, db.t()).topk(top, 1));  // [Q,top]
  std::vector<torch::Tensor> rows;
  for (std::size_t r = 0; r < picks.size(); ++r) {
    captions.push_back(run.data.test->captions({picks[r]}).front());
    const auto ids = best[static_cast<std::int64_t>(r)];
    std::vector<std::int64_t> v(ids.data_ptr<std::int64_t>(),
                                ids.data_ptr<std::int64_t>() + ids.numel());
    rows.push_back(run.data.test->images(v));
  }
  const auto relevant = e.labels.index_select(0, best.flatten())
                            .view({-1, top})
                            .eq(e.labels.index_select(0, idx).unsqueeze(1));
  write_contact_sheet_png(path, captions, torch::Tensor(), torch::stack(rows), relevant);
}

// Embeddings of a shifted test set. Covariate shifts change images only: the other modalities'
// embeddings are the clean ones; concept shift changes labels only; prior shift is re-embedded.
Embeddings shifted_embeddings(LoadedRun& run, const std::string& kind,
                              const data::DatasetPtr& shifted, const Embeddings& clean,
                              const torch::Device& device) {
  if (kind == "concept") {
    Embeddings e = clean;
    e.labels = shifted->labels(data::index_range(shifted->size()));
    return e;
  }
  const auto covariate = covariate_shift_kinds();
  const bool images_only = std::find(covariate.begin(), covariate.end(), kind) != covariate.end();
  EmbedOptions eo;
  eo.features = !clean.features.empty();
  if (images_only) eo.modalities = {"image"};
  auto e = embed_dataset(run, shifted, device, eo);
  if (images_only) {
    for (const auto& [m, t] : clean.mu) {
      if (m != "image") {
        e.mu[m] = t;
        e.logvar[m] = clean.logvar.at(m);
      }
    }
  }
  return e;
}

// The metrics tracked against shift severity, on test embeddings `e`.
nlohmann::json shift_metrics(LoadedRun& run, const Embeddings& e, const Embeddings& probe_train,
                             const Embeddings& zs_train, const std::optional<ZeroShotTask>& task,
                             const EvalOptions& o) {
  nlohmann::json row{{"items", e.labels.size(0)}};
  const auto r = retrieval_of(run, e);
  for (const auto& [t, by] : r.items()) row["mAP " + t] = by["euclidean"]["mAP"];
  if (o.metrics.count("probe") && probe_train.mu.count("image")) {
    row["probe accuracy"] = probe_report(probe_train, e, num_classes(run))["accuracy"];
  }
  if (o.metrics.count("zeroshot") && task) {
    const auto z = zero_shot_report(run, *task, zs_train, e, o.zero_shot);
    for (const std::string m : {"dap", "iap", "text"}) {
      if (!z.contains(m)) continue;
      row["ZSL " + m] = z[m]["zsl"];
      row["H " + m] = z[m]["H"];
    }
  }
  return row;
}

std::string shift_markdown(const nlohmann::json& shifts) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(3);
  for (const auto& [kind, rows] : shifts.items()) {
    if (rows.empty()) continue;
    std::vector<std::string> cols;
    for (const auto& [k, v] : rows.front().items()) {
      if (k != "severity" && k != "items") cols.push_back(k);
    }
    out << "\n**" << kind << " shift**\n\n| severity | items |";
    for (const auto& c : cols) out << " " << c << " |";
    out << "\n| ---: | ---: |";
    for (std::size_t i = 0; i < cols.size(); ++i) out << " ---: |";
    out << "\n";
    for (const auto& row : rows) {
      out << "| " << row["severity"].get<double>() << " | " << row["items"].get<std::int64_t>()
          << " |";
      for (const auto& c : cols)
        out << " " << (row.contains(c) ? row[c].get<double>() : 0.0) << " |";
      out << "\n";
    }
  }
  return out.str();
}

}  // namespace

nlohmann::json evaluate_run(LoadedRun& run, const EvalOptions& o, const std::string& out_dir,
                            const torch::Device& device) {
  for (const auto& m : o.metrics) {
    MMKT_CHECK_INPUT(std::find(eval_metric_names().begin(), eval_metric_names().end(), m) !=
                         eval_metric_names().end(),
                     "unknown metric '", m,
                     "' (expected retrieval, likelihood, probe, zeroshot, coherence, pictures)");
  }
  MMKT_CHECK_INPUT(run.model->has_modality("image"), "mmkt eval needs an 'image' modality");
  const std::string pictures = out_dir + "/pictures";
  std::filesystem::create_directories(pictures);
  nlohmann::json report{{"run", run.resolved},
                        {"test_set", run.data.test->info().name},
                        {"test_items", run.data.test->size()}};
  std::ostringstream md;
  md << "# Evaluation of " << out_dir << "\n\nTest set: " << run.data.test->info().name << " ("
     << run.data.test->size() << " items).\n";
  const auto t_all = Clock::now();

  // Posterior means of the test set: retrieval, probe, zero-shot and pictures share them.
  auto t = Clock::now();
  EmbedOptions eo;
  eo.features = o.zero_shot.features == "encoder";
  const auto test = embed_dataset(run, run.data.test, device, eo);
  report["seconds"]["embed_test"] = since(t);

  if (o.metrics.count("retrieval")) {
    t = Clock::now();
    report["retrieval"] = retrieval_of(run, test);
    report["seconds"]["retrieval"] = since(t);
    md << "\n## Retrieval (posterior means, class-level relevance; 'pair' = the paired item)\n\n"
       << retrieval_markdown(report["retrieval"]);
    io::write_json_file(out_dir + "/retrieval.json", report["retrieval"]);
  }
  if (o.metrics.count("likelihood")) {
    t = Clock::now();
    report["likelihood"] = likelihood_report(run, run.data.test, o.likelihood, device);
    report["seconds"]["likelihood"] = since(t);
    md << "\n## Importance-weighted log-likelihoods (nats per test item)\n\n"
       << likelihood_markdown(report["likelihood"]);
  }
  const std::int64_t classes = num_classes(run);
  Embeddings probe_train;
  if ((o.metrics.count("probe") || !o.shifts.empty()) && classes > 0) {
    t = Clock::now();
    EmbedOptions po;
    po.modalities = {"image"};
    probe_train =
        embed_dataset(run, evaluator_training_set(run.config, o.probe_train_items), device, po);
    report["probe"] = probe_report(probe_train, test, classes);
    report["seconds"]["probe"] = since(t);
    md << "\n## Linear probe\n\nSoftmax regression on image posterior means, fit on "
       << report["probe"]["train_items"].get<std::int64_t>()
       << " training images of every class: test accuracy **" << std::fixed << std::setprecision(4)
       << report["probe"]["accuracy"].get<double>() << "**.\n";
  }
  const auto task = zero_shot_task(run);
  Embeddings zs_train;
  std::map<std::string, torch::Tensor> confusions;
  const auto missing_unseen = task ? test_without_unseen_items(run, *task) : std::nullopt;
  if (o.metrics.count("zeroshot") && missing_unseen) {
    // Zero-shot accuracy over no items would read 0.0: say why instead.
    log::warn("zero-shot skipped: ", *missing_unseen);
    report["zeroshot"] = {{"skipped", *missing_unseen}};
    md << "\n## Zero-shot\n\nNot measured: " << *missing_unseen << "\n";
  } else if (o.metrics.count("zeroshot") && task) {
    t = Clock::now();
    EmbedOptions zo;
    zo.modalities = {"image"};
    zo.features = o.zero_shot.features == "encoder";
    zo.max_items = o.zero_shot.max_train;
    zs_train = embed_dataset(run, run.data.train, device, zo);
    // Seen-class validation items calibrate the "+cs" rows (calibrated stacking).
    std::optional<Embeddings> validation;
    // (Validation classes of data.validation_unseen are held-out items, not calibration data.)
    if (run.data.validation) {
      auto seen_validation =
          run.data.validation_unseen_classes.empty()
              ? run.data.validation
              : data::subset(run.data.validation,
                             data::indices_by_class(*run.data.validation,
                                                    run.data.validation_unseen_classes, false));
      validation = embed_dataset(run, seen_validation, device, zo);
    }
    report["zeroshot"] = zero_shot_report(run, *task, zs_train, test, o.zero_shot, &confusions,
                                          validation ? &*validation : nullptr);
    report["seconds"]["zeroshot"] = since(t);
    md << "\n## Zero-shot (unseen: " << report["zeroshot"]["unseen"].dump() << ")\n\n"
       << zero_shot_markdown(report["zeroshot"]);
  } else if (o.metrics.count("zeroshot")) {
    md << "\n## Zero-shot\n\nNot applicable: the run holds no classes out of training.\n";
  }
  CoherenceExamples examples;
  if (o.metrics.count("coherence")) {
    t = Clock::now();
    const auto schema = evaluation_schema(run);
    nlohmann::json ev_report;
    auto evaluator = image_evaluator(run, schema, out_dir + "/evaluator_image.pt", o.evaluator,
                                     device, &ev_report);
    report["coherence"] =
        coherence_report(run, schema, evaluator, run.data.test, o.coherence, device, &examples);
    report["coherence"]["evaluator"] = ev_report;
    report["seconds"]["coherence"] = since(t);
    auto table = report["coherence"];
    table.erase("evaluator");
    md << "\n## Coherence\n\nImage evaluator accuracy on real test images: "
       << ev_report["evaluator_test_accuracy"].dump() << "\n\n"
       << coherence_markdown(table);
  }
  if (o.metrics.count("pictures")) {
    t = Clock::now();
    std::vector<std::string> written;
    reconstruction_picture(run, pictures + "/reconstructions.png", device);
    written.push_back("reconstructions.png (rows: test images, from q(z|image), from q(z|all))");
    if (classes > 0) {
      const auto n = std::min<std::int64_t>(3000, test.labels.size(0));
      write_scatter_png(pictures + "/latent_pca.png", pca_2d(test.mu.at("image").narrow(0, 0, n)),
                        test.labels.narrow(0, 0, n), run.data.test->info().class_names,
                        "image posterior means, PCA (first " + std::to_string(n) + " test items)");
      written.push_back("latent_pca.png");
    }
    if (test.mu.count("text")) {
      contact_sheet_picture(run, test, pictures + "/retrieval_text_to_image.png");
      written.push_back("retrieval_text_to_image.png (green: same class)");
    }
    if (examples.images_from_text.defined()) {
      write_image_rows_png(pictures + "/text_to_image.png", examples.source_captions,
                           examples.images_from_text);
      write_image_rows_png(pictures + "/image_to_text.png", examples.captions_from_image,
                           examples.source_images.unsqueeze(1));
      written.push_back("text_to_image.png");
      written.push_back("image_to_text.png");
    }
    for (const auto& [method, c] : confusions) {
      std::vector<std::string> names;
      for (const auto u : task->unseen)
        names.push_back(task->class_names[static_cast<std::size_t>(u)]);
      write_confusion_png(pictures + "/zeroshot_confusion_" + method + ".png", c, names, names,
                          "zero-shot: " + method);
      written.push_back("zeroshot_confusion_" + method + ".png");
    }
    report["pictures"] = written;
    report["seconds"]["pictures"] = since(t);
    md << "\n## Pictures (in pictures/)\n\n";
    for (const auto& w : written) md << "- " << w << "\n";
  }
  if (!o.shifts.empty()) {
    t = Clock::now();
    md << "\n## Dataset shift (Euclidean mAP; probe and zero-shot refit on clean training data)\n";
    // Severity 0 (the clean test set) heads every table.
    auto clean_row = shift_metrics(run, test, probe_train, zs_train, task, o);
    clean_row["severity"] = 0.0;
    for (const auto& s : o.shifts) {
      nlohmann::json rows = nlohmann::json::array({clean_row});
      for (const double sev : s.severities) {
        if (sev == 0.0) continue;  // the clean row
        data::DatasetPtr shifted;
        const auto seed = derive_seed(o.seed, "shift/" + s.kind);
        if (s.kind == "prior") {
          shifted = prior_shift(run.data.test, sev, seed);
        } else if (s.kind == "concept") {
          shifted = concept_shift(run.data.test, sev, seed);
        } else {
          shifted = covariate_shift(run.data.test, s.kind, sev, seed);
        }
        auto row = shift_metrics(run, shifted_embeddings(run, s.kind, shifted, test, device),
                                 probe_train, zs_train, task, o);
        row["severity"] = sev;
        log::info("shift ", s.kind, " severity ", sev, ": ", row.dump());
        rows.push_back(row);
      }
      report["shift"][s.kind] = rows;
    }
    md << shift_markdown(report["shift"]);
    report["seconds"]["shift"] = since(t);
  }
  report["seconds"]["total"] = since(t_all);
  io::write_json_file(out_dir + "/report.json", report);
  io::write_file_atomic(out_dir + "/report.md", md.str());
  return report;
}

}  // namespace mmkt::eval
