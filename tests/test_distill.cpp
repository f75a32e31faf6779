// Distillation: every loss against a hand-worked or closed-form value, the T^2 gradient
// scaling of KD, method and student-spec parsing, a teacher that no distillation step or
// data-free reconstruction changes, checkpoint round trips, and `mmkt distill` end to end on a
// tiny trained shapes run (conv students, the heavy route, data-free, a text student).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "mmkt/core/error.h"
#include "mmkt/core/runtime.h"
#include "mmkt/distill/data_free.h"
#include "mmkt/distill/distiller.h"
#include "mmkt/distill/losses.h"
#include "mmkt/distill/pipeline.h"
#include "mmkt/distill/student.h"
#include "mmkt/distill/transfer_set.h"
#include "mmkt/io/files.h"
#include "mmkt/models/multimodal_vae.h"
#include "mmkt/run/config.h"
#include "mmkt/train/trainer.h"
#include "tiny_runs.h"

using namespace mmkt;
namespace fs = std::filesystem;

namespace {

torch::Tensor rows(std::vector<std::vector<double>> v) {
  std::vector<torch::Tensor> r;
  for (const auto& row : v) r.push_back(torch::tensor(row, torch::kFloat64));
  return torch::stack(r);
}

// A 6x6-image + label JMVAE (random weights).
models::ModelConfig tiny_teacher_config() {
  return testing_support::tiny_image_label_model("jmvae");
}

std::vector<torch::Tensor> copies(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> out;
  for (const auto& p : params) out.push_back(p.detach().clone());
  return out;
}

bool all_equal(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!torch::equal(a[i], b[i])) return false;
  }
  return true;
}

}  // namespace

TEST(DistillLosses, PktOnAHandComputed3x3Example) {
  // Teacher rows (2,0), (0,5), (3,4): cosines 0, 0.6, 0.8 -> K_t = (cos + 1) / 2 =
  //   [[1, .5, .8], [.5, 1, .9], [.8, .9, 1]], row sums 2.3, 2.4, 2.7.
  // Student rows (1,0), (3,4), (0,2): K_s = [[1, .8, .5], [.8, 1, .9], [.5, .9, 1]],
  //   row sums 2.3, 2.7, 2.4.
  // loss = (1/9) sum_ij P_t log(P_t / P_s) (+1e-7 terms) = 0.0114053 (rows normalised first,
  // so the scale of a row does not matter).
  const auto teacher = rows({{2, 0}, {0, 5}, {3, 4}});
  const auto student = rows({{1, 0}, {3, 4}, {0, 2}});
  EXPECT_NEAR(distill::pkt_loss(student, teacher).item<double>(), 0.0114053, 2e-6);
  // Equal similarity structure (a rotation and rescaling of the rows) gives 0.
  const auto rotated = rows({{0, 7}, {-5, 0}, {-4, 3}});
  EXPECT_NEAR(distill::pkt_loss(rotated, teacher).item<double>(), 0.0, 1e-9);
}

TEST(DistillLosses, HintonKdIsZeroForEqualLogitsAndItsGradientScalesAsTSquaredSays) {
  const auto t = torch::tensor({{2.0, -1.0, 0.5}, {0.0, 3.0, -2.0}}, torch::kFloat64);
  EXPECT_NEAR(distill::hinton_kd(t.clone(), t, 4.0).item<double>(), 0.0, 1e-12);
  const auto s0 = torch::tensor({{0.3, 0.1, -0.7}, {1.0, -1.0, 2.0}}, torch::kFloat64);
  for (const double temperature : {1.0, 2.0, 4.0}) {
    auto s = s0.clone().set_requires_grad(true);
    const auto loss = distill::hinton_kd(s, t, temperature);
    loss.backward();
    // d/ds [T^2 KL(p_t || p_s)] = T^2 * (p_s - p_t) / T / B = T (p_s - p_t) / B.
    const auto ps = torch::softmax(s0 / temperature, 1), pt = torch::softmax(t / temperature, 1);
    const auto expected = temperature * (ps - pt) / 2.0;
    EXPECT_TRUE(torch::allclose(s.grad(), expected, 1e-9, 1e-12)) << "T = " << temperature;
    // KL value by hand from the probabilities.
    const auto kl = (pt * (pt.log() - ps.log())).sum(1).mean().item<double>();
    EXPECT_NEAR(loss.item<double>(), temperature * temperature * kl, 1e-12);
  }
}

TEST(DistillLosses, VidIsTheGaussianNegativeLogDensity) {
  // Two dimensions with variances 1 and 4 (softplus(alpha) + 1e-5 = v):
  //   -log N(1 | 0, 1) = 0.5 + 0.5 log 2 pi;  -log N(2 | 0, 4) = 0.5 + 0.5 log 4 + 0.5 log 2 pi.
  auto alpha_for = [](double v) { return std::log(std::exp(v - 1e-5) - 1.0); };
  const auto alpha = torch::tensor({alpha_for(1.0), alpha_for(4.0)}, torch::kFloat64);
  const auto mean = torch::zeros({1, 2}, torch::kFloat64);
  const auto target = torch::tensor({{1.0, 2.0}}, torch::kFloat64);
  const double expected = 1.0 + 0.5 * std::log(4.0) + std::log(2.0 * M_PI);
  EXPECT_NEAR(distill::vid_loss(mean, alpha, target).item<double>(), expected, 1e-9);
  // Batch mean: a second row at the mean costs only the normalisers.
  const auto two = torch::tensor({{1.0, 2.0}, {0.0, 0.0}}, torch::kFloat64);
  const double second = 0.5 * std::log(4.0) + std::log(2.0 * M_PI);
  EXPECT_NEAR(distill::vid_loss(torch::zeros({2, 2}, torch::kFloat64), alpha, two).item<double>(),
              0.5 * (expected + second), 1e-9);
}

TEST(DistillLosses, BayesianKlAgainstTheClosedForm) {
  // KL(N(0,1) || N(1,4)) = log 2 + (1 + 1) / 8 - 0.5; a second dimension with equal Gaussians
  // adds 0; a second row KL(N(1, e^2) || N(1, e^2)) = 0 halves the batch mean.
  const models::Gaussian s{torch::tensor({{0.0, 1.0}, {1.0, 1.0}}, torch::kFloat64),
                           torch::tensor({{0.0, 0.0}, {2.0, 2.0}}, torch::kFloat64)};
  const models::Gaussian t{torch::tensor({{1.0, 1.0}, {1.0, 1.0}}, torch::kFloat64),
                           torch::tensor({{std::log(4.0), 0.0}, {2.0, 2.0}}, torch::kFloat64)};
  EXPECT_NEAR(distill::bayesian_kl(s, t).item<double>(), 0.5 * (std::log(2.0) + 0.25 - 0.5), 1e-9);
}

TEST(DistillLosses, HintIsTheMeanSquaredError) {
  const auto a = torch::tensor({{1.0, 2.0}, {3.0, 4.0}}, torch::kFloat64);
  const auto b = torch::tensor({{1.0, 0.0}, {0.0, 4.0}}, torch::kFloat64);
  EXPECT_NEAR(distill::hint_loss(a, b).item<double>(), (4.0 + 9.0) / 4.0, 1e-12);
}

TEST(DistillLosses, LatentMseSumsOverDimensionsAndAveragesOverTheBatch) {
  // Rows: (1,2) vs (1,0) -> 4; (3,4) vs (0,4) -> 9; mean 6.5 (hint's element mean would be 3.25).
  const auto a = torch::tensor({{1.0, 2.0}, {3.0, 4.0}}, torch::kFloat64).requires_grad_(true);
  const auto b = torch::tensor({{1.0, 0.0}, {0.0, 4.0}}, torch::kFloat64);
  const auto loss = distill::latent_mse(a, b);
  EXPECT_NEAR(loss.item<double>(), 6.5, 1e-12);
  loss.backward();  // d/da = 2 (a - b) / B
  EXPECT_TRUE(torch::allclose(a.grad(), torch::tensor({{0.0, 2.0}, {3.0, 0.0}}, torch::kFloat64)));
}

TEST(Distill, MethodsParseToWeightsAndBadOnesAreRejected) {
  EXPECT_EQ(distill::parse_method("mse"), (distill::MethodWeights{{"mse", 1.0}}));
  EXPECT_EQ(distill::parse_method("ce=1,mse=0.5"),
            (distill::MethodWeights{{"ce", 1.0}, {"mse", 0.5}}));
  EXPECT_EQ(distill::parse_method("baseline"), (distill::MethodWeights{{"ce", 1.0}}));
  EXPECT_EQ(distill::parse_method("kd"), (distill::MethodWeights{{"kd", 0.9}, {"ce", 0.1}}));
  EXPECT_EQ(distill::parse_method("pkt+bayes"),
            (distill::MethodWeights{{"pkt", 1.0}, {"bayes", 1.0}}));
  EXPECT_EQ(distill::parse_method("pkt=2,bayes=0.5"),
            (distill::MethodWeights{{"pkt", 2.0}, {"bayes", 0.5}}));
  EXPECT_FALSE(distill::uses_teacher(distill::parse_method("baseline")));
  EXPECT_TRUE(distill::uses_teacher(distill::parse_method("gd")));
  EXPECT_THROW(distill::parse_method("pkz"), InputError);
  EXPECT_THROW(distill::parse_method("pkt=x"), InputError);
  EXPECT_THROW(distill::parse_method("pkt=-1"), InputError);
  EXPECT_THROW(distill::parse_method("foo=1"), InputError);
  EXPECT_THROW(distill::parse_method(""), InputError);
}

TEST(Distill, StudentSpecsBuildTheNamedNetworks) {
  models::ModalityConfig image;
  image.name = "image";
  image.kind = models::ModalityKind::kImage;
  image.encoder = "mlp";
  image.shape = {1, 28, 28};
  const auto mlp = distill::parse_student_spec("mlp:64", image, 32, 10);
  distill::Student s(mlp);
  // 784*64 + 64 (layer) + 64*64 + 64 (Gaussian head) + 32*10 + 10 (class head).
  EXPECT_EQ(s->parameter_count(), 784 * 64 + 64 + 64 * 64 + 64 + 32 * 10 + 10);
  const auto q = s->encode(models::ModalityInput{torch::rand({3, 1, 28, 28}), {}});
  EXPECT_EQ(q.mu.sizes(), (std::vector<std::int64_t>{3, 32}));
  // 28x28 conv students halve twice (to 7x7); sides that do not divide by 4 are refused.
  const auto conv28 = distill::parse_student_spec("conv:4:16", image, 32, 10);
  distill::Student c28(conv28);
  EXPECT_EQ(c28->encode(models::ModalityInput{torch::rand({2, 1, 28, 28}), {}}).mu.sizes(),
            (std::vector<std::int64_t>{2, 32}));
  image.shape = {1, 30, 30};
  EXPECT_THROW(distill::parse_student_spec("conv:4:16", image, 32, 10), InputError);
  image.shape = {1, 28, 28};
  EXPECT_THROW(distill::parse_student_spec("mlp:0", image, 32, 10), InputError);
  EXPECT_THROW(distill::parse_student_spec("gru:4:8:8", image, 32, 10), InputError);
  EXPECT_THROW(distill::parse_student_spec("resnet:3", image, 32, 10), InputError);
  image.shape = {3, 64, 64};
  EXPECT_EQ(distill::parse_student_spec("conv:4:16", image, 8, 0).modality.channels, 4);
}

TEST(Distill, TeacherIsUnchangedByDistillationAndTheStudentLearns) {
  torch::manual_seed(3);
  models::MultimodalVae teacher(tiny_teacher_config());
  const auto before = copies(teacher->parameters());
  const auto images = torch::bernoulli(torch::full({64, 1, 6, 6}, 0.4));
  const auto labels = torch::arange(64) % 3;
  const auto transfer = distill::transfer_from_inputs(
      teacher, "image", models::ModalityInput{images, {}}, labels, 3, torch::kCPU);
  EXPECT_EQ(transfer.size(), 64);
  EXPECT_EQ(transfer.features.size(1), 16);
  EXPECT_EQ(transfer.logits_unimodal.sizes(), (std::vector<std::int64_t>{64, 3}));
  const auto spec = distill::parse_student_spec("mlp:8", tiny_teacher_config().modalities[0], 4, 3);
  distill::Student student(spec);
  const auto student_before = copies(student->parameters());
  distill::TrainOptions o;
  o.epochs = 1;
  o.batch_size = 16;
  o.progress_seconds = 1e9;
  const auto weights = distill::parse_method("ce=1,kd=1,hint=1,pkt=1,vid=1,bayes=1,mse=1");
  distill::DistillHeads heads(4, transfer.features.size(1));
  const auto first =
      distill::distill_loss(student, heads, transfer, torch::arange(16), weights, o, torch::kCPU);
  for (const auto& term : distill::distill_terms()) {
    if (term != "gd") {
      EXPECT_TRUE(first.terms.count(term)) << term;
    }
  }
  const auto summary = distill::train_student(student, transfer, weights, o, torch::kCPU);
  EXPECT_EQ(summary["steps"].get<int>(), 4);
  EXPECT_TRUE(all_equal(before, copies(teacher->parameters())));
  EXPECT_FALSE(all_equal(student_before, copies(student->parameters())));
  for (const auto& p : teacher->parameters())
    EXPECT_FALSE(p.grad().defined() && p.grad().abs().sum().item<double>() > 0);
}

TEST(Distill, BayesAloneMovesTheStudentPosteriorOntoTheTeachers) {
  torch::manual_seed(4);
  models::MultimodalVae teacher(tiny_teacher_config());
  const auto images = torch::bernoulli(torch::full({256, 1, 6, 6}, 0.4));
  const auto transfer = distill::transfer_from_inputs(
      teacher, "image", models::ModalityInput{images, {}}, torch::arange(256) % 3, 3, torch::kCPU);
  distill::Student student(
      distill::parse_student_spec("mlp:32", tiny_teacher_config().modalities[0], 4, 3));
  distill::TrainOptions o;
  o.epochs = 40;
  o.batch_size = 32;
  o.lr = 3e-3;
  o.progress_seconds = 1e9;
  auto kl_now = [&] {
    torch::NoGradGuard g;
    return distill::bayesian_kl(student->encode(models::ModalityInput{images, {}}), transfer.joint)
        .item<double>();
  };
  const double start = kl_now();
  distill::train_student(student, transfer, distill::parse_method("bayes"), o, torch::kCPU);
  EXPECT_LT(kl_now(), 0.1 * start);
}

TEST(Distill, DataFreeReconstructionMatchesStatisticsAndLeavesTheTeacherAlone) {
  torch::manual_seed(6);
  models::MultimodalVae teacher(tiny_teacher_config());
  const auto before = copies(teacher->parameters());
  const auto images = torch::bernoulli(torch::full({90, 1, 6, 6}, 0.4));
  const auto labels = torch::arange(90) % 3;
  torch::Tensor features;
  {
    torch::NoGradGuard g;
    features = teacher->unimodal_features("image", models::ModalityInput{images, {}});
  }
  const auto stats = distill::activation_stats("image", features, labels);
  EXPECT_EQ(stats.classes.numel(), 3);
  EXPECT_TRUE(torch::allclose(stats.mean[1], features.index({labels == 1}).mean(0)));
  EXPECT_EQ(stats.counts[2].item<std::int64_t>(), 30);

  const auto path = (fs::path(::testing::TempDir()) / "mmkt_stats.pt").string();
  distill::save_activation_stats(path, stats);
  const auto back = distill::load_activation_stats(path);
  EXPECT_EQ(back.modality, "image");
  EXPECT_TRUE(torch::equal(back.mean, stats.mean) && torch::equal(back.stddev, stats.stddev));
  const auto bytes = io::read_file(path);
  io::write_file_atomic(path, bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(distill::load_activation_stats(path), InputError);

  distill::ReconstructionOptions ro;
  ro.items = 40;
  ro.batch_size = 20;
  ro.steps = 60;
  ro.lr = 0.1;
  const auto r = distill::reconstruct_inputs(teacher, stats, {1, 6, 6}, ro, torch::kCPU);
  EXPECT_EQ(r.images.sizes(), (std::vector<std::int64_t>{40, 1, 6, 6}));
  EXPECT_GE(r.images.min().item<double>(), 0.0);
  EXPECT_LE(r.images.max().item<double>(), 1.0);
  EXPECT_LT(r.final_loss, 0.5 * r.initial_loss);
  EXPECT_TRUE(all_equal(before, copies(teacher->parameters())));
  for (const auto& p : teacher->parameters()) EXPECT_TRUE(p.requires_grad());
}

TEST(Distill, StudentRoundTripsThroughItsFolderTensorByTensor) {
  models::ModalityConfig image;
  image.name = "image";
  image.kind = models::ModalityKind::kImage;
  image.shape = {3, 32, 32};
  distill::Student s(distill::parse_student_spec("conv:2:8", image, 5, 4));
  const auto dir = (fs::path(::testing::TempDir()) / "mmkt_student").string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  distill::save_student(dir, s);
  auto back = distill::load_student(dir, torch::kCPU);
  EXPECT_EQ(back->spec().text, "conv:2:8");
  const auto a = s->named_parameters(), b = back->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& item : a) EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << item.key();
  std::ofstream(dir + "/student.json") << "{ not json";
  EXPECT_THROW(distill::load_student(dir, torch::kCPU), InputError);
}

TEST(Distill, ComparisonTableGivesRatiosToTheTeacher) {
  nlohmann::json teacher{
      {"name", "teacher"},
      {"parameters", 1000},
      {"images_per_second", 100.0},
      {"retrieval", {{"image->image", {{"euclidean", {{"mAP", 0.5}, {"P@100", 0.6}}}}}}}};
  nlohmann::json student{{"name", "s"},
                         {"label", "pkt mlp:8"},
                         {"parameters", 50},
                         {"images_per_second", 1500.0},
                         {"teacher_parameters", 1000},
                         {"teacher_images_per_second", 100.0}};
  teacher["retrieval"]["image->image"]["cosine"] = {
      {"mAP", 0.7},
      {"P@100", 0.6},
      {"groups",
       {{"seen", {{"mAP", 0.8}, {"P@100", 0.65}}}, {"unseen", {{"mAP", 0.4}, {"P@100", 0.45}}}}}};
  const auto table = distill::comparison_markdown({teacher, student});
  // Cells with query groups read "all / seen / unseen".
  EXPECT_NE(table.find("| teacher | 1000 | 100.0 | 100 | 1.0x | 0.500 | 0.700 / 0.800 / 0.400 | "
                       "0.600 / 0.650 / 0.450 | - |"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("| pkt mlp:8 | 50 | 5.0 | 1500 | 15.0x | - |"), std::string::npos) << table;
}

// `mmkt distill` end to end on a tiny trained shapes level-3 run (64x64 images, text).
TEST(Distill, CliDistilsATinyShapesRun) {
  const auto base = fs::path(::testing::TempDir()) / "mmkt_distill_run";
  fs::remove_all(base);
  testing_support::train_tiny_shapes_run(base.string(), 7);
  const std::string bin = std::string(MMKT_BINARY) + " --threads 2 --log-level warn ";
  const std::string common =
      " --teacher " + base.string() + " --epochs 2 --batch-size 20 --probe-items 100";

  const auto heavy = (base / "d_heavy").string();
  ASSERT_EQ(
      std::system((bin + "distill" + common +
                   " --method pkt+bayes --student conv:2:8 --heavy --auxiliary conv:4:16 --out " +
                   heavy + " > /dev/null")
                      .c_str()),
      0);
  const auto r = nlohmann::json::parse(io::read_file(heavy + "/result.json"));
  for (const std::string row : {"teacher", "auxiliary", "student"}) {
    ASSERT_TRUE(r.contains(row)) << row;
    const auto& m = r[row]["retrieval"]["image->image"]["euclidean"]["mAP"];
    EXPECT_GT(m.get<double>(), 0.0);
    EXPECT_LE(m.get<double>(), 1.0);
    EXPECT_TRUE(r[row]["retrieval"].contains("image->text"));
    EXPECT_TRUE(r[row].contains("probe"));
    EXPECT_TRUE(r[row].contains("zeroshot"));
  }
  EXPECT_LT(r["student"]["parameters"].get<double>(), r["auxiliary"]["parameters"].get<double>());
  EXPECT_NEAR(r["student"]["parameter_ratio"].get<double>(),
              r["student"]["parameters"].get<double>() / r["teacher"]["parameters"].get<double>(),
              1e-12);
  EXPECT_EQ(r["training"]["learned_from"], "auxiliary conv:4:16");
  for (const std::string f : {"student.pt", "student.json", "log.jsonl", "result.md", "config.json",
                              "auxiliary/student.pt"}) {
    EXPECT_TRUE(fs::exists(heavy + "/" + f)) << f;
  }
  auto student = distill::load_student(heavy, torch::kCPU);
  EXPECT_EQ(student->spec().text, "conv:2:8");

  const auto free = (base / "d_free").string();
  ASSERT_EQ(std::system((bin + "distill" + common +
                         " --method bayes --student conv:2:8 --data-free --reconstruct-items 60"
                         " --reconstruct-steps 3 --teacher-metrics false --out " +
                         free + " > /dev/null")
                            .c_str()),
            0);
  const auto rf = nlohmann::json::parse(io::read_file(free + "/result.json"));
  EXPECT_EQ(rf["training"]["transfer_items"].get<int>(), 60);
  EXPECT_TRUE(fs::exists(base / "distill" / "activation_stats_image.pt"));
  EXPECT_FALSE(rf["teacher"].contains("retrieval"));

  const auto text = (base / "d_text").string();
  ASSERT_EQ(std::system((bin + "distill" + common +
                         " --method bayes --modality text --student gru:4:8:8"
                         " --teacher-metrics false --out " +
                         text + " > /dev/null")
                            .c_str()),
            0);
  const auto text_result = nlohmann::json::parse(io::read_file(text + "/result.json"));
  EXPECT_TRUE(text_result["student"]["retrieval"].contains("text->image"));
  EXPECT_FALSE(text_result["student"]["retrieval"].contains("image->image"));

  const auto table = (base / "table.md").string();
  ASSERT_EQ(
      std::system((bin + "distill-table " + heavy + " " + free + " --out " + table + " > /dev/null")
                      .c_str()),
      0);
  const auto md = io::read_file(table);
  EXPECT_NE(md.find("| teacher (image encoder) |"), std::string::npos) << md;
  EXPECT_NE(md.find("| pkt+bayes-H conv:2:8 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| bayes data-free conv:2:8 |"), std::string::npos) << md;

  // Bad input: one clear line, non-zero exit.
  EXPECT_NE(std::system((bin + "distill" + common + " --method nonsense --out " +
                         (base / "bad").string() + " 2> " + (base / "err.txt").string())
                            .c_str()),
            0);
  EXPECT_NE(io::read_file((base / "err.txt").string()).find("distillation method 'nonsense'"),
            std::string::npos);
  EXPECT_NE(
      std::system(
          (bin + "distill --teacher " + (base / "missing").string() + " 2> /dev/null").c_str()),
      0);
  EXPECT_NE(
      std::system((bin + "distill" + common + " --method baseline --heavy 2> /dev/null").c_str()),
      0);
}
