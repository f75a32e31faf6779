// Retrieval metrics on rankings worked by hand.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mmkt/eval/embed.h"
#include "mmkt/eval/retrieval.h"

using namespace mmkt;

namespace {
// 1-D embeddings: the query at 0 ranks the database by |x|.
torch::Tensor col(std::vector<float> v) { return torch::tensor(v).unsqueeze(1); }
}  // namespace

TEST(Retrieval, AveragePrecisionOnAHandWorkedRanking) {
  // Ranking 0.1, 0.2, 0.3, 0.4, 0.5 with labels 0 1 0 1 1; the query's class is 0:
  // relevant at ranks 1 and 3 -> AP = (1/1 + 2/3) / 2 = 5/6.
  eval::RetrievalOptions o;
  o.ks = {1, 2, 5};
  const auto r = eval::retrieve(col({0.0f}), torch::tensor({0}, torch::kInt64),
                                col({0.1f, 0.2f, 0.3f, 0.4f, 0.5f}),
                                torch::tensor({0, 1, 0, 1, 1}, torch::kInt64), o);
  EXPECT_NEAR(r.map, 5.0 / 6.0, 1e-9);
  EXPECT_NEAR(r.precision_at.at(1), 1.0, 1e-9);
  EXPECT_NEAR(r.precision_at.at(2), 0.5, 1e-9);
  EXPECT_NEAR(r.precision_at.at(5), 0.4, 1e-9);
  EXPECT_NEAR(r.recall_at.at(1), 1.0, 1e-9);
  EXPECT_EQ(r.median_rank, 1.0);
  EXPECT_NEAR(r.random_precision_at.at(5), 0.4, 1e-9);
}

TEST(Retrieval, TwoQueriesAndAQueryWithoutRelevantItems) {
  // Query A (class 1): relevant at ranks 2 and 5 -> (1/2 + 2/5) / 2 = 0.45.
  // Query B (class 7): nothing relevant -> AP 0. mAP = 0.225.
  eval::RetrievalOptions o;
  o.ks = {1};
  const auto r = eval::retrieve(col({0.0f, 0.0f}), torch::tensor({1, 7}, torch::kInt64),
                                col({0.1f, 0.2f, 0.3f, 0.4f, 0.5f}),
                                torch::tensor({0, 1, 0, 0, 1}, torch::kInt64), o);
  EXPECT_NEAR(r.map, 0.225, 1e-9);
  EXPECT_NEAR(r.recall_at.at(1), 0.0, 1e-9);
  EXPECT_EQ(r.median_rank, 2.0);  // only query A has a relevant item; its first is at rank 2
}

TEST(Retrieval, InstanceLevelAndExcludeSelf) {
  // queries q_i and items x_i: x_0 is nearest to q_0; q_1's pair x_1 ranks second.
  const auto q = col({0.0f, 1.0f, 5.0f});
  const auto x = col({0.1f, 1.6f, 5.0f});
  eval::RetrievalOptions o;
  o.relevance = "instance";
  o.ks = {1, 2};
  // q_1 = 1.0: distances 0.9 (x_0), 0.6 (x_1) -> x_1 first. All pairs first: R@1 = 1.
  auto r = eval::retrieve(q, {}, x, {}, o);
  EXPECT_NEAR(r.recall_at.at(1), 1.0, 1e-9);
  EXPECT_NEAR(r.map, 1.0, 1e-9);
  const auto q2 = col({0.0f, 0.2f, 5.0f});  // q_1 = 0.2: x_0 (0.1) before x_1 (1.4)
  r = eval::retrieve(q2, {}, x, {}, o);
  EXPECT_NEAR(r.recall_at.at(1), 2.0 / 3.0, 1e-9);
  EXPECT_NEAR(r.map, (1.0 + 0.5 + 1.0) / 3.0, 1e-9);
  EXPECT_EQ(r.median_rank, 1.0);
  // Same modality, class relevance, the query itself removed: labels 0 0 1.
  eval::RetrievalOptions s;
  s.exclude_self = true;
  s.ks = {1};
  const auto same = eval::retrieve(x, torch::tensor({0, 0, 1}, torch::kInt64), x,
                                   torch::tensor({0, 0, 1}, torch::kInt64), s);
  // item 0: ranking x_1, x_2 -> AP 1; item 1: x_0 first -> 1; item 2: no other class-1 item -> 0.
  EXPECT_NEAR(same.map, 2.0 / 3.0, 1e-9);
  EXPECT_EQ(same.database, 2);
}

TEST(Retrieval, CosineIgnoresScale) {
  const auto q = torch::tensor({{1.0f, 0.0f}});
  const auto x = torch::tensor({{10.0f, 1.0f}, {0.5f, 0.5f}});
  const auto labels = torch::tensor({0, 1}, torch::kInt64);
  eval::RetrievalOptions o;
  o.ks = {1};
  o.score = "cosine";
  EXPECT_NEAR(eval::retrieve(q, torch::tensor({0}, torch::kInt64), x, labels, o).map, 1.0, 1e-9);
  o.score = "euclidean";  // (0.5, 0.5) is nearer in distance
  EXPECT_NEAR(eval::retrieve(q, torch::tensor({0}, torch::kInt64), x, labels, o).map, 0.5, 1e-9);
}

TEST(Retrieval, RandomBaselines) {
  // one relevant among n: E[AP] = H_n / n
  EXPECT_NEAR(eval::random_average_precision(3, 1), (1.0 + 0.5 + 1.0 / 3.0) / 3.0, 1e-12);
  EXPECT_NEAR(eval::random_average_precision(7, 7), 1.0, 1e-12);
  EXPECT_NEAR(eval::random_average_precision(5, 0), 0.0, 1e-12);
  // n = 2, r = 1: orders (rel, not) AP 1 and (not, rel) AP 1/2 -> 0.75
  EXPECT_NEAR(eval::random_average_precision(2, 1), 0.75, 1e-12);
  // Random ranking on 10 balanced classes: mAP about 0.10
  torch::manual_seed(0);
  const auto emb = torch::randn({1000, 8});
  const auto labels = torch::arange(1000, torch::kInt64) % 10;
  eval::RetrievalOptions o;
  o.exclude_self = true;
  const auto r = eval::retrieve(emb, labels, emb, labels, o);
  EXPECT_NEAR(r.map, 0.10, 0.01);
  EXPECT_NEAR(r.random_map, 0.10, 0.01);
}

TEST(Retrieval, SeenAndUnseenQueryGroupsAgainstTheWholeDatabase) {
  // Three queries at 0 over the database 0.1 .. 0.5 with labels 0 1 0 2 2:
  //   class 0: relevant at ranks 1, 3 -> AP (1 + 2/3) / 2 = 5/6, P@1 = 1
  //   class 1: relevant at rank 2     -> AP 1/2,                P@1 = 0
  //   class 2: relevant at ranks 4, 5 -> AP (1/4 + 2/5) / 2 = 0.325, P@1 = 0
  // Class 2 unseen: seen mAP = (5/6 + 1/2) / 2 = 2/3, unseen mAP = 0.325.
  eval::RetrievalOptions o;
  o.ks = {1, 5};
  const auto labels = torch::tensor({0, 1, 2}, torch::kInt64);
  const auto unseen = labels.eq(2);
  o.query_groups = {{"seen", unseen.logical_not()}, {"unseen", unseen}};
  const auto r =
      eval::retrieve(col({0.0f, 0.0f, 0.0f}), labels, col({0.1f, 0.2f, 0.3f, 0.4f, 0.5f}),
                     torch::tensor({0, 1, 0, 2, 2}, torch::kInt64), o);
  EXPECT_NEAR(r.map, (5.0 / 6.0 + 0.5 + 0.325) / 3.0, 1e-9);
  ASSERT_EQ(r.groups.size(), 2u);
  const auto& seen = r.groups.at("seen");
  const auto& unseen_figures = r.groups.at("unseen");
  EXPECT_EQ(seen.queries, 2);
  EXPECT_EQ(unseen_figures.queries, 1);
  EXPECT_NEAR(seen.map, 2.0 / 3.0, 1e-9);
  EXPECT_NEAR(unseen_figures.map, 0.325, 1e-9);
  EXPECT_NEAR(seen.precision_at.at(1), 0.5, 1e-9);
  EXPECT_NEAR(unseen_figures.precision_at.at(1), 0.0, 1e-9);
  EXPECT_NEAR(unseen_figures.precision_at.at(5), 0.4, 1e-9);
  EXPECT_NEAR(unseen_figures.recall_at.at(5), 1.0, 1e-9);
  // Random baselines per group: E[AP] for N = 5 with R relevant items; E[P@5] = R / N.
  EXPECT_NEAR(seen.random_map,
              (eval::random_average_precision(5, 2) + eval::random_average_precision(5, 1)) / 2,
              1e-12);
  EXPECT_NEAR(unseen_figures.random_map, eval::random_average_precision(5, 2), 1e-12);
  EXPECT_NEAR(seen.random_precision_at.at(5), (0.4 + 0.2) / 2, 1e-12);
  // E[R@1] = R / N per query: seen (2/5 + 1/5) / 2, unseen 2/5; all queries (2+1+2)/15.
  EXPECT_NEAR(seen.random_recall_at.at(1), 0.3, 1e-12);
  EXPECT_NEAR(unseen_figures.random_recall_at.at(1), 0.4, 1e-12);
  EXPECT_NEAR(r.random_recall_at.at(1), 1.0 / 3.0, 1e-12);
  const auto j = r.to_json();
  EXPECT_NEAR(j["groups"]["unseen"]["mAP"].get<double>(), 0.325, 1e-9);
  EXPECT_EQ(j["groups"]["seen"]["queries"].get<std::int64_t>(), 2);
  // A mask of the wrong length is a programming error, caught with its shape.
  o.query_groups = {{"seen", torch::ones({2}, torch::kBool)}};
  EXPECT_ANY_THROW(eval::retrieve(col({0.0f, 0.0f, 0.0f}), labels,
                                  col({0.1f, 0.2f, 0.3f, 0.4f, 0.5f}),
                                  torch::tensor({0, 1, 0, 2, 2}, torch::kInt64), o));
}

TEST(Retrieval, SeenQueriesOverTheSeenDatabaseShowWhatUnseenItemsCost) {
  // Items 0..3 with labels 0 0 1 2, class 2 unseen; 1-D means, Euclidean scores.
  // Images 0, 1, 5, 0.5 (the unseen image lands between the two class-0 images); texts 0, 1, 5, 9.
  //   text 0 (class 0): images by distance 0 (rel), 0.5 (unseen), 1 (rel), 5 -> AP (1 + 2/3) / 2
  //   text 1 (class 0): images 1 (rel), 0.5 (unseen), 0 (rel), 5       -> AP 5/6
  //   text 5 (class 1): image 5 first                                   -> AP 1
  // seen-class mAP = (5/6 + 5/6 + 1) / 3 = 8/9; without the unseen image every AP is 1.
  eval::Embeddings e;
  e.labels = torch::tensor({0, 0, 1, 2}, torch::kInt64);
  e.mu["image"] = col({0.0f, 1.0f, 5.0f, 0.5f});
  e.mu["text"] = col({0.0f, 1.0f, 5.0f, 9.0f});
  const auto report = eval::retrieval_report(e, "image", "text", {2});
  const auto& t2i = report["text->image"]["euclidean"];
  EXPECT_NEAR(t2i["groups"]["seen"]["mAP"].get<double>(), 8.0 / 9.0, 1e-9);
  EXPECT_NEAR(t2i["seen_database"]["mAP"].get<double>(), 1.0, 1e-9);
  EXPECT_EQ(t2i["seen_database"]["queries"].get<std::int64_t>(), 3);
  EXPECT_EQ(t2i["seen_database"]["database"].get<std::int64_t>(), 3);
  // Without unseen classes there is no such figure.
  EXPECT_FALSE(eval::retrieval_report(e, "image", "text")["text->image"]["euclidean"].contains(
      "seen_database"));
}
