#include "mmkt/eval/retrieval.h"

#include <algorithm>
#include <cmath>

#include "mmkt/core/error.h"

namespace mmkt::eval {

nlohmann::json RetrievalResult::to_json() const {
  nlohmann::json j{{"score", score},
                   {"relevance", relevance},
                   {"queries", queries},
                   {"database", database},
                   {"mAP", map},
                   {"random_mAP", random_map},
                   {"median_rank", median_rank}};
  for (const auto& [k, v] : precision_at) j["P@" + std::to_string(k)] = v;
  for (const auto& [k, v] : random_precision_at) j["random_P@" + std::to_string(k)] = v;
  for (const auto& [k, v] : recall_at) j["R@" + std::to_string(k)] = v;
  for (const auto& [k, v] : random_recall_at) j["random_R@" + std::to_string(k)] = v;
  if (!pair_recall_at.empty()) {
    auto& p = j["instance"];
    for (const auto& [k, v] : pair_recall_at) p["R@" + std::to_string(k)] = v;
    for (const auto& [k, v] : random_pair_recall_at) p["random_R@" + std::to_string(k)] = v;
    p["median_rank"] = pair_median_rank;
  }
  for (const auto& [name, g] : groups) j["groups"][name] = g.to_json();
  return j;
}

nlohmann::json QueryGroupFigures::to_json() const {
  nlohmann::json j{{"queries", queries}, {"mAP", map}, {"random_mAP", random_map}};
  for (const auto& [k, v] : precision_at) j["P@" + std::to_string(k)] = v;
  for (const auto& [k, v] : random_precision_at) j["random_P@" + std::to_string(k)] = v;
  for (const auto& [k, v] : recall_at) j["R@" + std::to_string(k)] = v;
  for (const auto& [k, v] : random_recall_at) j["random_R@" + std::to_string(k)] = v;
  return j;
}

double random_average_precision(std::int64_t n, std::int64_t r) {
  // E[AP] = (1/R) sum_k E[rel_k * P@k] = (1/N) sum_{k=1}^{N} [ (R-1)(k-1)/(N-1) + 1 ] / k
  // (rel_k = 1 with probability R/N; given that, the other k-1 slots hold (R-1)/(N-1) relevant
  // items in expectation).
  if (n <= 0 || r <= 0) return 0.0;
  if (n == 1) return 1.0;
  double sum = 0;
  for (std::int64_t k = 1; k <= n; ++k) {
    sum += (static_cast<double>(r - 1) * static_cast<double>(k - 1) / static_cast<double>(n - 1) +
            1.0) /
           static_cast<double>(k);
  }
  return sum / static_cast<double>(n);
}

namespace {

// 1 - C(n-r, k) / C(n, k): probability that a random top k holds a relevant item.
double random_hit(std::int64_t n, std::int64_t r, std::int64_t k) {
  if (r <= 0) return 0.0;
  if (k >= n || n - r < k) return 1.0;
  double miss = 1.0;
  for (std::int64_t i = 0; i < k; ++i) {
    miss *= static_cast<double>(n - r - i) / static_cast<double>(n - i);
  }
  return 1.0 - miss;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const auto h = v.size() / 2;
  return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

}  // namespace

RetrievalResult retrieve(const torch::Tensor& queries, const torch::Tensor& query_labels,
                         const torch::Tensor& database, const torch::Tensor& database_labels,
                         const RetrievalOptions& o) {
  torch::NoGradGuard no_grad;
  MMKT_CHECK_INPUT(o.score == "euclidean" || o.score == "cosine", "retrieval score '", o.score,
                   "' (expected euclidean or cosine)");
  MMKT_CHECK_INPUT(o.relevance == "class" || o.relevance == "instance", "retrieval relevance '",
                   o.relevance, "' (expected class or instance)");
  MMKT_CHECK(queries.dim() == 2 && database.dim() == 2 && queries.size(1) == database.size(1),
             "retrieve: queries [M,D] and database [N,D] needed, got ", queries.sizes(), " and ",
             database.sizes());
  const auto m = queries.size(0);
  const auto n = database.size(0);
  MMKT_CHECK_INPUT(m > 0 && n > 0, "retrieve: empty query set or database");
  const bool instance = o.relevance == "instance";
  MMKT_CHECK((!instance && !o.exclude_self && !o.paired) || m == n,
             "retrieve: instance relevance, paired and exclude_self need as many queries as items");
  if (!instance) {
    MMKT_CHECK(query_labels.defined() && database_labels.defined() && query_labels.size(0) == m &&
                   database_labels.size(0) == n,
               "retrieve: class relevance needs labels for queries and database");
  }
  auto q = queries.to(torch::kFloat32);
  auto x = database.to(torch::kFloat32);
  if (o.score == "cosine") {
    q = torch::nn::functional::normalize(q, torch::nn::functional::NormalizeFuncOptions().dim(1));
    x = torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(1));
  }
  const auto x_sq = x.pow(2).sum(1);
  const auto ql = instance ? torch::Tensor() : query_labels.to(torch::kInt64).to(x.device());
  const auto xl = instance ? torch::Tensor() : database_labels.to(torch::kInt64).to(x.device());
  const auto effective_n = o.exclude_self ? n - 1 : n;

  RetrievalResult r;
  r.score = o.score;
  r.relevance = o.relevance;
  r.queries = m;
  r.database = effective_n;
  // Per-query figures, averaged over all queries and over each query group at the end.
  std::vector<double> ap_of_query, random_ap_of_query;
  std::map<std::int64_t, std::vector<double>> p_of_query, random_p_of_query, hit_of_query,
      random_hit_of_query;
  ap_of_query.reserve(static_cast<std::size_t>(m));
  random_ap_of_query.reserve(static_cast<std::size_t>(m));
  std::map<std::int64_t, double>
      random_ap_of;  // E[AP] depends only on R (N is fixed): O(N) once per R
  std::vector<double> first_ranks, pair_ranks;
  first_ranks.reserve(static_cast<std::size_t>(m));

  for (std::int64_t start = 0; start < m; start += o.chunk) {
    const auto len = std::min(o.chunk, m - start);
    const auto qc = q.narrow(0, start, len);
    // score: cosine similarity, or negative squared distance (same order as distance)
    auto score = o.score == "cosine"
                     ? torch::mm(qc, x.t())
                     : (2 * torch::mm(qc, x.t()) - x_sq.unsqueeze(0) - qc.pow(2).sum(1, true));
    const auto rows = torch::arange(start, start + len,
                                    torch::TensorOptions().dtype(torch::kInt64).device(x.device()));
    torch::Tensor relevant;
    if (instance) {
      relevant =
          torch::zeros({len, n}, torch::TensorOptions().dtype(torch::kBool).device(x.device()));
      relevant.index_put_({torch::arange(len, rows.options()), rows}, true);
    } else {
      relevant = ql.narrow(0, start, len).unsqueeze(1).eq(xl.unsqueeze(0));
    }
    if (o.paired) {
      // Rank of item i for query i: 1 + items scoring higher + equal-scoring items before it
      // (the stable order below). No sort needed.
      const auto own = score.gather(1, rows.unsqueeze(1));
      const auto before = torch::arange(n, rows.options()).unsqueeze(0).lt(rows.unsqueeze(1));
      const auto rank = (score.gt(own) | (score.eq(own) & before)).sum(1) + 1;
      const auto* pr = rank.cpu().data_ptr<std::int64_t>();
      for (std::int64_t i = 0; i < len; ++i) pair_ranks.push_back(static_cast<double>(pr[i]));
    }
    if (o.exclude_self) {
      const auto cols = rows.unsqueeze(1);
      score.scatter_(1, cols, -INFINITY);
      relevant = relevant.scatter(1, cols, false);
    }
    // Rank: descending score; ties broken by database index (stable sort).
    const auto order = std::get<1>(score.sort(/*stable=*/true, /*dim=*/1, /*descending=*/true));
    auto rel = relevant.gather(1, order).narrow(1, 0, effective_n).to(torch::kFloat64).cpu();
    const auto cum = rel.cumsum(1);
    const auto positions = torch::arange(1, effective_n + 1, torch::kFloat64).unsqueeze(0);
    const auto r_q = rel.sum(1);  // relevant items per query
    const auto ap = ((cum / positions) * rel).sum(1) / r_q.clamp_min(1.0);
    const auto ap_c = ap.contiguous();
    const auto* ap_q = ap_c.data_ptr<double>();
    ap_of_query.insert(ap_of_query.end(), ap_q, ap_q + len);
    const auto first = (cum.lt(0.5)).sum(1) + 1;  // 1-based rank of the first relevant item
    const auto* fr = first.data_ptr<std::int64_t>();
    const auto* rq = r_q.data_ptr<double>();
    for (std::int64_t i = 0; i < len; ++i) {
      const auto ri = static_cast<std::int64_t>(rq[i]);
      if (ri > 0) first_ranks.push_back(static_cast<double>(fr[i]));
      auto it = random_ap_of.find(ri);
      if (it == random_ap_of.end())
        it = random_ap_of.emplace(ri, random_average_precision(effective_n, ri)).first;
      random_ap_of_query.push_back(it->second);
      for (const auto k : o.ks) {
        const auto kk = std::min(k, effective_n);
        random_p_of_query[k].push_back(static_cast<double>(ri) / static_cast<double>(effective_n));
        random_hit_of_query[k].push_back(random_hit(effective_n, ri, kk));
      }
    }
    for (const auto k : o.ks) {
      const auto kk = std::min(k, effective_n);
      const auto in_top = cum.select(1, kk - 1).contiguous();
      const auto* top = in_top.data_ptr<double>();
      for (std::int64_t i = 0; i < len; ++i) {
        p_of_query[k].push_back(top[i] / static_cast<double>(kk));
        hit_of_query[k].push_back(top[i] > 0.5 ? 1.0 : 0.0);
      }
    }
  }
  // The mean of per-query values over the queries where `mask` (nullptr: all) is set.
  const auto mean_over = [](const std::vector<double>& values, const bool* mask) {
    double sum = 0;
    std::int64_t count = 0;
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (mask && !mask[i]) continue;
      sum += values[i];
      ++count;
    }
    return count ? sum / static_cast<double>(count) : 0.0;
  };
  const auto figures_over = [&](const bool* mask) {
    QueryGroupFigures g;
    g.map = mean_over(ap_of_query, mask);
    g.random_map = mean_over(random_ap_of_query, mask);
    for (const auto k : o.ks) {
      g.precision_at[k] = mean_over(p_of_query[k], mask);
      g.random_precision_at[k] = mean_over(random_p_of_query[k], mask);
      g.recall_at[k] = mean_over(hit_of_query[k], mask);
      g.random_recall_at[k] = mean_over(random_hit_of_query[k], mask);
    }
    return g;
  };
  const auto all = figures_over(nullptr);
  r.map = all.map;
  r.random_map = all.random_map;
  r.precision_at = all.precision_at;
  r.random_precision_at = all.random_precision_at;
  r.recall_at = all.recall_at;
  r.random_recall_at = all.random_recall_at;
  for (const auto& [name, group] : o.query_groups) {
    MMKT_CHECK(group.dim() == 1 && group.size(0) == m, "retrieve: query group '", name,
               "' needs a [", m, "] mask, got ", group.sizes());
    const auto mask = group.to(torch::kCPU, torch::kBool).contiguous();
    r.groups[name] = figures_over(mask.data_ptr<bool>());
    r.groups[name].queries = mask.sum().item<std::int64_t>();
  }
  r.median_rank = median(first_ranks);
  if (o.paired) {
    for (const auto k : o.ks) {
      const auto kk = static_cast<double>(std::min(k, n));
      r.pair_recall_at[k] = static_cast<double>(std::count_if(pair_ranks.begin(), pair_ranks.end(),
                                                              [&](double x) { return x <= kk; })) /
                            static_cast<double>(m);
      r.random_pair_recall_at[k] = kk / static_cast<double>(n);  // one relevant item of n
    }
    r.pair_median_rank = median(pair_ranks);
  }
  return r;
}

}  // namespace mmkt::eval
