// Labelled IDX datasets, manifests and splits, including every bad-input case of the data
// issue: each gives an InputError naming the file and the position.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>

#include "mmkt/core/error.h"
#include "mmkt/data/labelled_images.h"
#include "mmkt/data/manifest.h"
#include "mmkt/io/files.h"

using namespace mmkt;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("mmkt_ds_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

void write_png(const fs::path& p, int w, int h, cv::Scalar colour) {
  cv::Mat m(h, w, CV_8UC3, colour);
  cv::imwrite(p.string(), m);
}

std::string manifest_error(const fs::path& manifest, const std::string& attributes = "") {
  data::ManifestOptions o;
  o.path = manifest.string();
  o.image_size = 16;
  o.attributes_file = attributes;
  try {
    data::ManifestDataset ds(o);
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InputError for " << manifest;
  return "";
}

bool fashion_available() {
  return io::file_exists(data::default_data_root("fashion-mnist") + "/t10k-images-idx3-ubyte.gz");
}

}  // namespace

TEST(LabelledImages, FashionMnistTestSplitWithCaptionsAndAttributes) {
  if (!fashion_available()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  data::LabelledImagesOptions o;
  o.split = "test";
  data::LabelledImageDataset ds(o);
  ASSERT_EQ(ds.size(), 10000);
  EXPECT_EQ(ds.info().image_shape, (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(ds.info().class_names.size(), 10u);
  // Fashion-MNIST's test set is balanced: 1000 per class.
  EXPECT_TRUE(
      torch::equal(torch::bincount(ds.all_labels()), torch::full({10}, 1000, torch::kInt64)));
  const auto s = ds.get(0);
  EXPECT_EQ(s.image.sizes(), (std::vector<int64_t>{1, 28, 28}));
  EXPECT_GE(s.image.min().item<float>(), 0.0f);
  EXPECT_LE(s.image.max().item<float>(), 1.0f);
  EXPECT_TRUE(torch::equal(s.attributes, ds.class_attributes()->matrix[s.label]));
  EXPECT_FALSE(s.caption.empty());
  EXPECT_EQ(ds.get(0).caption, s.caption);  // fixed per index
  // batch accessors agree with get()
  const auto imgs = ds.images({0, 5});
  EXPECT_TRUE(torch::equal(imgs[1], ds.get(5).image));
  EXPECT_EQ(ds.captions({5})[0], ds.get(5).caption);
}

TEST(LabelledImages, MnistReadsRawIdxFromTheCache) {
  data::LabelledImagesOptions o;
  o.dataset = "mnist";
  o.split = "test";
  if (!io::file_exists(data::default_data_root("mnist") + "/t10k-images-idx3-ubyte")) {
    GTEST_SKIP() << "MNIST cache missing (run .ci/setup)";
  }
  data::LabelledImageDataset ds(o);
  EXPECT_EQ(ds.size(), 10000);
  EXPECT_EQ(ds.get(0).label, 7);  // the first MNIST test digit is a 7
}

TEST(LabelledImages, MissingDatasetSaysHowToInstall) {
  data::LabelledImagesOptions o;
  o.root = "/nonexistent/fmnist";
  try {
    data::LabelledImageDataset ds(o);
    FAIL();
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("/nonexistent/fmnist/train-images-idx3-ubyte"), std::string::npos) << msg;
    EXPECT_NE(msg.find("apt-get install dataset-fashion-mnist"), std::string::npos) << msg;
  }
  o.dataset = "mnist";
  try {
    data::LabelledImageDataset ds(o);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(".ci/setup"), std::string::npos) << e.what();
  }
}

TEST(Splits, ValidationSplitIsDeterministicAndDisjoint) {
  const auto [train, val] = data::split_train_validation(100, 20, 7);
  EXPECT_EQ(train.size(), 80u);
  EXPECT_EQ(val.size(), 20u);
  std::vector<int64_t> all(train);
  all.insert(all.end(), val.begin(), val.end());
  std::sort(all.begin(), all.end());
  for (int64_t i = 0; i < 100; ++i) EXPECT_EQ(all[static_cast<size_t>(i)], i);
  EXPECT_EQ(data::split_train_validation(100, 20, 7).second, val);
  EXPECT_NE(data::split_train_validation(100, 20, 8).second, val);
  EXPECT_THROW(data::split_train_validation(10, 10, 0), InputError);
}

TEST(Splits, FixedBinarizationIsSeededAndBinary) {
  auto base =
      data::tensor_dataset(torch::full({50, 1, 4, 4}, 0.3f), torch::zeros({50}, torch::kInt64));
  const auto a = data::fixed_binarized(base, 1);
  const auto b = data::fixed_binarized(base, 1);
  const auto c = data::fixed_binarized(base, 2);
  std::vector<int64_t> idx(50);
  std::iota(idx.begin(), idx.end(), 0);
  const auto x = a->images(idx);
  EXPECT_TRUE(torch::equal(x, b->images(idx)));
  EXPECT_FALSE(torch::equal(x, c->images(idx)));
  EXPECT_TRUE(torch::equal(x, x.round()));
  EXPECT_NEAR(x.mean().item<double>(), 0.3, 0.05);
  EXPECT_TRUE(torch::equal(a->get(3).image, x[3]));
}

TEST(Manifest, LoadsImagesTextLabelsAndAttributes) {
  const auto dir = fresh_dir("ok");
  fs::create_directories(dir / "img");
  write_png(dir / "img" / "a.png", 32, 24, cv::Scalar(0, 0, 255));  // red (BGR)
  write_png(dir / "img" / "b.jpg", 20, 40, cv::Scalar(255, 0, 0));  // blue
  write(
      dir / "m.jsonl",
      "{\"image\": \"img/a.png\", \"text\": \"a red thing\", \"label\": 1, \"attributes\": [1, "
      "0]}\n"
      "\n"
      "{\"image\": \"" +
          (dir / "img" / "b.jpg").string() +
          "\", \"text\": \"a blue thing\", \"label\": 0, \"attributes\": [0, 1], \"id\": \"x\"}\n");
  data::ManifestOptions o;
  o.path = (dir / "m.jsonl").string();
  o.image_size = 16;
  data::ManifestDataset ds(o);
  ASSERT_EQ(ds.size(), 2);
  const auto a = ds.get(0);
  EXPECT_EQ(a.image.sizes(), (std::vector<int64_t>{3, 16, 16}));
  // RGB order: the red image has its first channel high.
  EXPECT_GT(a.image[0].mean().item<float>(), 0.9f);
  EXPECT_LT(a.image[2].mean().item<float>(), 0.1f);
  EXPECT_GT(ds.get(1).image[2].mean().item<float>(), 0.9f);
  EXPECT_EQ(a.caption, "a red thing");
  EXPECT_EQ(a.label, 1);
  EXPECT_TRUE(torch::equal(ds.get(1).attributes, torch::tensor({0.0f, 1.0f})));
  EXPECT_EQ(ds.info().class_names.size(), 2u);
}

TEST(Manifest, ClassNamesBecomeLabels) {
  const auto dir = fresh_dir("classes");
  write_png(dir / "a.png", 8, 8, cv::Scalar(10, 10, 10));
  write(dir / "m.jsonl",
        "{\"image\": \"a.png\", \"text\": \"x\", \"class\": \"cat\"}\n"
        "{\"image\": \"a.png\", \"text\": \"y\", \"label\": \"dog\"}\n"
        "{\"image\": \"a.png\", \"text\": \"z\", \"class\": \"cat\"}\n");
  data::ManifestOptions o;
  o.path = (dir / "m.jsonl").string();
  o.channels = 1;
  o.image_size = 8;
  data::ManifestDataset ds(o);
  EXPECT_EQ(ds.info().class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_TRUE(torch::equal(ds.labels({0, 1, 2}), torch::tensor({0, 1, 0}, torch::kInt64)));
  EXPECT_EQ(ds.get(0).image.sizes(), (std::vector<int64_t>{1, 8, 8}));
}

TEST(Manifest, BadInputNamesFileAndLine) {
  const auto dir = fresh_dir("bad");
  write_png(dir / "ok.png", 8, 8, cv::Scalar(1, 2, 3));
  const std::string good = "{\"image\": \"ok.png\", \"text\": \"fine\"}\n";
  const auto m = dir / "m.jsonl";
  struct Case {
    std::string content, expected;
  };
  const std::vector<Case> cases = {
      {good + "not json at all\n", "m.jsonl:2: not a JSON object"},
      {good + "[1, 2]\n", "m.jsonl:2: expected a JSON object"},
      {good + "{\"text\": \"no image\"}\n", "m.jsonl:2: missing \"image\""},
      {good + "{\"image\": \"ok.png\"}\n", "m.jsonl:2: missing \"text\""},
      {good + "{\"image\": 3, \"text\": \"x\"}\n",
       "m.jsonl:2: \"image\" must be a non-empty string"},
      {good + "{\"image\": \"ok.png\", \"text\": 5}\n", "m.jsonl:2: \"text\" must be a string"},
      {good + "{\"image\": \"ok.png\", \"text\": \"   \"}\n", "m.jsonl:2: empty \"text\""},
      {good + "{\"image\": \"ok.png\", \"text\": \"x\", \"lable\": 1}\n", "unknown key \"lable\""},
      {good + "{\"image\": \"missing.png\", \"text\": \"x\"}\n", "m.jsonl:2: image"},
      {good + "{\"image\": \"ok.png\", \"text\": \"caf\xff\"}\n", "m.jsonl:2: not valid UTF-8"},
      {good + "{\"image\": \"ok.png\", \"text\": \"x\", \"label\": -1}\n",
       "\"label\" must be >= 0"},
      // Would have numbered 4e9 class names (a hang, then an allocation failure).
      {good + "{\"image\": \"ok.png\", \"text\": \"x\", \"label\": 4000000000}\n",
       "m.jsonl:2: \"label\" 4000000000 is over the limit"},
      {"{\"image\": \"ok.png\", \"text\": \"x\", \"attributes\": [1, 2]}\n",
       "attributes[1] must be 0 or 1"},
      {"\n\n", "holds no items (empty dataset)"},
  };
  for (const auto& c : cases) {
    write(m, c.content);
    const auto msg = manifest_error(m);
    EXPECT_NE(msg.find(c.expected), std::string::npos)
        << "expected '" << c.expected << "' in: " << msg;
    EXPECT_NE(msg.find(m.string()), std::string::npos) << msg;
  }
}

TEST(Manifest, UndecodableImageNamesLineAndFile) {
  const auto dir = fresh_dir("corrupt");
  write_png(dir / "ok.png", 8, 8, cv::Scalar(1, 2, 3));
  write(dir / "broken.png", std::string("\x89PNG\r\n\x1a\n garbage garbage", 24));
  write(dir / "m.jsonl",
        "{\"image\": \"ok.png\", \"text\": \"x\"}\n{\"image\": \"broken.png\", \"text\": \"y\"}\n");
  const auto msg = manifest_error(dir / "m.jsonl");
  EXPECT_NE(msg.find("m.jsonl:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("broken.png"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cannot decode"), std::string::npos) << msg;
}

TEST(Manifest, ExtremeAspectRatioIsAnInputErrorNotAnAbort) {
  // A 1 x 65000 image resized so that its short side is 1024 would be 66.5 million pixels wide:
  // the process aborted ("terminate called without an active exception") before the fix.
  const auto dir = fresh_dir("sliver");
  write_png(dir / "ok.png", 8, 8, cv::Scalar(1, 2, 3));
  write_png(dir / "sliver.png", 65000, 1, cv::Scalar(9, 9, 9));
  write(dir / "m.jsonl",
        "{\"image\": \"ok.png\", \"text\": \"x\"}\n"
        "{\"image\": \"sliver.png\", \"text\": \"y\"}\n");
  data::ManifestOptions o;
  o.path = (dir / "m.jsonl").string();
  o.image_size = 1024;
  o.threads = 2;
  std::string msg;
  try {
    data::ManifestDataset ds(o);
  } catch (const InputError& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("m.jsonl:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("sliver.png"), std::string::npos) << msg;
  EXPECT_NE(msg.find("65000x1"), std::string::npos) << msg;
}

TEST(Manifest, MissingManifest) {
  EXPECT_NE(manifest_error("/no/such/manifest.jsonl").find("manifest does not exist"),
            std::string::npos);
}
