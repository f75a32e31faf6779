#include "mmkt/eval/zero_shot.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <optional>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/core/random.h"
#include "mmkt/data/batcher.h"
#include "mmkt/data/class_attributes.h"
#include "mmkt/data/shapes.h"
#include "mmkt/eval/linear.h"
#include "mmkt/eval/pictures.h"
#include "mmkt/run/datasets.h"

namespace mmkt::eval {

torch::Tensor attribute_prior(const torch::Tensor& a, const std::vector<std::int64_t>& seen) {
  MMKT_CHECK_INPUT(!seen.empty(), "zero-shot: no seen class to estimate the attribute prior from");
  const auto rows = a.to(torch::kFloat64).index_select(0, torch::tensor(seen, torch::kInt64));
  auto prior = rows.mean(0);
  // An attribute every (or no) seen class has carries no evidence: 0.5 keeps its factor finite.
  prior = torch::where(prior.le(0.0) | prior.ge(1.0), torch::full_like(prior, 0.5), prior);
  return prior;
}

torch::Tensor dap_log_scores(const torch::Tensor& p, const torch::Tensor& a,
                             const torch::Tensor& prior) {
  MMKT_CHECK(p.dim() == 2 && a.dim() == 2 && p.size(1) == a.size(1) && prior.numel() == a.size(1),
             "dap_log_scores: probabilities [N,M], attributes [C,M], prior [M] needed, got ",
             p.sizes(), ", ", a.sizes(), ", ", prior.sizes());
  // Clamp: a classifier's p = 0 for an attribute a class has would veto the class outright.
  const double eps = 1e-6;
  const auto pp = p.to(torch::kFloat64).clamp(eps, 1 - eps).unsqueeze(1);  // [N,1,M]
  const auto aa = a.to(torch::kFloat64).unsqueeze(0);                      // [1,C,M]
  const auto pr = prior.to(torch::kFloat64).clamp(eps, 1 - eps).view({1, 1, -1});
  const auto num = torch::log(aa * pp + (1 - aa) * (1 - pp));
  const auto den = torch::log(aa * pr + (1 - aa) * (1 - pr));
  return (num - den).sum(2);
}

torch::Tensor iap_attribute_probs(const torch::Tensor& class_probs, const torch::Tensor& a_seen) {
  MMKT_CHECK(class_probs.dim() == 2 && a_seen.dim() == 2 && class_probs.size(1) == a_seen.size(0),
             "iap_attribute_probs: [N,S] probabilities and [S,M] attributes needed, got ",
             class_probs.sizes(), " and ", a_seen.sizes());
  return torch::mm(class_probs.to(torch::kFloat64), a_seen.to(torch::kFloat64));
}

double per_class_accuracy(const torch::Tensor& truth, const torch::Tensor& predicted,
                          const std::vector<std::int64_t>& classes) {
  const auto t = truth.to(torch::kInt64).cpu();
  const auto p = predicted.to(torch::kInt64).cpu();
  double sum = 0;
  int counted = 0;
  for (const auto c : classes) {
    const auto mask = t.eq(c);
    const auto n = mask.sum().item<std::int64_t>();
    if (n == 0) continue;
    sum += static_cast<double>(p.masked_select(mask).eq(c).sum().item<std::int64_t>()) /
           static_cast<double>(n);
    ++counted;
  }
  return counted ? sum / counted : 0.0;
}

ZeroShotMetrics zero_shot_metrics(const torch::Tensor& scores, const torch::Tensor& truth,
                                  const std::vector<std::int64_t>& unseen,
                                  const std::vector<std::int64_t>& seen) {
  MMKT_CHECK(scores.dim() == 2 && scores.size(0) == truth.numel(), "zero_shot_metrics: scores ",
             scores.sizes(), " for ", truth.numel(), " labels");
  MMKT_CHECK_INPUT(!unseen.empty(), "zero-shot: no unseen class");
  const auto s = scores.cpu();
  const auto t = truth.to(torch::kInt64).cpu();
  const auto unseen_t = torch::tensor(unseen, torch::kInt64);
  ZeroShotMetrics m;
  // ZSL: unseen test items, candidates = unseen classes only.
  const auto is_unseen = torch::isin(t, unseen_t);
  const auto rows = is_unseen.nonzero().squeeze(1);
  MMKT_CHECK_INPUT(rows.numel() > 0, "zero-shot: no test item belongs to an unseen class");
  m.zsl_truth = t.index_select(0, rows);
  const auto sub = s.index_select(0, rows).index_select(1, unseen_t);
  m.zsl_predicted = unseen_t.index_select(0, sub.argmax(1));
  m.zsl = per_class_accuracy(m.zsl_truth, m.zsl_predicted, unseen);
  // GZSL: every test item, candidates = all classes.
  const auto all_pred = s.argmax(1);
  m.u = per_class_accuracy(t, all_pred, unseen);
  m.s = per_class_accuracy(t, all_pred, seen);
  m.h = m.u + m.s > 0 ? 2 * m.u * m.s / (m.u + m.s) : 0.0;
  return m;
}

std::optional<ZeroShotTask> zero_shot_task(const LoadedRun& run) {
  ZeroShotTask task;
  const auto& d = run.config.data;
  if (dataset_entry(d.dataset).factor_labels) {
    const int level = d.shapes_level;
    const auto holdout = data::default_shapes_holdout(level);
    if (holdout.empty() || !d.zero_shot_split) return std::nullopt;
    task.attribute_names = data::shapes_attribute_names(level);
    const auto classes = data::shapes_num_classes(level);
    std::vector<torch::Tensor> rows;
    for (std::int64_t c = 0; c < classes; ++c) {
      const auto f = data::shapes_factors_from_label(c, level);
      task.class_names.push_back(data::shapes_class_name(f, level));
      rows.push_back(data::shapes_attributes(f, level));
      task.descriptions.push_back({data::shapes_class_description(f, level)});
      task.captions.emplace_back();
      for (std::uint64_t k = 0; k < 32; ++k)
        task.captions.back().push_back(data::shapes_caption(f, level, 5000 + k));
      (data::shapes_matches_holdout(f, holdout) ? task.unseen : task.seen).push_back(c);
    }
    task.class_attributes = torch::stack(rows);
    return task;
  }
  if (!run.data.class_attributes || run.data.unseen_classes.empty()) return std::nullopt;
  const auto& ca = *run.data.class_attributes;
  task.class_names = ca.class_names;
  task.attribute_names = ca.attribute_names;
  task.class_attributes = ca.matrix.to(torch::kFloat32);
  task.unseen = run.data.unseen_classes;
  const auto& absent = run.data.absent_classes;
  for (std::int64_t c = 0; c < ca.num_classes(); ++c) {
    if (std::find(task.unseen.begin(), task.unseen.end(), c) == task.unseen.end() &&
        std::find(absent.begin(), absent.end(), c) == absent.end())
      task.seen.push_back(c);
  }
  const data::CaptionGrammar grammar(ca);
  task.descriptions.resize(static_cast<std::size_t>(ca.num_classes()));
  for (std::int64_t c = 0; c < ca.num_classes(); ++c) {
    for (std::uint64_t k = 0; k < 16; ++k) {
      task.descriptions[static_cast<std::size_t>(c)].push_back(grammar.description(c, 1000 + k));
    }
    task.captions.emplace_back();
    for (std::uint64_t k = 0; k < 32; ++k)
      task.captions.back().push_back(grammar.caption(c, 5000 + k));
  }
  return task;
}

namespace {

// Rows of `e` (the first max_train) and their labels.
std::pair<torch::Tensor, torch::Tensor> first_rows(const torch::Tensor& x,
                                                   const torch::Tensor& labels,
                                                   std::int64_t max_train) {
  const auto n = std::min(max_train, x.size(0));
  return {x.narrow(0, 0, n), labels.narrow(0, 0, n)};
}

nlohmann::json metrics_json(const ZeroShotMetrics& m) {
  return {{"zsl", m.zsl}, {"u", m.u}, {"s", m.s}, {"H", m.h}};
}

// position[c] = index of class c within `classes`, -1 for classes not in it; [num_classes].
torch::Tensor positions_within(const std::vector<std::int64_t>& classes, std::int64_t num_classes) {
  auto position = torch::full({num_classes}, -1, torch::kInt64);
  position.index_put_({torch::tensor(classes, torch::kInt64)},
                      torch::arange(static_cast<std::int64_t>(classes.size())));
  return position;
}

}  // namespace

std::optional<std::string> test_without_unseen_items(const LoadedRun& run,
                                                     const ZeroShotTask& task) {
  const auto& test = *run.data.test;
  const auto labels = test.labels(data::index_range(test.size()));
  if (torch::isin(labels, torch::tensor(task.unseen, torch::kInt64)).any().item<bool>()) {
    return std::nullopt;
  }
  std::string names;
  for (const auto c : task.unseen) {
    names += (names.empty() ? "" : ", ") + task.class_names[static_cast<std::size_t>(c)];
  }
  return "the test set (" + test.info().name + ", " + std::to_string(test.size()) +
         " items) holds no item of the unseen classes (" + names +
         "); give data.test_manifest items of them, or leave it empty so that 10% of the "
         "manifest (unseen classes included) is carved for testing";
}

namespace {

// The ZSL confusion matrix over the unseen classes, rows and columns in `unseen` order.
torch::Tensor confusion(const ZeroShotMetrics& m, const std::vector<std::int64_t>& unseen,
                        std::int64_t num_classes) {
  const auto u = static_cast<std::int64_t>(unseen.size());
  const auto position = positions_within(unseen, num_classes);
  return confusion_matrix(position.index_select(0, m.zsl_truth),
                          position.index_select(0, m.zsl_predicted), u, u);
}

}  // namespace

namespace {
// q(z|text) of each text, on the CPU: (mu [T,D], logvar [T,D]).
std::pair<torch::Tensor, torch::Tensor> encode_texts(LoadedRun& run,
                                                     const std::vector<std::string>& texts) {
  torch::NoGradGuard no_grad;
  const auto device = run.model->parameters().front().device();
  std::vector<std::vector<std::int64_t>> ids;
  for (const auto& t : texts) ids.push_back(run.data.tokenizer->encode_with_bos_eos(t));
  auto [tokens, lengths] = data::pad_tokens(ids, run.config.data.max_tokens);
  const auto q =
      run.model->encode("text", models::ModalityInput{tokens.to(device), lengths.to(device)});
  return {q.mu.cpu(), q.logvar.cpu()};
}
}  // namespace

torch::Tensor text_class_prototypes(LoadedRun& run, const ZeroShotTask& task) {
  std::vector<torch::Tensor> prototypes;
  for (const auto& descriptions : task.descriptions)
    prototypes.push_back(encode_texts(run, descriptions).first.mean(0));
  return torch::stack(prototypes);
}

torch::Tensor calibrated_scores(const torch::Tensor& scores, const std::vector<std::int64_t>& seen,
                                double gamma) {
  auto out = scores.to(torch::kFloat64).clone();
  const auto cols = torch::tensor(seen, torch::kInt64);
  out.index_copy_(1, cols, out.index_select(1, cols) - gamma);
  return out;
}

double best_calibration(const std::vector<CalibrationSplit>& splits,
                        const std::vector<double>& candidates) {
  MMKT_CHECK(!splits.empty() && !candidates.empty(), "best_calibration: no split or no candidate");
  double best_gamma = 0, best_h = -1;
  auto sorted = candidates;
  std::sort(sorted.begin(), sorted.end());
  for (const double gamma : sorted) {
    double h = 0;
    for (const auto& sp : splits) {
      h += zero_shot_metrics(calibrated_scores(sp.scores, sp.seen, gamma), sp.truth, sp.unseen,
                             sp.seen)
               .h;
    }
    h /= static_cast<double>(splits.size());
    if (h > best_h + 1e-12) {
      best_h = h;
      best_gamma = gamma;
    }
  }
  return best_gamma;
}

namespace {

// What the text side gives zero-shot, encoded once per report (the calibration folds reuse it):
// the text prototypes, and per class q(z|text) of its captions then its descriptions, which the
// generated classifier draws unseen-class latents from.
struct ClassTextLatents {
  torch::Tensor prototypes;                                    // [C,D]
  std::vector<std::pair<torch::Tensor, torch::Tensor>> texts;  // per class (mu, logvar) [T,D]
};

ClassTextLatents class_text_latents(LoadedRun& run, const ZeroShotTask& task) {
  ClassTextLatents out;
  out.prototypes = text_class_prototypes(run, task);
  for (std::size_t c = 0; c < task.captions.size(); ++c) {
    auto texts = task.captions[c];
    texts.insert(texts.end(), task.descriptions[c].begin(), task.descriptions[c].end());
    out.texts.push_back(encode_texts(run, texts));
  }
  return out;
}

// The latents the "generated" classifier learns from: for seen classes, up to n per class drawn
// from q(z|image) of training images; for unseen classes, n drawn from q(z|text) of the class's
// captions and descriptions (cycled). Returns (z [M,D], labels [M]).
std::pair<torch::Tensor, torch::Tensor> generated_training_set(const ZeroShotTask& task,
                                                               const ClassTextLatents& text,
                                                               const torch::Tensor& mu_train,
                                                               const torch::Tensor& logvar_train,
                                                               const torch::Tensor& y_train,
                                                               std::int64_t n, std::uint64_t seed) {
  auto generator = at::detail::createCPUGenerator(seed);
  const auto draw = [&](const torch::Tensor& mu, const torch::Tensor& logvar) {
    return mu + torch::exp(0.5 * logvar) * at::randn(mu.sizes(), generator, mu.options());
  };
  std::vector<torch::Tensor> zs, ys;
  for (const auto c : task.seen) {
    auto rows = y_train.eq(c).nonzero().squeeze(1);
    if (rows.numel() == 0) continue;
    rows = rows.narrow(0, 0, std::min<std::int64_t>(n, rows.numel()));
    zs.push_back(draw(mu_train.index_select(0, rows), logvar_train.index_select(0, rows)));
    ys.push_back(torch::full({rows.numel()}, c, torch::kInt64));
  }
  for (const auto c : task.unseen) {
    const auto& [mu, logvar] = text.texts[static_cast<std::size_t>(c)];
    const auto pick = torch::arange(n, torch::kInt64).remainder(mu.size(0));
    zs.push_back(draw(mu.index_select(0, pick), logvar.index_select(0, pick)));
    ys.push_back(torch::full({n}, c, torch::kInt64));
  }
  return {torch::cat(zs), torch::cat(ys)};
}

// Scores [N,C] of every zero-shot method for test features `x_test`, with classifiers fit on
// training features of task.seen classes; the text methods only with `text`.
std::map<std::string, torch::Tensor> method_scores(
    const ZeroShotTask& task, const ClassTextLatents* text, const torch::Tensor& x_train,
    const torch::Tensor& y_train, const torch::Tensor& logvar_train, const torch::Tensor& x_test,
    const torch::Tensor& mu_test, const ZeroShotOptions& o) {
  std::map<std::string, torch::Tensor> scores;
  const auto a = task.class_attributes.to(torch::kFloat32);
  const auto classes = a.size(0);
  const auto prior = attribute_prior(a, task.seen);
  // DAP: one logistic regression per attribute, on seen-class items labelled with their class's
  // attributes.
  scores["dap"] = dap_log_scores(
      fit_sigmoid(x_train, a.index_select(0, y_train)).probabilities(x_test), a, prior);
  // IAP: a softmax over the seen classes, then attribute probabilities through A.
  {
    const auto seen_t = torch::tensor(task.seen, torch::kInt64);
    const auto clf =
        fit_softmax(x_train, positions_within(task.seen, classes).index_select(0, y_train),
                    static_cast<std::int64_t>(task.seen.size()));
    scores["iap"] = dap_log_scores(
        iap_attribute_probs(clf.probabilities(x_test), a.index_select(0, seen_t)), a, prior);
  }
  if (!text) return scores;
  // Text: the mean latent of each class's descriptions under q(z|text).
  {
    const auto& protos = text->prototypes;  // [C,D]
    namespace F = torch::nn::functional;
    scores["text"] = o.score == "cosine"
                         ? torch::mm(F::normalize(mu_test, F::NormalizeFuncOptions().dim(1)),
                                     F::normalize(protos, F::NormalizeFuncOptions().dim(1)).t())
                         : -torch::cdist(mu_test, protos);
  }
  // Generated: a softmax over all classes on image latents (seen) and text latents (unseen).
  if (logvar_train.defined()) {
    const auto [z, y] = generated_training_set(task, *text, x_train, logvar_train, y_train,
                                               o.generated_per_class, o.seed);
    scores["generated"] = fit_softmax(z, y, classes).logits(mu_test);
  }
  return scores;
}

// Pseudo-GZSL splits of seen-class validation data: in each fold, as many seen classes as there
// are unseen ones (at most all but two) play unseen; the classifiers are refit on the training
// items of the rest. Returns method -> one CalibrationSplit per fold.
std::map<std::string, std::vector<CalibrationSplit>> calibration_splits(
    const ZeroShotTask& task, const ClassTextLatents* text, const torch::Tensor& x_train,
    const torch::Tensor& y_train, const torch::Tensor& logvar_train, const Embeddings& validation,
    const torch::Tensor& x_validation, const ZeroShotOptions& o) {
  std::map<std::string, std::vector<CalibrationSplit>> out;
  if (task.seen.size() < 3) return out;  // at least two seen classes must stay seen
  const auto held = std::min(task.unseen.size(), task.seen.size() - 2);
  SplitMix rng(mix64(o.seed ^ 0x63616c6962ULL));
  for (std::int64_t fold = 0; fold < o.calibration_folds; ++fold) {
    auto order = task.seen;
    for (std::size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
    ZeroShotTask pseudo = task;
    pseudo.unseen.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(held));
    pseudo.seen.assign(order.begin() + static_cast<std::ptrdiff_t>(held), order.end());
    std::sort(pseudo.unseen.begin(), pseudo.unseen.end());
    std::sort(pseudo.seen.begin(), pseudo.seen.end());
    const auto keep =
        torch::isin(y_train, torch::tensor(pseudo.seen, torch::kInt64)).nonzero().squeeze(1);
    const auto scores =
        method_scores(pseudo, text, x_train.index_select(0, keep), y_train.index_select(0, keep),
                      logvar_train.defined() ? logvar_train.index_select(0, keep) : torch::Tensor(),
                      x_validation, validation.mu.at("image"), o);
    for (const auto& [method, s] : scores) {
      // Only the classes of this split compete: the real unseen classes have no items here.
      auto classes = pseudo.seen;
      classes.insert(classes.end(), pseudo.unseen.begin(), pseudo.unseen.end());
      auto masked = torch::full_like(s, -INFINITY, torch::kFloat64);
      const auto cols = torch::tensor(classes, torch::kInt64);
      masked.index_copy_(1, cols, s.to(torch::kFloat64).index_select(1, cols));
      out[method].push_back({masked, validation.labels, pseudo.unseen, pseudo.seen});
    }
  }
  return out;
}

// Candidate gammas: 0 and the quantiles of (best seen score - best unseen score) per item.
std::vector<double> calibration_candidates(const std::vector<CalibrationSplit>& splits) {
  std::vector<double> candidates{0.0};
  for (const auto& sp : splits) {
    const auto s = sp.scores;
    const auto best_seen = s.index_select(1, torch::tensor(sp.seen, torch::kInt64)).amax(1);
    const auto best_unseen = s.index_select(1, torch::tensor(sp.unseen, torch::kInt64)).amax(1);
    const auto gap = (best_seen - best_unseen).contiguous();
    const auto q = torch::quantile(gap, torch::linspace(0.0, 1.0, 41, torch::kFloat64));
    // Just above each quantile: an item switches to its best unseen class once gamma exceeds
    // its gap, so gamma = gap itself would leave it where it was.
    for (std::int64_t i = 0; i < q.numel(); ++i) candidates.push_back(q[i].item<double>() + 1e-9);
  }
  return candidates;
}

}  // namespace

nlohmann::json zero_shot_report(LoadedRun& run, const ZeroShotTask& task, const Embeddings& train,
                                const Embeddings& test, const ZeroShotOptions& o,
                                std::map<std::string, torch::Tensor>* confusions,
                                const Embeddings* validation) {
  torch::NoGradGuard no_grad;
  const std::string image = "image";
  MMKT_CHECK_INPUT(o.features == "latent" || o.features == "encoder", "zero-shot features '",
                   o.features, "' (expected latent or encoder)");
  const bool latent = o.features == "latent";
  const auto& source_train = latent ? train.mu : train.features;
  const auto& source_test = latent ? test.mu : test.features;
  MMKT_CHECK_INPUT(source_train.count(image) && source_test.count(image),
                   "zero-shot needs the image modality's ", o.features, " embeddings");
  const auto classes = task.class_attributes.size(0);
  auto [xtr, ytr] = first_rows(source_train.at(image), train.labels, o.max_train);
  // The generated classifier draws seen latents from q(z|image): it needs the log-variances.
  torch::Tensor logvar_tr;
  if (latent && train.logvar.count(image))
    logvar_tr = train.logvar.at(image).narrow(0, 0, xtr.size(0));
  const auto xte = source_test.at(image);
  const auto yte = test.labels;
  nlohmann::json report{
      {"features", o.features}, {"train_items", xtr.size(0)}, {"test_items", xte.size(0)}};
  for (const auto c : task.unseen)
    report["unseen"].push_back(task.class_names[static_cast<std::size_t>(c)]);
  MMKT_CHECK_INPUT(!torch::isin(ytr, torch::tensor(task.unseen, torch::kInt64)).any().item<bool>(),
                   "zero-shot: the training embeddings contain unseen classes");

  auto record = [&](const std::string& name, const torch::Tensor& scores) {
    const auto m = zero_shot_metrics(scores, yte, task.unseen, task.seen);
    report[name] = metrics_json(m);
    if (confusions) (*confusions)[name] = confusion(m, task.unseen, classes);
    log::info("zero-shot ", name, ": ZSL ", m.zsl, ", GZSL u ", m.u, " s ", m.s, " H ", m.h);
  };
  std::optional<ClassTextLatents> text;
  if (run.model->has_modality("text") && run.data.tokenizer) text = class_text_latents(run, task);
  const auto* text_latents = text ? &*text : nullptr;
  const auto scores =
      method_scores(task, text_latents, xtr, ytr, logvar_tr, xte, test.mu.at(image), o);
  for (const auto& [method, s] : scores) record(method, s);
  if (report.contains("text")) {
    report["text"]["score"] = o.score;
    report["text"]["descriptions_per_class"] = task.descriptions.front().size();
  }
  if (report.contains("generated")) report["generated"]["per_class"] = o.generated_per_class;

  // Calibrated stacking, gamma chosen on pseudo-GZSL splits of the validation data.
  if (validation && validation->labels.defined() && validation->labels.numel() > 0) {
    const auto& source_validation = latent ? validation->mu : validation->features;
    MMKT_CHECK_INPUT(source_validation.count(image), "zero-shot calibration needs validation ",
                     o.features, " embeddings of the image modality");
    const auto splits = calibration_splits(task, text_latents, xtr, ytr, logvar_tr, *validation,
                                           source_validation.at(image), o);
    for (const auto& [method, method_splits] : splits) {
      const double gamma = best_calibration(method_splits, calibration_candidates(method_splits));
      const auto m = zero_shot_metrics(calibrated_scores(scores.at(method), task.seen, gamma), yte,
                                       task.unseen, task.seen);
      report[method + "+cs"] = metrics_json(m);
      report[method + "+cs"]["gamma"] = gamma;
      log::info("zero-shot ", method, "+cs (gamma ", gamma, " from ", method_splits.size(),
                " validation splits): GZSL u ", m.u, " s ", m.s, " H ", m.h);
    }
    report["calibration"] = {{"validation_items", validation->labels.size(0)},
                             {"folds", o.calibration_folds}};
  }
  return report;
}

std::string zero_shot_markdown(const nlohmann::json& report) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(3);
  out << "| method | features | ZSL acc. (unseen) | GZSL u | GZSL s | GZSL H |\n"
      << "| --- | --- | ---: | ---: | ---: | ---: |\n";
  for (const std::string base : {"dap", "iap", "text", "generated"}) {
    for (const auto& m : std::vector<std::string>{base, base + "+cs"}) {
      if (!report.contains(m)) continue;
      const auto& r = report[m];
      std::string features = report["features"].get<std::string>();
      if (base == "text") features = "latent, " + report["text"]["score"].get<std::string>();
      if (base == "generated") features = "latent, softmax";
      if (r.contains("gamma")) {
        std::ostringstream g;
        g << std::setprecision(3) << r["gamma"].get<double>();
        features += ", gamma " + g.str();
      }
      out << "| " << m << " | " << features << " | " << r["zsl"].get<double>() << " | "
          << r["u"].get<double>() << " | " << r["s"].get<double>() << " | " << r["H"].get<double>()
          << " |\n";
    }
  }
  return out.str();
}

}  // namespace mmkt::eval
