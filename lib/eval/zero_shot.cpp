#include "eval/zero_shot.h"

#include <iomanip>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "data/batcher.h"
#include "data/class_attributes.h"
#include "data/shapes.h"
#include "eval/linear.h"
#include "eval/pictures.h"

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
    sum += static_cast<double>(p.masked_select(mask).eq(c).sum().item<std::int64_t>()) / static_cast<double>(n);
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

std::optional<ZeroShotTask> zero_shot_task(const train::LoadedRun& run) {
  ZeroShotTask task;
  const auto& d = run.config.data;
  if (d.dataset == "shapes") {
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
  for (std::int64_t c = 0; c < ca.num_classes(); ++c) {
    if (std::find(task.unseen.begin(), task.unseen.end(), c) == task.unseen.end()) task.seen.push_back(c);
  }
  const data::CaptionGrammar grammar(ca);
  task.descriptions.resize(static_cast<std::size_t>(ca.num_classes()));
  for (std::int64_t c = 0; c < ca.num_classes(); ++c) {
    for (std::uint64_t k = 0; k < 16; ++k) {
      task.descriptions[static_cast<std::size_t>(c)].push_back(grammar.description(c, 1000 + k));
    }
  }
  return task;
}

namespace {

// Rows of `e` (the first max_train) and their labels.
std::pair<torch::Tensor, torch::Tensor> first_rows(const torch::Tensor& x, const torch::Tensor& labels,
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

// The ZSL confusion matrix over the unseen classes, rows and columns in `unseen` order.
torch::Tensor confusion(const ZeroShotMetrics& m, const std::vector<std::int64_t>& unseen,
                        std::int64_t num_classes) {
  const auto u = static_cast<std::int64_t>(unseen.size());
  const auto position = positions_within(unseen, num_classes);
  return confusion_matrix(position.index_select(0, m.zsl_truth), position.index_select(0, m.zsl_predicted), u, u);
}

}  // namespace

torch::Tensor text_class_prototypes(train::LoadedRun& run, const ZeroShotTask& task) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> prototypes;
  const auto device = run.model->parameters().front().device();
  for (const auto& descriptions : task.descriptions) {
    std::vector<std::vector<std::int64_t>> ids;
    for (const auto& d : descriptions) ids.push_back(run.data.tokenizer->encode_with_bos_eos(d));
    auto [tokens, lengths] = data::pad_tokens(ids, run.config.data.max_tokens);
    const auto q = run.model->encode("text", models::ModalityInput{tokens.to(device), lengths.to(device)});
    prototypes.push_back(q.mu.mean(0).cpu());
  }
  return torch::stack(prototypes);
}

nlohmann::json zero_shot_report(train::LoadedRun& run, const ZeroShotTask& task,
                                const Embeddings& train, const Embeddings& test,
                                const ZeroShotOptions& o,
                                std::map<std::string, torch::Tensor>* confusions) {
  torch::NoGradGuard no_grad;
  const std::string image = "image";
  const auto& source_train = o.features == "encoder" ? train.features : train.mu;
  const auto& source_test = o.features == "encoder" ? test.features : test.mu;
  MMKT_CHECK_INPUT(o.features == "latent" || o.features == "encoder", "zero-shot features '",
                   o.features, "' (expected latent or encoder)");
  MMKT_CHECK_INPUT(source_train.count(image) && source_test.count(image),
                   "zero-shot needs the image modality's ", o.features, " embeddings");
  const auto a = task.class_attributes.to(torch::kFloat32);
  auto [xtr, ytr] = first_rows(source_train.at(image), train.labels, o.max_train);
  const auto xte = source_test.at(image);
  const auto yte = test.labels;
  nlohmann::json report{{"features", o.features},
                        {"train_items", xtr.size(0)},
                        {"test_items", xte.size(0)}};
  for (const auto c : task.unseen) report["unseen"].push_back(task.class_names[static_cast<std::size_t>(c)]);
  MMKT_CHECK_INPUT(!torch::isin(ytr, torch::tensor(task.unseen, torch::kInt64)).any().item<bool>(),
                   "zero-shot: the training embeddings contain unseen classes");

  const auto prior = attribute_prior(a, task.seen);
  auto record = [&](const std::string& name, const torch::Tensor& scores) {
    const auto m = zero_shot_metrics(scores, yte, task.unseen, task.seen);
    report[name] = metrics_json(m);
    if (confusions) (*confusions)[name] = confusion(m, task.unseen, a.size(0));
    log::info("zero-shot ", name, ": ZSL ", m.zsl, ", GZSL u ", m.u, " s ", m.s, " H ", m.h);
  };

  // DAP: one logistic regression per attribute, on seen-class items labelled with their class's
  // attributes.
  {
    const auto targets = a.index_select(0, ytr);
    const auto clf = fit_sigmoid(xtr, targets);
    record("dap", dap_log_scores(clf.probabilities(xte), a, prior));
  }
  // IAP: a softmax over the seen classes, then attribute probabilities through A.
  {
    const auto seen_t = torch::tensor(task.seen, torch::kInt64);
    const auto clf = fit_softmax(xtr, positions_within(task.seen, a.size(0)).index_select(0, ytr),
                                 static_cast<std::int64_t>(task.seen.size()));
    const auto p = iap_attribute_probs(clf.probabilities(xte), a.index_select(0, seen_t));
    record("iap", dap_log_scores(p, a, prior));
  }
  // Text: the mean latent of each class's descriptions under q(z|text).
  if (run.model->has_modality("text") && run.data.tokenizer) {
    const auto protos = text_class_prototypes(run, task);  // [C,D]
    auto z = test.mu.at(image);
    torch::Tensor scores;
    if (o.score == "cosine") {
      namespace F = torch::nn::functional;
      scores = torch::mm(F::normalize(z, F::NormalizeFuncOptions().dim(1)),
                         F::normalize(protos, F::NormalizeFuncOptions().dim(1)).t());
    } else {
      scores = -torch::cdist(z, protos);
    }
    record("text", scores);
    report["text"]["score"] = o.score;
    report["text"]["descriptions_per_class"] = task.descriptions.front().size();
  }
  return report;
}

std::string zero_shot_markdown(const nlohmann::json& report) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(3);
  out << "| method | features | ZSL acc. (unseen) | GZSL u | GZSL s | GZSL H |\n"
      << "| --- | --- | ---: | ---: | ---: | ---: |\n";
  for (const std::string m : {"dap", "iap", "text"}) {
    if (!report.contains(m)) continue;
    const auto& r = report[m];
    out << "| " << m << " | " << (m == "text" ? "latent, " + r["score"].get<std::string>() : report["features"].get<std::string>())
        << " | " << r["zsl"].get<double>() << " | " << r["u"].get<double>() << " | "
        << r["s"].get<double>() << " | " << r["H"].get<double>() << " |\n";
  }
  return out.str();
}

}  // namespace mmkt::eval
