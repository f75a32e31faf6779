// `mmkt transfer --method antidistill` (transfer/antidistill.h): the experiment end to end on a
// tiny trained shapes run, its statistics and reach table checked against the students'
// own result files, resumption without retraining, and its config errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "mmkt/core/error.h"
#include "mmkt/core/runtime.h"
#include "mmkt/io/files.h"
#include "mmkt/io/json_config.h"
#include "mmkt/transfer/antidistill.h"
#include "tiny_runs.h"

using namespace mmkt;
using namespace mmkt::transfer;
namespace fs = std::filesystem;

TEST(Antidistill, ConfigErrorsNameTheKey) {
  const nlohmann::json ok = {{"teacher", "runs/x"}};
  EXPECT_NO_THROW(antidistill_options_from_json(ok, "a.json"));
  auto expect_error = [](const nlohmann::json& j, const std::string& needle) {
    try {
      antidistill_options_from_json(j, "a.json");
      ADD_FAILURE() << "accepted " << j.dump();
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("a.json"), std::string::npos) << e.what();
    }
  };
  expect_error(nlohmann::json::object(), "teacher");
  expect_error({{"teacher", "r"}, {"epochs", {4, 1}}}, "ascending");
  expect_error({{"teacher", "r"}, {"epochs", nlohmann::json::array()}}, "epochs");
  expect_error({{"teacher", "r"}, {"small", "mlp:8"}, {"large", "mlp:8"}}, "same network");
  expect_error({{"teacher", "r"}, {"lr", -1}}, "lr");
  expect_error({{"teacher", "r"}, {"smal", "mlp:8"}}, "smal");
  expect_error({{"teacher", "r"}, {"grown_lr", -1e-4}}, "grown_lr");
}

TEST(Antidistill, TinyExperimentEndToEndAndResumes) {
  const auto base = fs::path(::testing::TempDir()) / "mmkt_antidistill";
  fs::remove_all(base);
  const auto teacher = (base / "teacher").string();
  testing_support::train_tiny_shapes_run(teacher, 3);
  AntidistillOptions o;
  o.teacher = teacher;
  o.small = "mlp:4";
  o.large = "mlp:8,8";
  o.small_epochs = 2;
  o.epochs = {1, 2};
  o.seeds = {0, 1};
  o.batch_size = 40;
  o.out_dir = (base / "out").string();
  RuntimeOptions ro;
  ro.threads = 2;
  ro.log_level = "warn";
  const auto rt = init_runtime(ro);
  const auto result = run_antidistill(o, rt);

  // One row for the small student, one per start and epoch count.
  ASSERT_EQ(result["rows"].size(), 7u);
  std::map<std::string, nlohmann::json> rows;
  for (const auto& r : result["rows"]) rows[r["key"].get<std::string>()] = r;
  for (const std::string key : {"small", "random_e1", "random_e2", "grown_e1", "grown_e2",
                                "fromsmall_e1", "fromsmall_e2"}) {
    ASSERT_TRUE(rows.count(key)) << key;
    const auto& row = rows[key];
    // The cells are the mean and sample std of the students' own result files.
    for (const std::string f : {"i->t mAP cos", "i->i mAP cos", "probe", "seconds"}) {
      const auto v = row[f]["values"].get<std::vector<double>>();
      ASSERT_EQ(v.size(), 2u);
      EXPECT_NEAR(row[f]["mean"].get<double>(), (v[0] + v[1]) / 2, 1e-12);
      EXPECT_NEAR(row[f]["std"].get<double>(), std::abs(v[0] - v[1]) / std::sqrt(2.0), 1e-12);
    }
    for (std::size_t s = 0; s < 2; ++s) {
      const auto r =
          io::load_json_file(o.out_dir + "/s" + std::to_string(s) + "/" + key + "/result.json");
      EXPECT_EQ(row["i->t mAP cos"]["values"][s].get<double>(),
                r["student"]["retrieval"]["image->text"]["cosine"]["mAP"].get<double>());
      EXPECT_EQ(row["probe"]["values"][s].get<double>(),
                r["student"]["probe"]["accuracy"].get<double>());
      const auto map = row["i->i mAP cos"]["values"][s].get<double>();
      EXPECT_GT(map, 0.0);
      EXPECT_LE(map, 1.0);
      if (key.rfind("grown", 0) == 0) {
        EXPECT_EQ(r["grown_from"]["student"], "mlp:4");
      } else if (key.rfind("fromsmall", 0) == 0) {
        EXPECT_EQ(r["training"]["learned_from"].get<std::string>().rfind("student mlp:4", 0), 0u)
            << r["training"]["learned_from"];
      } else {
        EXPECT_FALSE(r.contains("grown_from"));
      }
    }
  }
  EXPECT_EQ(rows["small"]["epochs"], 2);
  EXPECT_EQ(rows["grown_e2"]["epochs"], 2);
  EXPECT_EQ(rows["grown_e1"]["parameters"], rows["random_e1"]["parameters"]);
  EXPECT_LT(rows["small"]["parameters"].get<double>(),
            rows["random_e1"]["parameters"].get<double>());
  // The reference is the random start after the most epochs, which reaches itself.
  EXPECT_EQ(result["reference"], "random_e2");
  for (const std::string f : {"i->t mAP cos", "i->i mAP cos", "probe"}) {
    const auto& hit = result["reach_reference"]["random"][f];
    ASSERT_FALSE(hit.is_null()) << f;
    const auto e = hit["epochs"].get<int>();
    const auto key = "random_e" + std::to_string(e);
    EXPECT_GE(rows[key][f]["mean"].get<double>(),
              rows["random_e2"][f]["mean"].get<double>() - 1e-12);
    if (e == 2) {
      EXPECT_LT(rows["random_e1"][f]["mean"].get<double>(),
                rows["random_e2"][f]["mean"].get<double>());
    }
  }
  // Loss curves of the 2-epoch runs, one value per epoch and start.
  for (const std::string s : {"random", "grown", "fromsmall"}) {
    ASSERT_EQ(result["loss_curves"][s].size(), 2u) << s;
  }
  const auto md = io::read_file(o.out_dir + "/result.md");
  EXPECT_NE(md.find("| mlp:8,8 grown from the small | 1 |"), std::string::npos) << md;
  EXPECT_NE(md.find("First listed epoch count"), std::string::npos) << md;

  // Run again: every student is reused, the figures are the same.
  const auto again = run_antidistill(o, rt);
  EXPECT_EQ(again["rows"], result["rows"]);
  EXPECT_EQ(again["loss_curves"], result["loss_curves"]);

  // grown_lr adds the grown start at its own rate; seed 0, one epoch: only that student is new.
  o.seeds = {0};
  o.epochs = {1};
  o.grown_lr = 1e-4;
  const auto with_lr = run_antidistill(o, rt);
  ASSERT_EQ(with_lr["rows"].size(), 5u);
  EXPECT_EQ(with_lr["rows"][3]["key"], "grownlr_e1");
  const auto grown_lr = io::load_json_file(o.out_dir + "/s0/grownlr_e1/result.json");
  EXPECT_EQ(grown_lr["options"]["lr"].get<double>(), 1e-4);
  EXPECT_EQ(grown_lr["grown_from"]["student"], "mlp:4");
  EXPECT_EQ(with_lr["rows"][1]["probe"]["values"][0], rows["random_e1"]["probe"]["values"][0]);
  EXPECT_NE(io::read_file(o.out_dir + "/result.md").find("grown from the small, lr 0.0001"),
            std::string::npos);
  fs::remove_all(base);
}
