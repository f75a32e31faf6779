// Evaluation: importance-weighted likelihoods against closed forms, DAP/IAP and ZSL/GZSL on
// examples worked by hand, linear classifiers, caption parsing, paired retrieval ranks, and a
// complete `evaluate_run` on a tiny trained shapes run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "mmkt/core/error.h"
#include "mmkt/core/runtime.h"
#include "mmkt/data/labelled_images.h"
#include "mmkt/eval/coherence.h"
#include "mmkt/eval/likelihood.h"
#include "mmkt/eval/linear.h"
#include "mmkt/eval/report.h"
#include "mmkt/eval/retrieval.h"
#include "mmkt/eval/zero_shot.h"
#include "mmkt/io/files.h"
#include "mmkt/io/npy.h"
#include "mmkt/models/gaussian.h"
#include "mmkt/run/config.h"
#include "mmkt/train/trainer.h"
#include "tiny_runs.h"

using namespace mmkt;
namespace fs = std::filesystem;

namespace {

// Linear-Gaussian model p(z) = N(0, I_2), p(x|z) = N(Wz + b, s^2 I_3), whose marginal is
// p(x) = N(b, W W^T + s^2 I) in closed form. W's columns are orthogonal, so the exact
// posterior is diagonal: Sigma = (I + W^T W / s^2)^-1, mu = Sigma W^T (x - b) / s^2.
struct LinearGaussian {
  torch::Tensor w = torch::tensor({{1.0, 1.0}, {1.0, -1.0}, {0.0, 0.5}}, torch::kFloat64);
  torch::Tensor b = torch::tensor({0.1, -0.2, 0.3}, torch::kFloat64);
  double s = 0.5;
  torch::Tensor x = torch::tensor({0.5, 1.0, -0.3}, torch::kFloat64);

  double log_px() const {
    const auto cov = torch::mm(w, w.t()) + s * s * torch::eye(3, torch::kFloat64);
    const auto d = (x - b).unsqueeze(1);
    const double quad = torch::mm(d.t(), torch::linalg::solve(cov, d, true)).item<double>();
    return -0.5 * (3 * std::log(2 * M_PI) + torch::logdet(cov).item<double>() + quad);
  }
  // log p(x|z) + log p(z) for z [S,B,2] -> [S,B].
  torch::Tensor log_joint(const torch::Tensor& z) const {
    const auto mean = torch::matmul(z, w.t()) + b;  // [S,B,3]
    const auto lpx = (-0.5 * std::log(2 * M_PI * s * s) - (x - mean).pow(2) / (2 * s * s)).sum(-1);
    return lpx + models::standard_normal_log_prob(z);
  }
  models::Gaussian posterior(std::int64_t batch, double variance_factor = 1.0) const {
    const auto prec = torch::ones({2}, torch::kFloat64) + torch::mm(w.t(), w).diagonal() / (s * s);
    const auto var = 1.0 / prec;
    const auto mu = var * torch::mv(w.t(), x - b) / (s * s);
    return {mu.unsqueeze(0).repeat({batch, 1}),
            (var * variance_factor).log().unsqueeze(0).repeat({batch, 1})};
  }
};

}  // namespace

TEST(Likelihood, ExactPosteriorGivesTheExactLogLikelihoodAtAnyK) {
  torch::manual_seed(0);
  const LinearGaussian m;
  const auto est = eval::importance_weighted(
      m.posterior(4), [&](const torch::Tensor& z) { return m.log_joint(z); }, 3, 2);
  ASSERT_EQ(est.size(0), 4);
  for (std::int64_t i = 0; i < 4; ++i) EXPECT_NEAR(est[i].item<double>(), m.log_px(), 1e-9);
}

TEST(Likelihood, KEqualOneIsTheElboAndLargeKApproachesLogPx) {
  torch::manual_seed(1);
  const LinearGaussian m;
  const auto target = [&](const torch::Tensor& z) { return m.log_joint(z); };
  // Proposal = the prior N(0, I): ELBO = E[log p(x|z)] = -3/2 log(2 pi s^2) - (|x-b|^2 + tr W^T W)
  // / (2 s^2).
  const models::Gaussian prior{torch::zeros({20000, 2}, torch::kFloat64),
                               torch::zeros({20000, 2}, torch::kFloat64)};
  const double elbo =
      -1.5 * std::log(2 * M_PI * m.s * m.s) -
      ((m.x - m.b).pow(2).sum().item<double>() + m.w.pow(2).sum().item<double>()) / (2 * m.s * m.s);
  const auto k1 = eval::importance_weighted(prior, target, 1, 1);
  const double se = k1.std().item<double>() / std::sqrt(20000.0);
  EXPECT_NEAR(k1.mean().item<double>(), elbo, 4 * se);
  // A broadened posterior proposal: the estimate rises with K towards log p(x) (from below).
  const auto q = m.posterior(200, 3.0);
  const double lp = m.log_px();
  const double e1 = eval::importance_weighted(q, target, 1, 1).mean().item<double>();
  const double e10 = eval::importance_weighted(q, target, 10, 4).mean().item<double>();
  const double e2000 = eval::importance_weighted(q, target, 2000, 500).mean().item<double>();
  EXPECT_LT(e1, e10);
  EXPECT_LT(e10, e2000 + 1e-3);
  EXPECT_NEAR(e2000, lp, 0.01);
  EXPECT_LT(e1, lp);
}

TEST(ZeroShot, DapOnAThreeClassTwoAttributeExampleWorkedOnPaper) {
  // A = [[1,0],[0,1],[1,1]]; seen {0,1}: prior = (0.5, 0.5); p = (0.9, 0.2).
  // score(c) = sum_m log[A p + (1-A)(1-p)] - log 0.5:
  //   c0: log(0.9 * 0.8 / 0.25) = log 2.88; c1: log(0.1 * 0.2 / 0.25) = log 0.08;
  //   c2: log(0.9 * 0.2 / 0.25) = log 0.72.
  const auto a = torch::tensor({{1.0, 0.0}, {0.0, 1.0}, {1.0, 1.0}});
  const auto prior = eval::attribute_prior(a, {0, 1});
  EXPECT_TRUE(torch::allclose(prior, torch::tensor({0.5, 0.5}, torch::kFloat64)));
  const auto s = eval::dap_log_scores(torch::tensor({{0.9, 0.2}}), a, prior);
  EXPECT_NEAR(s[0][0].item<double>(), std::log(2.88), 1e-6);
  EXPECT_NEAR(s[0][1].item<double>(), std::log(0.08), 1e-6);
  EXPECT_NEAR(s[0][2].item<double>(), std::log(0.72), 1e-6);
  // Seen {0,2}: attribute 0 is on for every seen class -> 0.5; attribute 1 has mean 0.5.
  EXPECT_TRUE(torch::allclose(eval::attribute_prior(a, {0, 2}),
                              torch::tensor({0.5, 0.5}, torch::kFloat64)));
  EXPECT_TRUE(torch::allclose(eval::attribute_prior(a, {0, 1, 2}),
                              torch::tensor({2.0 / 3, 2.0 / 3}, torch::kFloat64)));
  // IAP: p(a|x) = sum_k p(y_k|x) A[y_k]: (0.7, 0.3) over seen rows [[1,0],[0,1]].
  const auto p = eval::iap_attribute_probs(torch::tensor({{0.7, 0.3}}), a.narrow(0, 0, 2));
  EXPECT_TRUE(torch::allclose(p, torch::tensor({{0.7, 0.3}}, torch::kFloat64)));
}

TEST(ZeroShot, ZslAndGzslMetricsOnAHandWorkedExample) {
  // Classes 0..3, unseen {2,3}. Per item: truth, scores, ZSL prediction (among 2,3), GZSL one.
  //   0: [5,0,0,0] ->  -, 0 (right)    1: [0,0,5,1] -> -, 2 (wrong)    2: [0,5,0,0] -> -, 1 (right)
  //   2: [0,0,3,1] ->  2, 2 (right)    2: [9,0,1,2] -> 3, 0 (both wrong)
  //   3: [3,0,1,2] ->  3, 0 (ZSL right, GZSL wrong)
  // ZSL = mean(1/2, 1) = 0.75; u = mean(1/2, 0) = 0.25; s = mean(1/2, 1) = 0.75; H = 0.375.
  const auto scores = torch::tensor({{5., 0., 0., 0.},
                                     {0., 0., 5., 1.},
                                     {0., 5., 0., 0.},
                                     {0., 0., 3., 1.},
                                     {9., 0., 1., 2.},
                                     {3., 0., 1., 2.}});
  const auto truth = torch::tensor({0, 0, 1, 2, 2, 3}, torch::kInt64);
  const auto m = eval::zero_shot_metrics(scores, truth, {2, 3}, {0, 1});
  EXPECT_NEAR(m.zsl, 0.75, 1e-12);
  EXPECT_NEAR(m.u, 0.25, 1e-12);
  EXPECT_NEAR(m.s, 0.75, 1e-12);
  EXPECT_NEAR(m.h, 0.375, 1e-12);
  EXPECT_TRUE(torch::equal(m.zsl_predicted, torch::tensor({2, 3, 3}, torch::kInt64)));
}

TEST(ZeroShot, CalibratedStackingOnTheSameHandWorkedExample) {
  // The example above, seen {0,1}. gamma is subtracted from the seen columns; per item the
  // prediction switches to the best unseen class once gamma exceeds its seen-minus-unseen gap:
  //   gaps 5, -5, 5, -3, 7, 1. For 1 < gamma < 5 the last item (class 3) becomes right and
  //   nothing else changes: s = mean(1/2, 1) = 0.75, u = mean(1/2, 1) = 0.75, H = 0.75.
  //   gamma > 5 loses both seen items that were right: s = 0, H = 0.
  const auto scores = torch::tensor({{5., 0., 0., 0.},
                                     {0., 0., 5., 1.},
                                     {0., 5., 0., 0.},
                                     {0., 0., 3., 1.},
                                     {9., 0., 1., 2.},
                                     {3., 0., 1., 2.}});
  const auto truth = torch::tensor({0, 0, 1, 2, 2, 3}, torch::kInt64);
  const auto shifted = eval::calibrated_scores(scores, {0, 1}, 2.0);
  EXPECT_TRUE(torch::allclose(shifted[5], torch::tensor({1., -2., 1., 2.}, torch::kFloat64)));
  const auto m = eval::zero_shot_metrics(shifted, truth, {2, 3}, {0, 1});
  EXPECT_NEAR(m.u, 0.75, 1e-12);
  EXPECT_NEAR(m.s, 0.75, 1e-12);
  EXPECT_NEAR(m.h, 0.75, 1e-12);
  const std::vector<eval::CalibrationSplit> splits{{scores, truth, {2, 3}, {0, 1}}};
  EXPECT_DOUBLE_EQ(eval::best_calibration(splits, {0.0, 6.0, 2.0}), 2.0);
  EXPECT_DOUBLE_EQ(eval::best_calibration(splits, {3.0, 2.0}), 2.0);  // equal H: the smaller gamma
  EXPECT_DOUBLE_EQ(eval::best_calibration(splits, {0.0, 6.0}), 0.0);  // H 0.375 beats 0
}

TEST(Linear, SoftmaxAndSigmoidFitSeparableData) {
  torch::manual_seed(3);
  // Three well separated blobs in 4-D.
  const auto centres =
      torch::tensor({{4.0, 0.0, 0.0, 0.0}, {0.0, 4.0, 0.0, 0.0}, {0.0, 0.0, 4.0, 0.0}})
          .to(torch::kFloat32);
  const auto y = torch::arange(300, torch::kInt64) % 3;
  const auto x = centres.index_select(0, y) + 0.5 * torch::randn({300, 4});
  const auto clf = eval::fit_softmax(x, y, 3);
  EXPECT_EQ(eval::accuracy(clf.predict(x), y), 1.0);
  EXPECT_TRUE(torch::allclose(clf.probabilities(x).sum(1), torch::ones({300}), 1e-5, 1e-5));
  // Sigmoid targets: "is class 0", "is class 2".
  const auto t = torch::stack({y.eq(0), y.eq(2)}, 1).to(torch::kFloat32);
  const auto sig = eval::fit_sigmoid(x, t);
  EXPECT_TRUE(torch::equal(sig.probabilities(x).gt(0.5).to(torch::kFloat32), t));
  EXPECT_THROW(eval::fit_softmax(x, y, 2), InputError);  // labels outside [0, 2)
}

TEST(Coherence, ClassNamedInACaptionTakesTheLongestWholeWordMatch) {
  const std::vector<std::vector<std::string>> v = {
      {"t-shirt", "tee"}, {"shirt"}, {"ankle boot", "boot"}};
  EXPECT_EQ(eval::class_named_in("a t-shirt with short sleeves", v), 0);
  EXPECT_EQ(eval::class_named_in("a shirt with a collar", v), 1);
  EXPECT_EQ(eval::class_named_in("an ankle boot with a heel", v), 2);
  EXPECT_EQ(eval::class_named_in("boot: worn on the feet", v), 2);
  EXPECT_EQ(eval::class_named_in("a boot and a shirt", v), -1);  // two classes
  EXPECT_EQ(eval::class_named_in("shirts and tees", v), -1);     // "shirts" is not a word match
  EXPECT_EQ(eval::class_named_in("something with sleeves", v), -1);
}

TEST(Coherence, FashionCaptionsParseBackToTheirClass) {
  data::LabelledImagesOptions o;
  o.split = "test";
  const data::LabelledImageDataset ds(o);
  const auto& variants = ds.class_attributes()->class_name_variants;
  for (std::int64_t i = 0; i < 2000; ++i) {
    ASSERT_EQ(eval::class_named_in(ds.caption(i), variants),
              ds.all_labels()[i].item<std::int64_t>())
        << ds.caption(i);
  }
}

TEST(Retrieval, PairedRankComesFromTheSameScores) {
  // 1-D database {0.6, 0.5}: query 0 at 0 ranks item 1 (0.5 away) before its pair item 0
  // (0.6 away): rank 2. Query 1 at 0.45 ranks its pair item 1 (0.05 away) first: rank 1.
  // R@1 = 0.5, R@2 = 1, median rank 1.5.
  eval::RetrievalOptions o;
  o.paired = true;
  o.ks = {1, 2};
  const auto r =
      eval::retrieve(torch::tensor({{0.0f}, {0.45f}}), torch::tensor({0, 1}, torch::kInt64),
                     torch::tensor({{0.6f}, {0.5f}}), torch::tensor({0, 1}, torch::kInt64), o);
  EXPECT_NEAR(r.pair_recall_at.at(1), 0.5, 1e-12);
  EXPECT_NEAR(r.pair_recall_at.at(2), 1.0, 1e-12);
  EXPECT_NEAR(r.pair_median_rank, 1.5, 1e-12);
  EXPECT_NEAR(r.random_pair_recall_at.at(1), 0.5, 1e-12);
}

TEST(Eval, ShiftSpecsParseAndRejectNonsense) {
  const auto s = eval::parse_shift_spec("rotation:1,2.5");
  EXPECT_EQ(s.kind, "rotation");
  EXPECT_EQ(s.severities, (std::vector<double>{1.0, 2.5}));
  EXPECT_THROW(eval::parse_shift_spec("rotation"), InputError);
  EXPECT_THROW(eval::parse_shift_spec("melt:1"), InputError);
  EXPECT_THROW(eval::parse_shift_spec("noise:1,x"), InputError);
  EXPECT_THROW(eval::parse_shift_spec("noise:-1"), InputError);
}

// A tiny shapes level-3 run (red hearts and blue stars held out), trained for a few steps,
// then every evaluation: the wiring, the files, and values in their ranges.
TEST(Eval, EvaluateRunWritesEveryReportAndPicture) {
  const auto base = fs::path(::testing::TempDir()) / "mmkt_eval_run";
  fs::remove_all(base);
  testing_support::train_tiny_shapes_run(base.string(), 5);
  RuntimeOptions ro;
  ro.threads = 2;
  const auto rt = init_runtime(ro);
  auto run = load_run(base.string(), rt.device);

  eval::EvalOptions o;
  o.metrics = {"retrieval", "likelihood", "probe", "zeroshot", "coherence", "pictures"};
  o.likelihood.k = 3;
  o.likelihood.max_items = 20;
  o.likelihood.batch_size = 10;
  o.likelihood.estimates = {"joint", "conditional"};
  o.evaluator.epochs = 1;
  o.evaluator.max_items = 200;
  o.coherence.max_items = 60;
  o.probe_train_items = 200;
  o.shifts = {eval::parse_shift_spec("rotation:0,2"), eval::parse_shift_spec("concept:0.5")};
  const auto out = (base / "eval").string();
  const auto report = eval::evaluate_run(run, o, out, rt.device);

  for (const auto* f : {"report.json", "report.md", "retrieval.json", "evaluator_image.pt",
                        "pictures/reconstructions.png", "pictures/latent_pca.png",
                        "pictures/retrieval_text_to_image.png", "pictures/text_to_image.png",
                        "pictures/image_to_text.png", "pictures/zeroshot_confusion_dap.png"}) {
    EXPECT_TRUE(fs::exists(fs::path(out) / f)) << f;
  }
  const double map = report["retrieval"]["text->image"]["cosine"]["mAP"];
  EXPECT_GT(map, 0.0);
  EXPECT_LE(map, 1.0);
  // Seen- and unseen-class queries apart (the held-out combinations are unseen); together they
  // are all queries, so their query-weighted mean is the overall mAP.
  const auto& groups = report["retrieval"]["text->image"]["cosine"]["groups"];
  const double seen_n = groups["seen"]["queries"].get<double>();
  const double unseen_n = groups["unseen"]["queries"].get<double>();
  EXPECT_GT(unseen_n, 0.0);
  EXPECT_EQ(seen_n + unseen_n,
            report["retrieval"]["text->image"]["cosine"]["queries"].get<double>());
  EXPECT_NEAR((seen_n * groups["seen"]["mAP"].get<double>() +
               unseen_n * groups["unseen"]["mAP"].get<double>()) /
                  (seen_n + unseen_n),
              map, 1e-9);
  EXPECT_NE(io::read_file(out + "/report.md").find("| mAP all | mAP seen | mAP unseen |"),
            std::string::npos);
  const auto& ll = report["likelihood"]["estimates"];
  EXPECT_TRUE(ll.contains("log p(image,text)") && ll.contains("log p(image|text)") &&
              ll.contains("log p(text|image)"));
  EXPECT_LT(ll["log p(image,text)"]["mean"].get<double>(), 0.0);
  for (const std::string m : {"dap", "iap", "text"}) {
    const double z = report["zeroshot"][m]["zsl"];
    EXPECT_GE(z, 0.0);
    EXPECT_LE(z, 1.0);
  }
  EXPECT_EQ(report["zeroshot"]["unseen"].size(), 4u);  // red hearts and blue stars, small and big
  // The CADA-VAE-style classifier and the calibrated-stacking rows (gamma from validation).
  for (const std::string m : {"generated", "dap+cs", "iap+cs", "text+cs", "generated+cs"}) {
    ASSERT_TRUE(report["zeroshot"].contains(m)) << m;
    EXPECT_GE(report["zeroshot"][m]["H"].get<double>(), 0.0);
    EXPECT_LE(report["zeroshot"][m]["H"].get<double>(), 1.0);
  }
  EXPECT_TRUE(std::isfinite(report["zeroshot"]["dap+cs"]["gamma"].get<double>()));
  // Calibration changes GZSL only: ZSL accuracy is the uncalibrated one.
  EXPECT_DOUBLE_EQ(report["zeroshot"]["dap+cs"]["zsl"].get<double>(),
                   report["zeroshot"]["dap"]["zsl"].get<double>());
  const double strict = report["coherence"]["image|text"]["strict"];
  EXPECT_GE(strict, 0.0);
  EXPECT_LE(strict, 1.0);
  EXPECT_EQ(report["coherence"]["image|text"]["groups"].get<std::int64_t>(), 3);
  EXPECT_EQ(report["shift"]["rotation"].size(), 2u);
  // Severity 0 is the clean test set: the same retrieval figure.
  EXPECT_NEAR(report["shift"]["rotation"][0]["mAP text->image"].get<double>(),
              report["retrieval"]["text->image"]["euclidean"]["mAP"].get<double>(), 1e-9);
  // `mmkt embed` writes what embed_dataset computes, as .npy files read back tensor by tensor.
  const auto npy = (base / "npy").string();
  const auto cmd = std::string(MMKT_BINARY) + " --threads 1 --log-level warn embed --run " +
                   base.string() + " --out " + npy + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const auto e = eval::embed_dataset(run, run.data.test, rt.device);
  // (allclose: the binary ran on 1 thread, this test on 2; BLAS sums in another order.)
  EXPECT_TRUE(torch::allclose(io::read_npy(npy + "/mu_image.npy"), e.mu.at("image"), 1e-4, 1e-5));
  EXPECT_TRUE(
      torch::allclose(io::read_npy(npy + "/logvar_text.npy"), e.logvar.at("text"), 1e-4, 1e-5));
  EXPECT_TRUE(torch::equal(io::read_npy(npy + "/labels.npy"), e.labels));
  // A second call with the same recipe reuses the saved evaluator (the file is not rewritten);
  // another recipe retrains it (other weights).
  const auto evaluator = fs::path(out) / "evaluator_image.pt";
  const auto written = fs::last_write_time(evaluator);
  const auto bytes = io::read_file(evaluator.string());
  o.metrics = {"coherence"};
  o.shifts.clear();
  const auto again = eval::evaluate_run(run, o, out, rt.device);
  EXPECT_EQ(fs::last_write_time(evaluator), written);
  EXPECT_EQ(again["coherence"]["evaluator"], report["coherence"]["evaluator"]);
  o.evaluator.epochs = 2;
  eval::evaluate_run(run, o, out, rt.device);
  EXPECT_NE(io::read_file(evaluator.string()), bytes);
}
