#include "mmkt/distill/student_report.h"

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <sstream>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/eval/report.h"
#include "mmkt/run/run_data.h"

namespace mmkt::distill {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::int64_t teacher_unimodal_parameters(LoadedRun& run, const std::string& modality) {
  // The unimodal path q_t(z|m): modules "enc_<m>" and "enc_<m>_head" (multimodal_vae.cpp).
  std::int64_t n = 0;
  for (const auto& item : run.model->named_parameters()) {
    const auto& key = item.key();
    if (key.rfind("enc_" + modality + ".", 0) == 0 ||
        key.rfind("enc_" + modality + "_head.", 0) == 0) {
      n += item.value().numel();
    }
  }
  return n;
}

std::string other_modality(const LoadedRun& run, const std::string& modality) {
  for (const auto& m : run.modalities) {
    if (m.name != modality &&
        (m.kind == models::ModalityKind::kText || m.kind == models::ModalityKind::kImage))
      return m.name;
  }
  return "";
}
}  // namespace

Embedder teacher_embedder(LoadedRun& run, const std::string& modality) {
  Embedder e;
  e.name = "teacher";
  e.modality = modality;
  auto model = run.model;
  e.encode = [model, modality](const models::ModalityInput& x) mutable {
    return model->encode(modality, x);
  };
  e.parameters = teacher_unimodal_parameters(run, modality);
  return e;
}

Embedder student_embedder(Student& student, const std::string& name) {
  Embedder e;
  e.name = name;
  e.modality = student->spec().modality.name;
  auto s = student;
  e.encode = [s](const models::ModalityInput& x) mutable { return s->encode(x); };
  e.parameters = student->parameter_count();
  return e;
}

EvaluationData evaluation_data(LoadedRun& run, const std::string& modality,
                               const StudentEvalOptions& o, const torch::Device& device) {
  EvaluationData d;
  d.teacher_test = eval::embed_dataset(run, run.data.test, device);
  d.test = collect_inputs(run, run.data.test, modality, 0, false);
  if (o.retrieval && run.data.validation && run.data.validation->size() > 0) {
    d.teacher_validation = eval::embed_dataset(run, run.data.validation, device);
    d.validation = collect_inputs(run, run.data.validation, modality, 0, false);
  }
  if (o.zeroshot) d.task = eval::zero_shot_task(run);
  if (o.zeroshot && d.task && modality == "image") {
    d.train_seen = collect_inputs(run, run.data.train, modality, o.zero_shot.max_train, false);
  }
  if (o.probe && modality == "image") {
    d.probe_train = collect_inputs(run, evaluator_training_set(run.config, o.probe_items), modality,
                                   o.probe_items, false);
  }
  return d;
}

torch::Tensor embed_means(const Embedder& embedder, const InputBatches& inputs,
                          const torch::Device& device) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> mu;
  for (const auto& b : inputs.batches) mu.push_back(embedder.encode(b.to(device)).mu.cpu());
  return torch::cat(mu);
}

double throughput(const Embedder& embedder, const InputBatches& inputs, const StudentEvalOptions& o,
                  const torch::Device& device) {
  torch::NoGradGuard no_grad;
  const auto all = concat_inputs(inputs.batches);
  const auto n = std::min<std::int64_t>(o.throughput_items, all.data.size(0));
  std::vector<models::ModalityInput> batches;
  for (std::int64_t s = 0; s < n; s += o.throughput_batch) {
    const auto rows = torch::arange(s, std::min(n, s + o.throughput_batch), torch::kInt64);
    batches.push_back(select_rows(all, rows).to(device));
  }
  auto pass = [&] {
    const auto t = Clock::now();
    for (const auto& b : batches) {
      auto q = embedder.encode(b);
      if (q.mu.device().is_cuda()) q.mu.cpu();  // waits for the device
    }
    return since(t);
  };
  pass();  // warm-up (allocator, BLAS threads)
  // Each measurement repeats whole passes for at least 0.25 s: a single pass of a small
  // student lasts a few milliseconds, where timer and scheduler noise would dominate.
  std::vector<double> rates;
  for (int r = 0; r < std::max(1, o.throughput_repeats); ++r) {
    double seconds = 0;
    std::int64_t items = 0;
    while (seconds < 0.25) {
      seconds += pass();
      items += n;
    }
    rates.push_back(static_cast<double>(items) / seconds);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

nlohmann::json evaluate_embedder(LoadedRun& run, const Embedder& embedder, const EvaluationData& d,
                                 const StudentEvalOptions& o, const torch::Device& device) {
  const auto start = Clock::now();
  const std::string m = embedder.modality;
  const std::string other = other_modality(run, m);
  nlohmann::json r{{"name", embedder.name}, {"modality", m}, {"parameters", embedder.parameters}};
  r["images_per_second"] = throughput(embedder, d.test, o, device);
  eval::Embeddings test;
  test.labels = d.test.labels;
  test.mu[m] = embed_means(embedder, d.test, device);
  if (o.retrieval && !other.empty()) {
    test.mu[other] = d.teacher_test.mu.at(other);  // the teacher's embeddings of the other modality
    const std::string image = m == "image" ? m : other, text = m == "image" ? other : m;
    r["retrieval"] = eval::retrieval_report(test, image, text, run.data.unseen_classes);
    if (m != "image") r["retrieval"].erase(image + "->" + image);  // the teacher's alone
    if (!d.validation.batches.empty()) {
      eval::Embeddings val;
      val.labels = d.validation.labels;
      val.mu[m] = embed_means(embedder, d.validation, device);
      val.mu[other] = d.teacher_validation.mu.at(other);
      auto& v = r["validation"]["retrieval"];
      v = eval::retrieval_report(val, image, text, run.data.unseen_classes);
      if (m != "image") v.erase(image + "->" + image);
    }
  }
  if (o.probe && m == "image" && !d.probe_train.batches.empty()) {
    eval::Embeddings train;
    train.labels = d.probe_train.labels;
    train.mu[m] = embed_means(embedder, d.probe_train, device);
    std::int64_t classes = test.labels.max().item<std::int64_t>() + 1;
    if (run.data.class_attributes)
      classes = std::max(classes, run.data.class_attributes->num_classes());
    r["probe"] = eval::probe_report(train, test, classes);
  }
  if (o.zeroshot && d.task && m == "image" && !d.train_seen.batches.empty()) {
    eval::Embeddings train;
    train.labels = d.train_seen.labels;
    train.mu[m] = embed_means(embedder, d.train_seen, device);
    r["zeroshot"] = eval::zero_shot_report(run, *d.task, train, test, o.zero_shot);
  }
  r["seconds"] = since(start);
  log::info("evaluated ", embedder.name, " in ", r["seconds"].get<double>(), " s");
  return r;
}

namespace {
std::string fmt(double v, int digits = 3) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}
std::string at_path(const nlohmann::json& j, const std::vector<std::string>& path, int digits = 3) {
  const nlohmann::json* p = &j;
  for (const auto& k : path) {
    if (!p->is_object() || !p->contains(k)) return "-";
    p = &(*p)[k];
  }
  return p->is_number() ? fmt(p->get<double>(), digits) : "-";
}
// "all / seen / unseen" for a retrieval figure with query groups, the figure alone otherwise.
std::string by_group(const nlohmann::json& r, const std::string& task, const std::string& score,
                     const std::string& figure) {
  const auto all = at_path(r, {"retrieval", task, score, figure});
  const auto seen = at_path(r, {"retrieval", task, score, "groups", "seen", figure});
  if (seen == "-") return all;
  return all + " / " + seen + " / " +
         at_path(r, {"retrieval", task, score, "groups", "unseen", figure});
}
}  // namespace

std::string comparison_markdown(const std::vector<nlohmann::json>& rows) {
  MMKT_CHECK_INPUT(!rows.empty(), "no results to tabulate");
  std::ostringstream out;
  // Retrieval cells hold "all / seen / unseen" queries when the teacher held classes out.
  out << "| model | params | % teacher | images/s | speed-up | i->i mAP euc | i->i mAP cos | "
         "i->i P@100 cos | i->t mAP cos | t->i mAP cos | ZSL DAP | ZSL IAP | ZSL text | probe |\n"
      << "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
         "---: | ---: |\n";
  for (const auto& r : rows) {
    const double params = r.at("parameters").get<double>();
    const double rate = r.at("images_per_second").get<double>();
    const double tp = r.value("teacher_parameters", params);
    const double tr = r.value("teacher_images_per_second", rate);
    const std::string label = r.value("label", r.at("name").get<std::string>());
    out << "| " << label << " | " << static_cast<std::int64_t>(params) << " | "
        << fmt(100.0 * params / tp, 1) << " | " << fmt(rate, 0) << " | " << fmt(rate / tr, 1)
        << "x | " << by_group(r, "image->image", "euclidean", "mAP") << " | "
        << by_group(r, "image->image", "cosine", "mAP") << " | "
        << by_group(r, "image->image", "cosine", "P@100") << " | "
        << by_group(r, "image->text", "cosine", "mAP") << " | "
        << by_group(r, "text->image", "cosine", "mAP") << " | "
        << at_path(r, {"zeroshot", "dap", "zsl"}) << " | " << at_path(r, {"zeroshot", "iap", "zsl"})
        << " | " << at_path(r, {"zeroshot", "text", "zsl"}) << " | "
        << at_path(r, {"probe", "accuracy"}) << " |\n";
  }
  return out.str();
}

}  // namespace mmkt::distill
