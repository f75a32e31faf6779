// The shared hierarchical prior across domains (transfer/hierarchical_prior.h, Finkel and
// Manning 2009): theta* and the penalty on a hand-worked case, the joint MAP of a two-domain
// linear-Gaussian model against its closed form (and its pooled and separate limits), and
// the hbda experiment (transfer/hbda.h) run end to end, deterministic, with its config errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "mmkt/core/error.h"
#include "mmkt/core/runtime.h"
#include "mmkt/data/labelled_images.h"
#include "mmkt/io/files.h"
#include "mmkt/io/json_config.h"
#include "mmkt/transfer/hbda.h"
#include "mmkt/transfer/hierarchical_prior.h"

using namespace mmkt;
using namespace mmkt::transfer;

namespace {

torch::Tensor scalar_param(double v) {
  return torch::tensor({v}, torch::kFloat64).requires_grad_(true);
}

}  // namespace

// theta_1 = 1, theta_2 = 3, lambda = (1, 3), lambda_top = 4:
//   theta* = (1*1 + 3*3) / (1 + 3 + 4) = 1.25
//   penalty = 1/2 (1 - 1.25)^2 + 3/2 (3 - 1.25)^2 + 4/2 1.25^2 = 0.03125 + 4.59375 + 3.125 = 7.75
TEST(HierarchicalPrior, TopAndPenaltyByHand) {
  auto a = scalar_param(1), b = scalar_param(3);
  HierarchicalPrior prior({{a}, {b}}, {1.0, 3.0}, 4.0);
  EXPECT_NEAR(prior.top()[0].item<double>(), 1.25, 1e-12);
  EXPECT_NEAR(prior.domain_penalty(0).item<double>(), 0.03125, 1e-12);
  EXPECT_NEAR(prior.penalty().item<double>(), 7.75, 1e-12);
  // d/dtheta_2 of the penalty with theta* fixed: lambda_2 (theta_2 - theta*) = 3 * 1.75.
  prior.penalty().backward();
  EXPECT_NEAR(b.grad().item<double>(), 5.25, 1e-12);
  EXPECT_NEAR(a.grad().item<double>(), -0.25, 1e-12);
  EXPECT_FALSE(prior.top()[0].requires_grad());
  // Without a top-level precision theta* is the precision-weighted mean: (1 + 9) / 4.
  HierarchicalPrior flat({{a}, {b}}, {1.0, 3.0}, 0.0);
  EXPECT_NEAR(flat.top()[0].item<double>(), 2.5, 1e-12);
  // update_top follows the domains' parameters.
  {
    torch::NoGradGuard no_grad;
    a.fill_(5.0);
  }
  flat.update_top();
  EXPECT_NEAR(flat.top()[0].item<double>(), (5.0 + 9.0) / 4.0, 1e-12);
}

TEST(HierarchicalPrior, RefusesMismatchedDomains) {
  auto a = torch::zeros({2, 3}), b = torch::zeros({3, 2}), c = torch::zeros({2, 3});
  EXPECT_THROW(HierarchicalPrior({{a}, {b}}, {1.0, 1.0}, 1.0), InputError);
  EXPECT_THROW(HierarchicalPrior({{a}, {c, c}}, {1.0, 1.0}, 1.0), InputError);
  EXPECT_THROW(HierarchicalPrior({{a}, {c}}, {1.0}, 1.0), InputError);
  EXPECT_THROW(HierarchicalPrior({{a}, {c}}, {1.0, 0.0}, 1.0), InputError);
  EXPECT_THROW(HierarchicalPrior({{a}, {c}}, {1.0, 1.0}, -1.0), InputError);
  EXPECT_THROW(HierarchicalPrior({}, {}, 1.0), InputError);
}

namespace {

// Two domains of linear regression y = X w_d + N(0, s^2) with w_d drawn around a shared w.
struct LinearDomains {
  std::vector<torch::Tensor> x, y;
  double noise_var = 0.25;
};

LinearDomains linear_domains() {
  torch::manual_seed(11);
  LinearDomains d;
  const auto shared = torch::tensor({1.0, -2.0, 0.5}, torch::kFloat64);
  const std::vector<std::int64_t> sizes = {40, 6};  // a large and a small domain
  for (auto n : sizes) {
    const auto w = shared + 0.3 * torch::randn({3}, torch::kFloat64);
    const auto x = torch::randn({n, 3}, torch::kFloat64);
    d.x.push_back(x);
    d.y.push_back(x.matmul(w) + 0.5 * torch::randn({n}, torch::kFloat64));
  }
  return d;
}

// The joint MAP (w_1, w_2, w*) from the normal equations of
//   J = sum_d ||y_d - X_d w_d||^2 / (2 s^2) + lambda_d/2 ||w_d - w*||^2 + lambda_top/2 ||w*||^2:
//   [X_1'X_1/s^2 + l_1 I   0                    -l_1 I              ] [w_1]   [X_1'y_1/s^2]
//   [0                     X_2'X_2/s^2 + l_2 I  -l_2 I              ] [w_2] = [X_2'y_2/s^2]
//   [-l_1 I                -l_2 I               (l_1 + l_2 + l_top) I] [w* ]   [0          ]
std::vector<torch::Tensor> closed_form(const LinearDomains& d, double l1, double l2, double top) {
  const auto eye = torch::eye(3, torch::kFloat64);
  auto a = torch::zeros({9, 9}, torch::kFloat64);
  auto rhs = torch::zeros({9}, torch::kFloat64);
  const double l[2] = {l1, l2};
  for (int k = 0; k < 2; ++k) {
    a.narrow(0, 3 * k, 3)
        .narrow(1, 3 * k, 3)
        .copy_(d.x[k].t().matmul(d.x[k]) / d.noise_var + l[k] * eye);
    a.narrow(0, 3 * k, 3).narrow(1, 6, 3).copy_(-l[k] * eye);
    a.narrow(0, 6, 3).narrow(1, 3 * k, 3).copy_(-l[k] * eye);
    rhs.narrow(0, 3 * k, 3).copy_(d.x[k].t().matmul(d.y[k]) / d.noise_var);
  }
  a.narrow(0, 6, 3).narrow(1, 6, 3).copy_((l1 + l2 + top) * eye);
  const auto w = torch::linalg_solve(a, rhs.unsqueeze(1)).squeeze(1);
  return {w.narrow(0, 0, 3), w.narrow(0, 3, 3), w.narrow(0, 6, 3)};
}

// The same MAP found the way the hbda experiment finds it: theta* by update_top() and the
// domains' parameters by a gradient method (L-BFGS here) on data terms + penalty().
std::vector<torch::Tensor> fitted(const LinearDomains& d, double l1, double l2, double top) {
  auto w1 = torch::zeros({3}, torch::kFloat64).requires_grad_(true);
  auto w2 = torch::zeros({3}, torch::kFloat64).requires_grad_(true);
  HierarchicalPrior prior({{w1}, {w2}}, {l1, l2}, top);
  torch::optim::LBFGS optimizer(std::vector<torch::Tensor>{w1, w2},
                                torch::optim::LBFGSOptions(1)
                                    .max_iter(500)
                                    .tolerance_grad(1e-12)
                                    .tolerance_change(1e-14)
                                    .line_search_fn("strong_wolfe"));
  auto closure = [&] {
    optimizer.zero_grad();
    prior.update_top();
    auto loss = prior.penalty();
    const torch::Tensor w[2] = {w1, w2};
    for (int k = 0; k < 2; ++k) {
      loss = loss + (d.y[k] - d.x[k].matmul(w[k])).pow(2).sum() / (2 * d.noise_var);
    }
    loss.backward();
    return loss;
  };
  for (int i = 0; i < 5; ++i) optimizer.step(closure);
  prior.update_top();
  return {w1.detach(), w2.detach(), prior.top()[0].clone()};
}

torch::Tensor least_squares(const torch::Tensor& x, const torch::Tensor& y) {
  return torch::linalg_solve(x.t().matmul(x), x.t().matmul(y).unsqueeze(1)).squeeze(1);
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, double tol) {
  EXPECT_LT((a - b).abs().max().item<double>(), tol) << a << "\nvs\n" << b;
}

}  // namespace

TEST(HierarchicalPrior, LinearGaussianMapMatchesClosedForm) {
  const auto d = linear_domains();
  for (const auto& [l1, l2, top] : std::vector<std::tuple<double, double, double>>{
           {1.0, 1.0, 0.1}, {0.5, 20.0, 2.0}, {50.0, 3.0, 0.0}}) {
    const auto want = closed_form(d, l1, l2, top);
    const auto got = fitted(d, l1, l2, top);
    for (int k = 0; k < 3; ++k) expect_close(got[k], want[k], 1e-6);
  }
  // The small domain's estimate lies between its own least squares and the large domain's.
  const auto w = closed_form(d, 1.0, 1.0, 0.0);
  const auto own = least_squares(d.x[1], d.y[1]);
  const auto large = least_squares(d.x[0], d.y[0]);
  EXPECT_LT((w[1] - large).norm().item<double>(), (own - large).norm().item<double>());
}

TEST(HierarchicalPrior, LimitsArePooledAndSeparate) {
  const auto d = linear_domains();
  // lambda_d -> infinity: one model on the pooled data, ridge with lambda_top.
  const double top = 0.5;
  const auto x = torch::cat({d.x[0], d.x[1]});
  const auto y = torch::cat({d.y[0], d.y[1]});
  const auto ridge =
      torch::linalg_solve(x.t().matmul(x) / d.noise_var + top * torch::eye(3, torch::kFloat64),
                          (x.t().matmul(y) / d.noise_var).unsqueeze(1))
          .squeeze(1);
  const auto tied = fitted(d, 1e7, 1e7, top);
  expect_close(tied[0], ridge, 1e-4);
  expect_close(tied[1], ridge, 1e-4);
  // lambda_d -> 0: each domain its own least squares.
  const auto apart = fitted(d, 1e-8, 1e-8, top);
  for (int k = 0; k < 2; ++k) {
    const auto ls = least_squares(d.x[k], d.y[k]);
    expect_close(apart[k], ls, 1e-4);
  }
}

TEST(Hbda, ConfigErrorsNameTheKey) {
  const nlohmann::json ok = hbda_options_to_json({});
  EXPECT_NO_THROW(hbda_options_from_json(ok, "x.json"));
  auto expect_error = [](const nlohmann::json& j, const std::string& words) {
    try {
      hbda_options_from_json(j, "x.json");
      ADD_FAILURE() << "accepted " << j.dump();
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  expect_error({{"stepz", 3}}, "stepz");
  expect_error({{"targets", {"rotate:3"}}}, "rotate:3");
  expect_error({{"targets", {"rotation:1,2"}}}, "rotation:1,2");
  expect_error({{"methods", {"magic"}}}, "magic");
  expect_error({{"steps", 0}}, "positive");
  expect_error({{"domain_precision", {10, -1}}}, "domain_precision");
  expect_error({{"dataset", "cifar"}}, "cifar");
  expect_error({{"target_per_class", {"ten"}}}, "target_per_class");
  expect_error({{"dataset", "shapes:6"}}, "shapes:6");
  // A shapes source takes shapes levels as targets, and only those.
  expect_error({{"dataset", "shapes:2"}}, "rotation:3");
  expect_error({{"targets", {"shapes:4"}}}, "shapes:4");
  EXPECT_NO_THROW(
      hbda_options_from_json({{"dataset", "shapes:2"}, {"targets", {"shapes:4"}}}, "x.json"));
}

namespace {

bool fashion_available() {
  return io::file_exists(data::default_data_root("fashion-mnist") + "/t10k-images-idx3-ubyte.gz");
}

HbdaOptions tiny(const std::string& out) {
  HbdaOptions o;
  o.student = "mlp:32";
  o.latent_dim = 8;
  o.source_per_class = 30;
  o.targets = {"rotation:3", "noise:4"};
  o.target_per_class = {5};
  o.validation_per_class = 5;
  o.test_items = 300;
  o.seeds = {0};
  o.steps = 40;
  o.batch_size = 32;
  o.eval_every = 20;
  o.domain_precision = {10, 1000};
  o.out_dir = out;
  o.progress_seconds = 1e9;
  return o;
}

}  // namespace

TEST(Hbda, TinyExperimentEndToEndAndDeterministic) {
  if (!fashion_available()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const auto root = std::filesystem::temp_directory_path() / "mmkt_test_hbda";
  std::filesystem::remove_all(root);
  RuntimeOptions ro;
  ro.threads = 1;
  ro.log_level = "warn";
  const Runtime rt = init_runtime(ro);
  const auto a = run_hbda(tiny((root / "a").string()), rt);
  const auto b = run_hbda(tiny((root / "b").string()), rt);
  // 6 methods x 2 targets, every test accuracy a share of 300 items.
  ASSERT_EQ(a["rows"].size(), 12u);
  for (const auto& r : a["rows"]) {
    const double t = r["test"].get<double>();
    EXPECT_GE(t, 0.0);
    EXPECT_LE(t, 1.0);
    EXPECT_NEAR(t * 300, std::round(t * 300), 1e-6) << r.dump();
    EXPECT_EQ(r["best_step"].get<std::int64_t>() % 20, 0);
  }
  EXPECT_EQ(a["hbda_grid"].size(), 2u);
  EXPECT_EQ(a["rows"], b["rows"]);  // same seed, same numbers
  EXPECT_EQ(a["hbda_grid"], b["hbda_grid"]);
  // The chosen lambda_d is the grid's best by validation accuracy.
  const auto& g = a["hbda_grid"];
  const double chosen = g[0]["validation"].get<double>() >= g[1]["validation"].get<double>()
                            ? g[0]["lambda"].get<double>()
                            : g[1]["lambda"].get<double>();
  for (const auto& r : a["rows"]) {
    if (r["method"] == "hbda") {
      EXPECT_EQ(r["lambda"].get<double>(), chosen);
    }
  }
  // Fine-tuning starts from the pooled model's final state and is judged at its step 0 too, so
  // its best validation accuracy is at least the pooled model's last one (from log.jsonl).
  std::map<std::string, double> pooled_last;
  std::istringstream log(io::read_file((root / "a" / "log.jsonl").string()));
  for (std::string line; std::getline(log, line);) {
    const auto row = nlohmann::json::parse(line);
    if (row["method"] == "pooled" && row["step"] == 40) {
      for (const auto& [k, v] : row["validation"].items()) pooled_last[k] = v.get<double>();
    }
  }
  ASSERT_EQ(pooled_last.size(), 2u);
  // hbda-domain: each target's lambda_d is the grid's best on that target's validation items
  // (best over the steps of the shared-lambda run; the grid's first lambda wins ties).
  std::map<std::string, std::map<double, double>> per_domain;  // domain -> lambda -> best
  std::istringstream log2(io::read_file((root / "a" / "log.jsonl").string()));
  for (std::string line; std::getline(log2, line);) {
    const auto row = nlohmann::json::parse(line);
    if (row["method"] != "hbda") continue;
    for (const auto& [k, v] : row["validation"].items()) {
      auto& best = per_domain[k.substr(std::string("hbda / ").size())][row["lambda"].get<double>()];
      best = std::max(best, v.get<double>());
    }
  }
  int checked = 0;
  for (const auto& r : a["rows"]) {
    if (r["method"] != "hbda-domain") continue;
    const auto& grid = per_domain.at(r["domain"].get<std::string>());
    double want = 0, best = -1;
    for (double lambda : {10.0, 1000.0}) {
      if (grid.at(lambda) > best) {
        best = grid.at(lambda);
        want = lambda;
      }
    }
    EXPECT_EQ(r["lambda"].get<double>(), want) << r.dump();
    ++checked;
  }
  EXPECT_EQ(checked, 2);
  for (const auto& r : a["rows"]) {
    if (r["method"] != "finetune") continue;
    const auto key = "pooled / " + r["domain"].get<std::string>();
    EXPECT_GE(r["validation"].get<double>(), pooled_last.at(key));
  }
  const std::string md = io::read_file((root / "a" / "result.md").string());
  EXPECT_NE(md.find("| 5 | hbda |"), std::string::npos) << md;
  EXPECT_NE(md.find("rotation:3"), std::string::npos);
  EXPECT_TRUE(io::file_exists((root / "a" / "log.jsonl").string()));
  std::filesystem::remove_all(root);
}

// Shapes levels as domains: the shape is the label at every level, each level its own draw.
// Needs no installed data.
TEST(Hbda, TinyShapesLevelsAsDomains) {
  const auto root = std::filesystem::temp_directory_path() / "mmkt_test_hbda_shapes";
  std::filesystem::remove_all(root);
  auto o = tiny(root.string());
  o.dataset = "shapes:1";
  o.targets = {"shapes:3", "shapes:4"};
  o.shapes_image_size = 16;
  o.shapes_train_items = 300;
  o.source_per_class = 20;
  o.validation_per_class = 3;
  o.test_items = 50;
  o.steps = 10;
  o.eval_every = 5;
  o.batch_size = 16;
  RuntimeOptions ro;
  ro.threads = 1;
  ro.log_level = "warn";
  const auto result = run_hbda(o, init_runtime(ro));
  ASSERT_EQ(result["rows"].size(), 12u);  // 6 methods x 2 targets
  std::set<std::string> domains;
  for (const auto& r : result["rows"]) {
    domains.insert(r["domain"].get<std::string>());
    const double t = r["test"].get<double>();
    EXPECT_NEAR(t * 50, std::round(t * 50), 1e-6) << r.dump();
  }
  EXPECT_EQ(domains, (std::set<std::string>{"shapes:3", "shapes:4"}));
  // Asking for more items per class than a level's draw holds is refused, naming the level.
  o.source_per_class = 200;
  try {
    run_hbda(o, init_runtime(ro));
    ADD_FAILURE() << "accepted 200 source items per class out of 300 items";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("shapes:1"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(root);
}
