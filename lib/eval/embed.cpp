#include "eval/embed.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

#include "core/error.h"
#include "data/batcher.h"
#include "eval/retrieval.h"

namespace mmkt::eval {

Embeddings embed_dataset(train::LoadedRun& run, const data::DatasetPtr& dataset,
                         const torch::Device& device, const EmbedOptions& options) {
  torch::NoGradGuard no_grad;
  run.model->eval();
  data::BatcherOptions o;
  o.batch_size = run.config.train.eval_batch_size;
  o.shuffle = false;
  o.tokenizer = run.data.tokenizer;
  o.max_tokens = run.config.data.max_tokens;
  std::vector<models::ModalityConfig> modalities;
  for (const auto& m : run.modalities) {
    if (options.modalities.empty() ||
        std::find(options.modalities.begin(), options.modalities.end(), m.name) != options.modalities.end()) {
      modalities.push_back(m);
    }
  }
  if (std::none_of(modalities.begin(), modalities.end(), [](const auto& m) { return m.kind == "text"; })) {
    o.tokenizer = nullptr;  // no tokenisation when no text is embedded
  }
  data::Batcher batcher(data::head(dataset, options.max_items), o);
  batcher.start_epoch(0);
  std::map<std::string, std::vector<torch::Tensor>> mus, logvars, features;
  std::vector<torch::Tensor> labels;
  while (auto batch = batcher.next()) {
    const auto inputs = train::inputs_from_batch(*batch, modalities, device);
    for (const auto& [name, input] : inputs) {
      if (options.features) features[name].push_back(run.model->unimodal_features(name, input).cpu());
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

nlohmann::json retrieval_report(const Embeddings& e, const std::string& image,
                                const std::string& text) {
  MMKT_CHECK_INPUT(e.mu.count(image) && e.mu.count(text), "retrieval needs modalities '", image,
                   "' and '", text, "'");
  nlohmann::json report;
  struct Task {
    std::string name, query, database;
    bool same;
  };
  const std::vector<Task> tasks = {{text + "->" + image, text, image, false},
                                   {image + "->" + text, image, text, false},
                                   {image + "->" + image, image, image, true}};
  for (const auto& t : tasks) {
    for (const std::string score : {"euclidean", "cosine"}) {
      RetrievalOptions o;
      o.score = score;
      o.exclude_self = t.same;
      o.paired = !t.same;  // the paired item's rank comes from the same scores
      const auto r = retrieve(e.mu.at(t.query), e.labels, e.mu.at(t.database), e.labels, o);
      auto cls = r.to_json();
      if (!t.same) {
        cls["instance"] = {{"R@1", r.pair_recall_at.at(1)}, {"R@5", r.pair_recall_at.at(5)},
                           {"R@10", r.pair_recall_at.at(10)}, {"median_rank", r.pair_median_rank},
                           {"random_R@10", r.random_pair_recall_at.at(10)}};
      }
      report[t.name][score] = cls;
    }
  }
  return report;
}

std::string retrieval_markdown(const nlohmann::json& report) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(3);
  out << "| task | score | mAP | random mAP | P@10 | P@100 | R@1 (pair) | R@10 (pair) | median rank (pair) |\n"
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
  return out.str();
}

}  // namespace mmkt::eval
