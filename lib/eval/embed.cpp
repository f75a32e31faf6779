#include "mmkt/eval/embed.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

#include "mmkt/core/error.h"
#include "mmkt/data/batcher.h"
#include "mmkt/eval/retrieval.h"

namespace mmkt::eval {

Embeddings embed_dataset(LoadedRun& run, const data::DatasetPtr& dataset,
                         const torch::Device& device, const EmbedOptions& options) {
  torch::NoGradGuard no_grad;
  run.model->eval();
  auto o = batcher_options(run, BatchPurpose::kEvaluation);
  std::vector<models::ModalityConfig> modalities;
  for (const auto& m : run.modalities) {
    if (options.modalities.empty() ||
        std::find(options.modalities.begin(), options.modalities.end(), m.name) !=
            options.modalities.end()) {
      modalities.push_back(m);
    }
  }
  if (std::none_of(modalities.begin(), modalities.end(),
                   [](const auto& m) { return m.kind == models::ModalityKind::kText; })) {
    o.tokenizer = nullptr;  // no tokenisation when no text is embedded
  }
  data::Batcher batcher(data::head(dataset, options.max_items), o);
  batcher.start_epoch(0);
  std::map<std::string, std::vector<torch::Tensor>> mus, logvars, features;
  std::vector<torch::Tensor> labels;
  while (auto batch = batcher.next()) {
    const auto inputs = inputs_from_batch(*batch, modalities, device);
    for (const auto& [name, input] : inputs) {
      if (options.features)
        features[name].push_back(run.model->unimodal_features(name, input).cpu());
      const auto q = run.model->encode(name, input);
      mus[name].push_back(q.mu.cpu());
      logvars[name].push_back(q.logvar.cpu());
    }
    labels.push_back(batch->labels);
  }
  Embeddings e;
  for (auto& [name, list] : mus) e.mu[name] = torch::cat(list);
  for (auto& [name, list] : logvars) e.logvar[name] = torch::cat(list);
  for (auto& [name, list] : features) e.features[name] = torch::cat(list);
  e.labels = torch::cat(labels);
  return e;
}

std::map<std::string, torch::Tensor> seen_unseen_groups(const torch::Tensor& labels,
                                                        const std::vector<std::int64_t>& unseen) {
  if (unseen.empty()) return {};
  const auto is_unseen =
      torch::isin(labels.to(torch::kInt64), torch::tensor(unseen, torch::kInt64));
  const auto count = is_unseen.sum().item<std::int64_t>();
  if (count == 0 || count == labels.size(0)) return {};
  return {{"seen", is_unseen.logical_not()}, {"unseen", is_unseen}};
}

namespace {

struct RetrievalTask {
  std::string query, database;  // modalities; the same one: the query item is left out
};

// Each task by Euclidean and cosine score, class-level relevance, with seen/unseen query groups;
// cross-modal tasks also rank the paired item from the same scores.
nlohmann::json retrieval_tasks(const Embeddings& e, const std::vector<RetrievalTask>& tasks,
                               const std::vector<std::int64_t>& unseen) {
  const auto groups = seen_unseen_groups(e.labels, unseen);
  nlohmann::json report;
  for (const auto& t : tasks) {
    const bool same = t.query == t.database;
    for (const std::string score : {"euclidean", "cosine"}) {
      RetrievalOptions o;
      o.score = score;
      o.exclude_self = same;
      o.paired = !same;
      o.query_groups = groups;
      const auto r = retrieve(e.mu.at(t.query), e.labels, e.mu.at(t.database), e.labels, o);
      auto cls = r.to_json();
      if (groups.count("seen")) {
        // Seen-class queries over the seen-class items alone: what the "seen" group would read
        // if no never-seen item were in the database. The gap between the two is the cost of
        // unseen items landing among the seen ones.
        const auto rows = groups.at("seen").nonzero().squeeze(1);
        RetrievalOptions so = o;
        so.query_groups.clear();
        const auto seen_only =
            retrieve(e.mu.at(t.query).index_select(0, rows), e.labels.index_select(0, rows),
                     e.mu.at(t.database).index_select(0, rows), e.labels.index_select(0, rows), so);
        cls["seen_database"] = {{"mAP", seen_only.map},
                                {"random_mAP", seen_only.random_map},
                                {"queries", seen_only.queries},
                                {"database", seen_only.database}};
      }
      if (!same) {
        cls["instance"] = {{"R@1", r.pair_recall_at.at(1)},
                           {"R@5", r.pair_recall_at.at(5)},
                           {"R@10", r.pair_recall_at.at(10)},
                           {"median_rank", r.pair_median_rank},
                           {"random_R@10", r.random_pair_recall_at.at(10)}};
      }
      report[t.query + "->" + t.database][score] = cls;
    }
  }
  return report;
}

}  // namespace

nlohmann::json image_retrieval_report(const Embeddings& e, const std::string& image,
                                      const std::vector<std::int64_t>& unseen) {
  return retrieval_tasks(e, {{image, image}}, unseen);
}

nlohmann::json retrieval_report(const Embeddings& e, const std::string& image,
                                const std::string& text, const std::vector<std::int64_t>& unseen) {
  MMKT_CHECK_INPUT(e.mu.count(image) && e.mu.count(text), "retrieval needs modalities '", image,
                   "' and '", text, "'");
  return retrieval_tasks(e, {{text, image}, {image, text}, {image, image}}, unseen);
}

std::string retrieval_markdown(const nlohmann::json& report) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(3);
  out << "| task | score | mAP | random mAP | P@10 | P@100 | R@1 (pair) | R@10 (pair) | median "
         "rank (pair) |\n"
      << "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
  for (const auto& [task, by_score] : report.items()) {
    for (const auto& [score, r] : by_score.items()) {
      out << "| " << task << " | " << score << " | " << r["mAP"].get<double>() << " | "
          << r["random_mAP"].get<double>() << " | " << r["P@10"].get<double>() << " | "
          << r["P@100"].get<double>() << " | ";
      if (r.contains("instance")) {
        out << r["instance"]["R@1"].get<double>() << " | " << r["instance"]["R@10"].get<double>()
            << " | " << r["instance"]["median_rank"].get<double>() << " |\n";
      } else {
        out << "- | - | - |\n";
      }
    }
  }
  bool grouped = false;
  for (const auto& [task, by_score] : report.items()) {
    for (const auto& [score, r] : by_score.items()) grouped = grouped || r.contains("groups");
  }
  if (!grouped) return out.str();
  // Seen- and unseen-class queries apart: each against the whole database (all classes).
  out << "\nBy query class (seen: classes in training; unseen: held out for zero-shot; every "
         "query ranks the whole database):\n\n"
      << "| task | score | mAP all | mAP seen | mAP unseen | random mAP seen / unseen | mAP seen, "
         "seen-only database | P@10 all | P@10 seen | P@10 unseen | P@100 all | P@100 seen | "
         "P@100 unseen |\n"
      << "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
         "|\n";
  for (const auto& [task, by_score] : report.items()) {
    for (const auto& [score, r] : by_score.items()) {
      if (!r.contains("groups")) continue;
      const auto& seen = r["groups"]["seen"];
      const auto& unseen = r["groups"]["unseen"];
      out << "| " << task << " | " << score << " | " << r["mAP"].get<double>() << " | "
          << seen["mAP"].get<double>() << " | " << unseen["mAP"].get<double>() << " | "
          << seen["random_mAP"].get<double>() << " / " << unseen["random_mAP"].get<double>()
          << " | ";
      if (r.contains("seen_database")) {
        out << r["seen_database"]["mAP"].get<double>();
      } else {
        out << "-";
      }
      for (const std::string k : {"P@10", "P@100"}) {
        out << " | " << r[k].get<double>() << " | " << seen[k].get<double>() << " | "
            << unseen[k].get<double>();
      }
      out << " |\n";
    }
  }
  return out.str();
}

}  // namespace mmkt::eval
