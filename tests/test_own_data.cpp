// Your own data: the manifest survey and the automatic choices made from it (channels, image
// size, binarization, free bits, the image networks and likelihood), a tiny run on a folder of
// mixed formats and sizes that this test writes itself, the learned-scale Gaussian likelihood,
// free bits and the posterior-collapse warning.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>

#include "mmkt/core/error.h"
#include "mmkt/core/runtime.h"
#include "mmkt/data/manifest.h"
#include "mmkt/io/files.h"
#include "mmkt/io/json_config.h"
#include "mmkt/models/multimodal_vae.h"
#include "mmkt/models/networks.h"
#include "mmkt/run/config.h"
#include "mmkt/run/run_data.h"
#include "mmkt/train/trainer.h"
#include "tiny_runs.h"

using namespace mmkt;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("mmkt_own_data_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir / "images");
  return dir;
}

// `count` items of two classes ("boot": a bright square, "bag": a bright disc) in PNG, JPEG and
// BMP of sizes 20..90; with `colour`, two in three are tinted (one on a light background);
// with `binary`, grey pixels are exactly 0 or 255. Returns the manifest path.
std::string write_folder(const fs::path& dir, int count, bool colour, bool binary) {
  std::mt19937 rng(7);
  const std::vector<std::string> formats = binary
                                               ? std::vector<std::string>{".png", ".bmp"}
                                               : std::vector<std::string>{".png", ".jpg", ".bmp"};
  std::ofstream manifest(dir / "manifest.jsonl");
  for (int i = 0; i < count; ++i) {
    const int side = 20 + static_cast<int>(rng() % 71);
    const bool boot = i % 2 == 0;
    cv::Mat grey(side, side, CV_8U, cv::Scalar(0));
    const double level = binary ? 255.0 : 120.0 + static_cast<double>(rng() % 120);
    if (boot) {
      cv::rectangle(grey, cv::Point(side / 4, side / 4), cv::Point(3 * side / 4, 3 * side / 4),
                    cv::Scalar(level), cv::FILLED);
    } else {
      cv::circle(grey, cv::Point(side / 2, side / 2), side / 3, cv::Scalar(level), cv::FILLED);
    }
    cv::Mat image = grey;
    if (colour && i % 3 != 0) {
      std::vector<cv::Mat> planes(3);
      const double background = i % 3 == 2 ? 60.0 : 0.0;  // a lit backdrop behind the object
      for (int c = 0; c < 3; ++c) {
        grey.convertTo(planes[c], CV_8U, 0.3 + 0.35 * c, background);  // saturating
      }
      cv::merge(planes, image);
    }
    const auto& format = formats[i % formats.size()];
    const std::string relative = "images/" + std::to_string(i) + format;
    EXPECT_TRUE(cv::imwrite((dir / relative).string(), image));
    manifest << nlohmann::json{{"image", relative},
                               {"text",
                                std::string(boot ? "a photo of a boot" : "product shot: bag") +
                                    (i % 4 == 0 ? ", close-up" : "")},
                               {"class", boot ? "boot" : "bag"}}
                    .dump()
             << "\n";
  }
  return (dir / "manifest.jsonl").string();
}

// A class-attribute file for the toy classes: boot (bright, corners), bag (bright; unseen) and,
// `with_hat`, hat (corners). Returns its path.
std::string write_toy_attributes(const fs::path& dir, bool with_hat) {
  const auto path = (dir / "attributes.json").string();
  std::ofstream(path) << R"({
    "dataset": "toy", "generic_names": ["item"],
    "attributes": [{"name": "is_bright", "phrases": ["that is bright"]},
                   {"name": "has_corners", "phrases": ["with corners"]}],
    "classes": [{"name": "boot", "names": ["boot"], "attributes": ["is_bright", "has_corners"]},
                {"name": "bag", "names": ["bag"], "attributes": ["is_bright"]})"
                      << (with_hat ? R"(,
                {"name": "hat", "names": ["hat"], "attributes": ["has_corners"]})"
                                   : "")
                      << R"(],
    "zero_shot": {"unseen": ["bag"]}})";
  return path;
}

RunConfig manifest_config(const std::string& manifest, std::vector<std::string> sets = {}) {
  sets.push_back("data.dataset=manifest");
  sets.push_back("data.manifest=" + manifest);
  return config_from_json(resolve_config_json("", sets), "test");
}

}  // namespace

TEST(OwnData, ChoicesFollowTheImages) {
  const auto colour = write_folder(fresh_dir("colour"), 30, true, false);
  const auto survey = data::survey_manifest_images(colour);
  EXPECT_EQ(survey.items, 30);
  EXPECT_EQ(survey.surveyed, 30);
  EXPECT_EQ(survey.colour, 20);  // two in three are tinted
  EXPECT_FALSE(survey.binary());
  EXPECT_GE(survey.median_short_side, 20);
  EXPECT_LE(survey.median_short_side, 90);
  const auto c = resolve_data_choices(manifest_config(colour));
  EXPECT_EQ(c.data.channels, 3);
  EXPECT_EQ(c.data.image_size, 32);  // a few items: 32 whatever the sizes
  EXPECT_EQ(c.data.binarize, "none");
  EXPECT_DOUBLE_EQ(c.train.free_bits, kManifestFreeBits);
  // What the configuration sets is kept; resolving twice changes nothing.
  const auto kept = resolve_data_choices(
      manifest_config(colour, {"data.channels=1", "data.image_size=48", "train.free_bits=0"}));
  EXPECT_EQ(kept.data.channels, 1);
  EXPECT_EQ(kept.data.image_size, 48);
  EXPECT_DOUBLE_EQ(kept.train.free_bits, 0.0);
  EXPECT_EQ(resolve_data_choices(c).data.binarize, "none");

  const auto binary = write_folder(fresh_dir("binary"), 12, false, true);
  const auto b = resolve_data_choices(manifest_config(binary));
  EXPECT_TRUE(data::survey_manifest_images(binary).binary());
  EXPECT_EQ(b.data.channels, 1);
  EXPECT_EQ(b.data.binarize, "dynamic");
  // Built-in datasets: the documented fixed choices, no survey.
  auto j = default_config_json();
  EXPECT_EQ(resolve_data_choices(config_from_json(j, "test")).data.binarize, "dynamic");
  j["data"]["dataset"] = "shapes";
  const auto shapes = resolve_data_choices(config_from_json(j, "test"));
  EXPECT_EQ(shapes.data.binarize, "none");
  EXPECT_DOUBLE_EQ(shapes.train.free_bits, 0.0);
}

TEST(OwnData, TinyRunOnAMixedFolderKeepsItsChoicesAndLearnsTheScale) {
  const auto dir = fresh_dir("run");
  const auto manifest = write_folder(dir, 60, true, false);
  auto j = default_config_json();
  j["data"]["dataset"] = "manifest";
  j["data"]["manifest"] = manifest;
  j["data"]["validation"] = 10;
  j["tokenizer"]["vocab_size"] = 40;
  j["model"]["latent_dim"] = 4;
  j["train"]["epochs"] = 2;
  j["train"]["batch_size"] = 20;
  j["train"]["progress_seconds"] = 1000.0;
  RuntimeOptions ro;
  ro.threads = 2;
  const auto rt = init_runtime(ro);
  const auto run_dir = (dir / "run").string();
  train::train_run(config_from_json(j, "test"), j, run_dir, train::RunStart::kFresh, rt);
  // config.json keeps the concrete choices, so eval and query rebuild the same model.
  const auto saved = io::load_json_file(run_dir + "/config.json");
  EXPECT_EQ(saved["data"]["channels"], 3);
  EXPECT_EQ(saved["data"]["image_size"], 32);
  EXPECT_EQ(saved["data"]["binarize"], "none");
  EXPECT_DOUBLE_EQ(saved["train"]["free_bits"].get<double>(), kManifestFreeBits);
  auto run = load_run(run_dir, torch::kCPU);
  ASSERT_EQ(run.modalities[0].likelihood, "gaussian");
  EXPECT_EQ(run.modalities[0].likelihood_scale, 0.0);
  EXPECT_EQ(run.modalities[0].channels, 16);
  const auto params = run.model->named_parameters();
  ASSERT_TRUE(params.contains("dec_image.log_scale"));
  // Trained, the scale has moved from its start (0.1).
  EXPECT_GT(std::abs(params["dec_image.log_scale"].item<double>() - std::log(0.1)), 1e-4);
}

TEST(OwnData, LearnedScaleGaussianByHand) {
  // o = 0 -> mean 0.5; x = 1; s = 0.1: -0.5 (0.5 / 0.1)^2 - log 0.1 - 0.5 log 2 pi per pixel.
  const auto output = torch::zeros({1, 1, 2, 2});
  const auto target = torch::ones({1, 1, 2, 2});
  auto log_scale = torch::full({}, std::log(0.1), torch::requires_grad());
  const auto ll = models::image_log_likelihood(output, target, models::ImageLikelihood::kGaussian,
                                               0.0, log_scale);
  const double per_pixel = -12.5 + std::log(10.0) - 0.5 * std::log(2.0 * M_PI);
  EXPECT_NEAR(ll.item<double>(), 4 * per_pixel, 1e-4);
  // d/d(log s) = sum (d^2 / s^2 - 1) = 4 (25 - 1) = 96: the scale grows towards the error.
  ll.sum().backward();
  EXPECT_NEAR(log_scale.grad().item<double>(), 96.0, 1e-3);
  // Laplace: -|d| / b - log 2b.
  const auto lap = models::image_log_likelihood(output, target, models::ImageLikelihood::kLaplace,
                                                0.0, torch::full({}, std::log(0.5)));
  EXPECT_NEAR(lap.item<double>(), 4 * (-1.0 - std::log(1.0)), 1e-5);
}

TEST(OwnData, FreeBitsFloorEachDimensionOfThePriorKl) {
  // With a floor above every KL_d, the prior term is exactly D * lambda per item: the loss
  // moves by D * lambda - KL (warm-up weight 1), and the reported KL and ELBO do not move.
  auto config = testing_support::tiny_image_label_model("jmvae");
  models::MultimodalVae model(config);
  models::Inputs in;
  torch::manual_seed(5);
  in["image"].data = torch::bernoulli(torch::full({8, 1, 6, 6}, 0.4));
  in["label"].data = torch::arange(8) % 3;
  models::ObjectiveOptions plain, floored;
  floored.free_bits = 50.0;
  torch::manual_seed(1);
  const auto a = model->objective(in, plain);
  torch::manual_seed(1);
  const auto b = model->objective(in, floored);
  const double kl = a.terms.at("kl").item<double>();
  EXPECT_NEAR(b.loss.item<double>() - a.loss.item<double>(), 50.0 * config.latent_dim - kl, 1e-3);
  EXPECT_DOUBLE_EQ(b.terms.at("kl").item<double>(), kl);
  EXPECT_DOUBLE_EQ(b.terms.at("elbo").item<double>(), a.terms.at("elbo").item<double>());
}

TEST(OwnData, CollapseWarningNamesTheCauseAndTheFix) {
  const auto warning = train::collapse_warning({{"kl", 0.16}, {"loss", 3.0}}, 2);
  ASSERT_TRUE(warning.has_value());
  EXPECT_NE(warning->find("posterior collapse"), std::string::npos);
  EXPECT_NE(warning->find("0.16 nats per item after epoch 2"), std::string::npos);
  EXPECT_NE(warning->find("train.free_bits"), std::string::npos);
  EXPECT_FALSE(train::collapse_warning({{"kl", 12.0}}, 2).has_value());
  EXPECT_FALSE(
      train::collapse_warning({{"loss", 1.0}}, 1).has_value());  // no KL term: nothing to say
}

TEST(OwnData, ManifestWithoutTestFileCarvesTestItemsOfUnseenClasses) {
  // The review's defect: unseen classes were removed before the 10% test carve, so the test set
  // held none of them and zero-shot accuracy read 0.0 without a word.
  const auto dir = fresh_dir("zero_shot_carve");
  const auto manifest = write_folder(dir, 60, false, false);
  const auto attributes = write_toy_attributes(dir, false);
  const auto config = resolve_data_choices(
      manifest_config(manifest, {"data.attributes_file=" + attributes, "data.validation=0"}));
  const auto data = load_run_data(config, "");
  ASSERT_EQ(data.unseen_classes, (std::vector<std::int64_t>{1}));
  const auto test_labels = data.test->labels(data::index_range(data.test->size()));
  const auto train_labels = data.train->labels(data::index_range(data.train->size()));
  EXPECT_EQ(data.test->size(), 6);  // 10% of all 60 items
  EXPECT_GT(test_labels.eq(1).sum().item<std::int64_t>(), 0) << test_labels;
  EXPECT_EQ(train_labels.eq(1).sum().item<std::int64_t>(), 0);
  // Training keeps the boots outside the test set: 30 boots of 60 items, minus the test's.
  EXPECT_EQ(data.train->size(), 30 - test_labels.eq(0).sum().item<std::int64_t>());
}

TEST(OwnData, ValidationClassesLeaveTrainingAndJoinTheValidationSplit) {
  // data.validation_unseen (the GZSL protocol's validation classes): 'hat' is held out of
  // training like the unseen 'bag', and as many hats as seen items join the validation split.
  const auto dir = fresh_dir("validation_unseen");
  const std::vector<std::string> classes = {"boot", "bag", "hat"};
  {
    std::ofstream manifest(dir / "manifest.jsonl");
    for (int i = 0; i < 90; ++i) {
      const auto& cls = classes[static_cast<std::size_t>(i % 3)];
      cv::Mat grey(12, 12, CV_8U, cv::Scalar(40 * (i % 3) + 30));
      const std::string relative = "images/" + std::to_string(i) + ".png";
      ASSERT_TRUE(cv::imwrite((dir / relative).string(), grey));
      manifest << nlohmann::json{{"image", relative}, {"text", "a " + cls}, {"class", cls}}.dump()
               << "\n";
    }
  }
  const auto attributes = write_toy_attributes(dir, true);
  const auto manifest = (dir / "manifest.jsonl").string();
  auto config_with = [&](const std::string& validation_unseen) {
    return resolve_data_choices(
        manifest_config(manifest, {"data.attributes_file=" + attributes, "data.validation=10",
                                   "data.validation_unseen=" + validation_unseen}));
  };
  const auto data = load_run_data(config_with(R"(["hat"])"), "");
  EXPECT_EQ(data.unseen_classes, (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(data.validation_unseen_classes, (std::vector<std::int64_t>{2}));
  const auto count = [](const data::DatasetPtr& d, std::int64_t c) {
    return d->labels(data::index_range(d->size())).eq(c).sum().item<std::int64_t>();
  };
  const auto boots = 30 - count(data.test, 0);  // the test carve takes 10% of all items first
  // Validation: min(10, boots / 5) boots, and as many hats (one seen class trains).
  const auto validation_boots = std::min<std::int64_t>(10, boots / 5);
  EXPECT_EQ(count(data.validation, 0), validation_boots);
  EXPECT_EQ(count(data.validation, 2), validation_boots);
  EXPECT_EQ(count(data.validation, 1), 0);
  EXPECT_EQ(data.train->size(), boots - validation_boots);
  EXPECT_EQ(count(data.train, 0), data.train->size());  // neither bags nor hats train

  // Without validation classes the split is the one it always was.
  const auto plain = load_run_data(config_with("[]"), "");
  EXPECT_EQ(plain.unseen_classes, (std::vector<std::int64_t>{1}));
  EXPECT_TRUE(plain.validation_unseen_classes.empty());
  EXPECT_EQ(count(plain.validation, 2) + count(plain.validation, 0), plain.validation->size());

  // Errors name the key and what is wrong.
  auto message = [&](const std::string& value) {
    try {
      load_run_data(config_with(value), "");
    } catch (const mmkt::InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(R"(["bag"])").find("'bag' is already an unseen (test) class"),
            std::string::npos);
  EXPECT_NE(message(R"(["boot"])").find("attribute 'is_bright' of 'boot' is had by no class"),
            std::string::npos)
      << message(R"(["boot"])");
  EXPECT_NE(message(R"(["shoe"])").find("data.validation_unseen[0]"), std::string::npos)
      << message(R"(["shoe"])");
  EXPECT_NE(message(R"(["hat", "hat"])").find("named twice"), std::string::npos);
}
