// Queries, zero-shot explanations, generation and the commands around them: exact top-k on a
// hand-made index, index files round-tripped and rejected when damaged, query inputs from text
// and image files with clear errors, DAP evidence on a hand-worked example, and `mmkt query`,
// `zeroshot`, `generate` on a tiny trained shapes run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "mmkt/core/error.h"
#include "mmkt/eval/zero_shot.h"
#include "mmkt/image/convert.h"
#include "mmkt/io/files.h"
#include "mmkt/models/networks.h"
#include "mmkt/query/answer.h"
#include "mmkt/query/command.h"
#include "mmkt/query/generate.h"
#include "mmkt/query/index.h"
#include "mmkt/query/inputs.h"
#include "mmkt/query/zero_shot_classifier.h"
#include "tiny_runs.h"

using namespace mmkt;
namespace fs = std::filesystem;

namespace {

query::SearchIndex hand_index() {
  query::SearchIndex index;
  index.modality = "image";
  index.collection = "test";
  index.checkpoint = "best.pt:1:2";
  // Four items in 2-D: directions 0, 90, 45 degrees and a long vector at 0 degrees.
  index.mu = torch::tensor({{1.0f, 0.0f}, {0.0f, 1.0f}, {1.0f, 1.0f}, {3.0f, 0.0f}});
  index.labels = torch::tensor({0, 1, 2, 0}, torch::kInt64);
  index.part_sizes = {4};
  index.sq_norm = index.mu.pow(2).sum(1);
  index.unit = index.mu / index.sq_norm.sqrt().unsqueeze(1);
  return index;
}

std::string run_capture(const std::string& cmd, int* rc) {
  const auto out = (fs::path(::testing::TempDir()) / "mmkt_query_cmd.txt").string();
  *rc = std::system((cmd + " > " + out + " 2>&1").c_str());
  return io::read_file(out);
}

}  // namespace

TEST(Query, SearchRanksExactlyByCosineAndByEuclideanDistance) {
  const auto index = hand_index();
  // Query (2, 0.1): cosine ranks the two 0-degree items first (ties keep both), then 45 degrees.
  const auto cos = query::search(index, torch::tensor({2.0f, 0.1f}), 3, "cosine");
  ASSERT_EQ(cos.size(), 3u);
  EXPECT_TRUE((cos[0].item == 0 && cos[1].item == 3) || (cos[0].item == 3 && cos[1].item == 0));
  EXPECT_EQ(cos[2].item, 2);
  EXPECT_NEAR(cos[2].score, (2.0 + 0.1) / (std::sqrt(4.01) * std::sqrt(2.0)), 1e-5);
  // Euclidean from (2.5, 0): item 3 at 0.5, item 0 at 1.5, item 2 at sqrt(4.25), item 1 at
  // sqrt(7.25).
  const auto euc = query::search(index, torch::tensor({2.5f, 0.0f}), 2, "euclidean");
  EXPECT_EQ(euc[0].item, 3);  // distance 0.5
  EXPECT_NEAR(euc[0].score, -0.5, 1e-5);
  EXPECT_EQ(euc[1].item, 0);  // distance 1.5
  EXPECT_EQ(euc[1].label, 0);
  EXPECT_EQ(query::search(index, torch::tensor({1.0f, 0.0f}), 10, "cosine").size(),
            4u);  // k clamps
  EXPECT_THROW(query::search(index, torch::tensor({1.0f, 0.0f, 0.0f}), 2, "cosine"), InputError);
  EXPECT_THROW(query::search(index, torch::tensor({1.0f, 0.0f}), 2, "manhattan"), InputError);
  EXPECT_THROW(query::search(index, torch::tensor({1.0f, 0.0f}), 0, "cosine"), InputError);
}

TEST(Query, IndexFilesRoundTripAndDamagedOnesAreRejected) {
  const auto stem = (fs::path(::testing::TempDir()) / "mmkt_index_test").string();
  auto index = hand_index();
  index.captions = {"a", "b", "c", "d"};
  query::save_index(stem, index);
  const auto back = query::load_index(stem);
  EXPECT_TRUE(torch::equal(back.mu, index.mu));
  EXPECT_TRUE(torch::equal(back.labels, index.labels));
  EXPECT_EQ(back.captions, index.captions);
  EXPECT_EQ(back.checkpoint, "best.pt:1:2");
  EXPECT_TRUE(torch::allclose(back.unit, index.unit));
  // Truncated tensors.
  const auto bytes = io::read_file(stem + ".pt");
  io::write_file_atomic(stem + ".pt", bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(query::load_index(stem), InputError);
  io::write_file_atomic(stem + ".pt", bytes);
  // Captions that do not match the item count.
  auto meta = nlohmann::json::parse(io::read_file(stem + ".json"));
  meta["captions"] = {"a"};
  io::write_file_atomic(stem + ".json", meta.dump());
  EXPECT_THROW(query::load_index(stem), InputError);
  io::write_file_atomic(stem + ".json", "{ broken");
  EXPECT_THROW(query::load_index(stem), InputError);
  EXPECT_THROW(query::load_index(stem + "_missing"), InputError);
}

TEST(Query, DapEvidenceOnAHandWorkedExample) {
  // Classes a (1,0) seen; b (0,1), c (1,1) unseen. Prior over seen classes (1, 0) -> 0.5, 0.5.
  // Attribute probabilities p = (0.9, 0.8) (identity sigmoid classifier on logit inputs):
  //   DAP(b) = log(0.1/0.5) + log(0.8/0.5) = log 0.32,  DAP(c) = log(0.9/0.5) + log(0.8/0.5) =
  //   log 2.88.
  // c wins; the evidence against b: attribute x: log(0.9/0.5) - log(0.1/0.5) = log 9; y: 0.
  query::ZeroShotClassifier zs;
  zs.task.class_names = {"a", "b", "c"};
  zs.task.attribute_names = {"x", "y"};
  zs.task.class_attributes = torch::tensor({{1.0f, 0.0f}, {0.0f, 1.0f}, {1.0f, 1.0f}});
  zs.task.seen = {0};
  zs.task.unseen = {1, 2};
  zs.class_attributes = zs.task.class_attributes;
  zs.prior = eval::attribute_prior(zs.class_attributes, zs.task.seen);
  zs.attributes.kind = "sigmoid";
  zs.attributes.mean = torch::zeros({2});
  zs.attributes.scale = torch::ones({2});
  zs.attributes.weight = torch::eye(2);
  zs.attributes.bias = torch::zeros({2});
  auto logit = [](double p) { return static_cast<float>(std::log(p / (1 - p))); };
  const auto mu = torch::tensor({logit(0.9), logit(0.8)});
  const auto out = query::explain_zero_shot(zs, mu, "dap", false, 2);
  ASSERT_EQ(out["ranking"].size(), 2u);
  EXPECT_EQ(out["ranking"][0]["class"], "c");
  EXPECT_NEAR(out["ranking"][0]["score"].get<double>(), std::log(2.88), 1e-5);
  EXPECT_EQ(out["ranking"][1]["class"], "b");
  EXPECT_NEAR(out["ranking"][1]["score"].get<double>(), std::log(0.32), 1e-5);
  EXPECT_EQ(out["attributes"][0]["name"], "x");
  EXPECT_NEAR(out["attributes"][0]["evidence"].get<double>(), std::log(9.0), 1e-5);
  EXPECT_NEAR(out["attributes"][0]["probability"].get<double>(), 0.9, 1e-6);
  EXPECT_NEAR(out["attributes"][1]["evidence"].get<double>(), 0.0, 1e-6);
  // All classes: the seen class a (log(0.9/0.5) + log(0.2/0.5)) ranks between c and b.
  const auto all = query::explain_zero_shot(zs, mu, "dap", true, 3);
  EXPECT_EQ(all["ranking"][1]["class"], "a");
  EXPECT_THROW(query::zero_shot_scores(zs, mu.unsqueeze(0), "text"), InputError);  // no prototypes
  EXPECT_THROW(query::zero_shot_scores(zs, mu.unsqueeze(0), "knn"), InputError);
}

// The commands on a tiny trained shapes run (64x64 colour images and captions).
TEST(Pictures, NearestNeighbourUpscalingKeepsPixelsSquare) {
  // [1,1,2,2] = [[0, 1], [0.5, 0.25]] -> every pixel a 3x3 block.
  const auto x = torch::tensor({0.0f, 1.0f, 0.5f, 0.25f}).view({1, 1, 2, 2});
  const auto up = image::upscale_nearest(x, 3);
  ASSERT_EQ(up.sizes(), (std::vector<std::int64_t>{1, 1, 6, 6}));
  EXPECT_FLOAT_EQ(up[0][0][2][2].item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(up[0][0][0][3].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(up[0][0][5][0].item<float>(), 0.5f);
  EXPECT_FLOAT_EQ(up[0][0][3][5].item<float>(), 0.25f);
  EXPECT_FLOAT_EQ(up.sum().item<float>(), 9.0f * 1.75f);
  // 28-pixel items reach 112 pixels (4x); 64-pixel ones 128 (2x); big ones stay.
  EXPECT_EQ(image::viewing_scale(28), 4);
  EXPECT_EQ(image::viewing_scale(64), 2);
  EXPECT_EQ(image::viewing_scale(112), 1);
  EXPECT_EQ(image::viewing_scale(300), 1);
  EXPECT_EQ(image::viewing_scale(7), 8);  // capped
}

TEST(Query, CommandsOnATinyShapesRun) {
  const auto base = (fs::path(::testing::TempDir()) / "mmkt_query_run").string();
  fs::remove_all(base);
  testing_support::train_tiny_shapes_run(base, 11);
  RuntimeOptions ro;
  ro.threads = 2;
  const auto rt = init_runtime(ro);
  auto run = load_run(base, rt.device);

  // Inputs: text and image files, and what is wrong with them.
  EXPECT_EQ(query::text_input(run, "a red heart", rt.device).data.size(0), 1);
  EXPECT_THROW(query::text_input(run, "   ", rt.device), InputError);
  EXPECT_THROW(query::text_input(run, std::string("caf\xC3", 4), rt.device), InputError);
  const auto png = base + "/query.png";
  image::write_png(png, run.data.test->images({0})[0]);
  const auto x = query::image_file_input(run, png, rt.device);
  EXPECT_EQ(x.data.sizes(), (std::vector<std::int64_t>{1, 3, 64, 64}));
  EXPECT_TRUE(torch::allclose(x.data, run.data.test->images({0}), 0, 1.0 / 255 + 1e-6));
  std::ofstream(base + "/broken.png") << "not an image";
  EXPECT_THROW(query::image_file_input(run, base + "/broken.png", rt.device), InputError);

  // The index is built once, then reused.
  bool built = false;
  const auto index = query::open_index(run, base, "image", "test", rt.device, &built);
  EXPECT_TRUE(built);
  EXPECT_EQ(index.size(), run.data.test->size());

  // One answer for every front end: the caption's q(z|text) mean ranked over the index.
  const auto a = query::answer(run, index, {"a red heart", ""}, {5, "cosine"}, rt.device);
  EXPECT_EQ(a.query_modality, "text");
  torch::Tensor mean;
  {
    torch::NoGradGuard no_grad;
    mean = run.model->encode("text", query::text_input(run, "a red heart", rt.device)).mu;
  }
  const auto direct = query::search(index, mean, 5, "cosine");
  ASSERT_EQ(a.hits.size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(a.hits[i].item, direct[i].item);
  EXPECT_GT(a.encode_ms, 0.0);
  EXPECT_THROW(query::answer(run, index, {"", ""}, {}, rt.device), InputError);
  EXPECT_THROW(query::answer(run, index, {"a heart", png}, {}, rt.device), InputError);
  EXPECT_EQ(query::answer(run, index, {"", png}, {3, "euclidean"}, rt.device).query_modality,
            "image");
  query::open_index(run, base, "image", "test", rt.device, &built);
  EXPECT_FALSE(built);
  const auto captions = query::open_index(run, base, "text", "test", rt.device, &built);
  EXPECT_EQ(static_cast<std::int64_t>(captions.captions.size()), run.data.test->size());

  // Generation.
  const auto images =
      query::images_from_text(run, query::text_input(run, "a red heart", rt.device), 4, 1);
  EXPECT_EQ(images.sizes(), (std::vector<std::int64_t>{4, 3, 64, 64}));
  EXPECT_GE(images.min().item<double>(), 0.0);
  EXPECT_LE(images.max().item<double>(), 1.0);
  const auto texts = query::captions_from_image(run, x, 3, 2, 1);
  EXPECT_EQ(texts.size(), 3u);

  // The commands: results, files and errors.
  const std::string bin = std::string(MMKT_BINARY) + " --threads 2 ";
  int rc = 0;
  auto out =
      run_capture(bin + "query " + base + " --text 'a small blue star' --top 5 --repeat 3", &rc);
  EXPECT_EQ(rc, 0) << out;
  const auto q = nlohmann::json::parse(io::read_file(base + "/query/query.json"));
  EXPECT_EQ(q["results"].size(), 5u);
  EXPECT_EQ(q["index"]["items"].get<int>(), 120);
  EXPECT_FALSE(q["index"]["built_now"].get<bool>());
  EXPECT_GE(q["results"][0]["score"].get<double>(), q["results"][4]["score"].get<double>());
  EXPECT_TRUE(fs::exists(base + "/query/query.png"));
  // The command as a library call: the same ranking and files, and its lines for a terminal.
  query::QueryRequest request;
  request.run = base;
  request.text = "a small blue star";
  request.has_text = true;
  request.top = 5;
  request.repeat = 2;
  request.out = base + "/q3";
  const auto direct_answer = query::run_query_request(request, rt);
  ASSERT_EQ(direct_answer["results"].size(), 5u);
  for (std::size_t i = 0; i < 5; ++i)
    EXPECT_EQ(direct_answer["results"][i]["item"], q["results"][i]["item"]);
  EXPECT_EQ(direct_answer["latency_ms"]["repeats"].get<int>(), 2);
  EXPECT_TRUE(fs::exists(base + "/q3/query.png"));
  const auto lines = query::answer_lines(direct_answer);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 6) << lines;
  EXPECT_EQ(lines.rfind("query: a small blue star (text -> image, 120 items)\n", 0), 0u) << lines;
  request.image = png;  // a caption and an image at once
  EXPECT_THROW(query::run_query_request(request, rt), InputError);
  out = run_capture(bin + "query " + base + " --image " + png + " --top 3 --out " + base + "/q2",
                    &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(nlohmann::json::parse(io::read_file(base + "/q2/query.json"))["results"][0].contains(
      "caption"));
  out = run_capture(bin + "zeroshot " + base + " --image " + png + " --method iap --max-train 100",
                    &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"ranking\""), std::string::npos) << out;
  out = run_capture(
      bin + "generate " + base + " --text 'a red heart' --n 4 --out " + base + "/gen.png", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(fs::exists(base + "/gen.png"));
  out = run_capture(bin + "generate " + base + " --image " + png + " --n 2 --beam 3", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"captions\""), std::string::npos) << out;

  // Bad input: one clear line, non-zero exit.
  out = run_capture(bin + "query " + base + "/missing --text 'a heart'", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("no such run directory"), std::string::npos) << out;
  out = run_capture(bin + "query " + base + " --text ''", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("empty"), std::string::npos) << out;
  out = run_capture(bin + "query " + base + " --image " + base + "/broken.png", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("broken.png"), std::string::npos) << out;
  out = run_capture(bin + "zeroshot " + base + " --image " + base + "/nothing.png", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("nothing.png"), std::string::npos) << out;
  // A run written by another format version: its checkpoint says so.
  const auto old = base + "/old";
  fs::create_directories(old);
  for (const auto* f : {"config.json", "tokenizer.model"})
    fs::copy_file(base + "/" + f, old + "/" + f);
  {
    torch::serialize::OutputArchive a;
    a.write("format_version", torch::tensor(std::vector<std::int64_t>{99}));
    a.save_to(old + "/checkpoint.pt");
  }
  out = run_capture(bin + "query " + old + " --text 'a heart'", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("version"), std::string::npos) << out;
}

// A run whose text networks are the convolutional ones, with a word tokenizer: trained,
// reloaded from its checkpoint, asked and made to describe an image.
TEST(Query, ConvTextRunAnswersAndDescribes) {
  const auto base = (fs::path(::testing::TempDir()) / "mmkt_query_conv_text").string();
  fs::remove_all(base);
  testing_support::train_tiny_shapes_run(base, 12, "conv", "word");
  RuntimeOptions ro;
  ro.threads = 2;
  const auto rt = init_runtime(ro);
  auto run = load_run(base, rt.device);
  ASSERT_NE(dynamic_cast<models::TextConvDecoderImpl*>(&run.model->decoder("text")), nullptr);
  EXPECT_EQ(run.config.tokenizer.type, "word");
  // The checkpoint holds the conv text networks: a second load computes the same features.
  auto again = load_run(base, rt.device);
  const auto ids = query::text_input(run, "a small blue star", rt.device);
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(
        torch::equal(run.model->encode("text", ids).mu, again.model->encode("text", ids).mu));
  }
  const auto index = query::open_index(run, base, "image", "test", rt.device);
  const auto a = query::answer(run, index, {"a small blue star", ""}, {5, "cosine"}, rt.device);
  EXPECT_EQ(a.hits.size(), 5u);
  const auto png = base + "/item.png";
  image::write_png(png, run.data.test->images({0})[0]);
  const auto captions =
      query::captions_from_image(run, query::image_file_input(run, png, rt.device), 2, 3, 1);
  ASSERT_EQ(captions.size(), 2u);
  for (const auto& c : captions) EXPECT_FALSE(c.empty());
}

// The main job, shortened (3 training steps, a 1000-item transfer set): every file and table.
TEST(Demo, ShortDemoWritesItsReport) {
  const auto dir = (fs::path(::testing::TempDir()) / "mmkt_demo").string();
  fs::remove_all(dir);
  int rc = 0;
  const auto out = run_capture(std::string(MMKT_BINARY) + " --threads 2 demo --run " + dir +
                                   " --epochs 1 --steps 3 --distill-epochs 1 --distill-items 1000",
                               &rc);
  ASSERT_EQ(rc, 0) << out;
  const auto md = io::read_file(dir + "/demo.md");
  for (const std::string s : {"| text->image |", "| ZSL accuracy |", "| teacher (image encoder) |",
                              "kd=1,mse=1 conv:8:128", "Pictures:"}) {
    EXPECT_NE(md.find(s), std::string::npos) << s << "\n" << md;
  }
  for (const std::string f :
       {"demo.json", "eval/report.json", "demo/query.png", "demo/query.json", "demo/generated.png",
        "distill/student/student.pt", "index/test_image.pt"}) {
    EXPECT_TRUE(fs::exists(dir + "/" + f)) << f;
  }
  const auto figures = nlohmann::json::parse(io::read_file(dir + "/demo.json"));
  const double map = figures["retrieval_text_to_image_map"];
  EXPECT_GT(map, 0.0);
  EXPECT_LE(map, 1.0);
  // conv:8:128 on 28x28: conv 1->8 (136), 8->16 (2064), 16*7*7 -> 128 (100480), head 128 -> 2*32
  // (8256), class head 32 -> 10 (330).
  EXPECT_EQ(figures["student"]["parameters"].get<std::int64_t>(), 136 + 2064 + 100480 + 8256 + 330);
  // A second demo into a folder that is not a run is refused, and the folder is left alone.
  const auto other = (fs::path(::testing::TempDir()) / "mmkt_not_a_run").string();
  fs::create_directories(other);
  std::ofstream(other + "/notes.txt") << "keep me";
  const auto refused = run_capture(std::string(MMKT_BINARY) + " demo --run " + other, &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(refused.find("is not an earlier demo's folder"), std::string::npos) << refused;
  EXPECT_TRUE(fs::exists(other + "/notes.txt"));
}

TEST(Query, ImageFileIsPreprocessedAsTheRunsItems) {
  // The review's defect: a query image was never binarized, while the index it is searched
  // against holds the binarized test images of a data.binarize=dynamic run.
  const auto dir = fs::path(::testing::TempDir()) / "mmkt_query_binarize";
  fs::create_directories(dir);
  const auto png = (dir / "grey.png").string();
  auto ramp = torch::linspace(0.0, 1.0, 64).reshape({1, 8, 8});  // every grey level
  image::write_png(png, ramp);
  LoadedRun run;
  models::ModalityConfig image;
  image.name = "image";
  image.kind = models::ModalityKind::kImage;
  image.shape = {1, 8, 8};
  run.modalities = {image};
  run.config.seed = 5;
  run.config.data.binarize = "none";
  const auto kept = image_file_item(run, png);
  EXPECT_TRUE(torch::allclose(kept, ramp, 0, 1.0 / 255 + 1e-6));
  run.config.data.binarize = "dynamic";
  const auto binary = image_file_item(run, png);
  EXPECT_EQ(binary.sizes(), (std::vector<std::int64_t>{1, 8, 8}));
  EXPECT_TRUE(torch::equal(binary, binary.round())) << "not binary";
  EXPECT_TRUE(torch::equal(binary, image_file_item(run, png))) << "not a fixed draw";
  EXPECT_NEAR(binary.mean().item<double>(), 0.5, 0.2);  // Bernoulli(intensity), mean 0.5
  EXPECT_EQ(binary[0][0][0].item<float>(), 0.0f);       // intensity 0 is always 0
  EXPECT_EQ(binary[0][7][7].item<float>(), 1.0f);       // intensity 1 is always 1
}
