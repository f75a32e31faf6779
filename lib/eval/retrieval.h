// Ranking metrics for cross-modal and same-modality retrieval (conventions of vsepp and
// torchmetrics; definitions below).
//   AP(q)  = (1/R_q) sum over relevant positions k of Precision@k, over the whole ranking;
//            a query with no relevant item scores 0. mAP = mean over queries.
//   P@K    = relevant items in the top K / K.
//   R@K    = share of queries with a relevant item in the top K (instance-level: the paired
//            item; class-level: any item of the query's class).
//   median rank: 1-based rank of the first relevant item, median over queries.
// Random-ranking baselines are reported beside each figure: E[AP] for a random order of N
// items with R relevant ones is computed exactly, E[P@K] = R/N, E[R@K] = 1 - C(N-R,K)/C(N,K).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

namespace mmkt::eval {

struct RetrievalOptions {
  std::string score = "euclidean";  // euclidean (negative distance) | cosine
  std::string relevance = "class";  // class (same label) | instance (query i <-> item i)
  bool exclude_self = false;        // same-modality retrieval: drop item i from query i's list
  std::vector<std::int64_t> ks = {1, 5, 10, 100};
  std::int64_t chunk = 256;  // queries ranked at once (memory: chunk x database)
  // Class relevance with paired rows (query i <-> item i): also the paired item's rank, from
  // the same scores without a second sort (pair_recall_at, pair_median_rank).
  bool paired = false;
  // Figures over subsets of the queries, each ranked against the same whole database: name ->
  // [M] bool mask (e.g. "seen" and "unseen" classes of a zero-shot split, whose queries measure
  // different things: an unseen-class caption names a class the text encoder never saw).
  std::map<std::string, torch::Tensor> query_groups;
};

// mAP, P@K and R@K (with their random baselines) over one group of queries.
struct QueryGroupFigures {
  std::int64_t queries = 0;
  double map = 0, random_map = 0;
  std::map<std::int64_t, double> precision_at, random_precision_at, recall_at, random_recall_at;
  nlohmann::json to_json() const;
};

struct RetrievalResult {
  std::string score, relevance;
  std::int64_t queries = 0, database = 0;
  double map = 0, random_map = 0;
  std::map<std::int64_t, double> precision_at, random_precision_at;
  std::map<std::int64_t, double> recall_at, random_recall_at;
  double median_rank = 0;
  std::map<std::int64_t, double> pair_recall_at, random_pair_recall_at;  // when options.paired
  double pair_median_rank = 0;
  std::map<std::string, QueryGroupFigures> groups;  // options.query_groups
  nlohmann::json to_json() const;
};

// Ranks `database` [N,D] for every row of `queries` [M,D]. Labels [M] / [N] int64 are needed
// for class relevance; instance relevance and exclude_self need M == N.
RetrievalResult retrieve(const torch::Tensor& queries, const torch::Tensor& query_labels,
                         const torch::Tensor& database, const torch::Tensor& database_labels,
                         const RetrievalOptions& options);

// Expected AP of a uniformly random ranking of n items of which r are relevant.
double random_average_precision(std::int64_t n, std::int64_t r);

}  // namespace mmkt::eval
