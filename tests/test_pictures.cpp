// Report pictures: each writer's PNG decodes with the size its layout gives; confusion counts
// and cell colours on hand-worked cases; PCA on points along a known line.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include <opencv2/imgcodecs.hpp>

#include "mmkt/core/error.h"
#include "mmkt/eval/pictures.h"

using namespace mmkt;

namespace {

std::string temp_path(const std::string& name) {
  // A folder that does not exist yet: the writers create it.
  return (std::filesystem::path(::testing::TempDir()) / "mmkt_pictures" / "sub" / name).string();
}

cv::Mat read_png(const std::string& path) {
  cv::Mat m = cv::imread(path, cv::IMREAD_COLOR);
  EXPECT_FALSE(m.empty()) << path;
  return m;
}

}  // namespace

TEST(Pictures, Pca2dFindsTheLine) {
  torch::manual_seed(0);
  const auto t = torch::linspace(-3, 3, 200);
  // Points (t, 2t, 0) plus tiny noise: the first component is along (1, 2, 0)/sqrt(5).
  auto x = torch::stack({t, 2 * t, torch::zeros_like(t)}, 1) + 1e-3 * torch::randn({200, 3});
  const auto p = eval::pca_2d(x + 5.0);  // an offset changes nothing: x is centred
  ASSERT_EQ(p.sizes(), torch::IntArrayRef({200, 2}));
  const double v1 = p.select(1, 0).var().item<double>(), v2 = p.select(1, 1).var().item<double>();
  EXPECT_GE(v1, v2);
  EXPECT_LT(v2 / v1, 1e-5);
  // Projection on the first component = sqrt(5) t (sign: loading of y, 2/sqrt(5), is positive).
  EXPECT_TRUE(torch::allclose(p.select(1, 0), std::sqrt(5.0f) * t, 1e-3, 1e-2));
  // Deterministic; D = 1 gives a zero second column.
  EXPECT_TRUE(torch::equal(p, eval::pca_2d(x + 5.0)));
  const auto one = eval::pca_2d(t.unsqueeze(1));
  EXPECT_TRUE(torch::allclose(one.select(1, 0), t - t.mean(), 1e-5, 1e-5));
  EXPECT_EQ(one.select(1, 1).abs().max().item<float>(), 0.0f);
  EXPECT_THROW(eval::pca_2d(torch::zeros({4})), InputError);
}

TEST(Pictures, ScatterPng) {
  const auto path = temp_path("scatter.png");
  const auto points = torch::randn({50, 2});
  auto labels = torch::arange(50, torch::kInt64) % 3;
  labels[0] = -1;  // unlabelled: grey
  eval::write_scatter_png(path, points, labels, {"circle", "square", "triangle"}, "latent space");
  const auto m = read_png(path);
  EXPECT_EQ(m.cols, 800);
  EXPECT_EQ(m.rows, 800);
  eval::write_scatter_png(path, points, labels, {"a", "b", "c"}, "small", 400);
  EXPECT_EQ(read_png(path).cols, 400);
  // 25 classes: the palette cycles and the legend still fits.
  eval::write_scatter_png(path, torch::randn({25, 2}), torch::arange(25, torch::kInt64),
                          std::vector<std::string>(25, "class"), "many");
  EXPECT_THROW(eval::write_scatter_png(path, points, labels.narrow(0, 0, 10), {"a", "b", "c"}, ""),
               InputError);
  EXPECT_THROW(eval::write_scatter_png(path, points, labels, {"a", "b"}, ""), InputError);
  EXPECT_THROW(
      eval::write_scatter_png(path, torch::zeros({5, 3}), labels.narrow(0, 0, 5), {"a"}, ""),
      InputError);
}

TEST(Pictures, ConfusionMatrixHandWorked) {
  // (truth, predicted): (0,0) (0,0) (0,1) (1,1) (1,2) (2,0) (2,2) (2,2) (2,2)
  const auto truth = torch::tensor({0, 0, 0, 1, 1, 2, 2, 2, 2}, torch::kInt64);
  const auto predicted = torch::tensor({0, 0, 1, 1, 2, 0, 2, 2, 2}, torch::kInt64);
  const auto expected = torch::tensor({{2, 1, 0}, {0, 1, 1}, {1, 0, 3}}, torch::kInt64);
  const auto cm = eval::confusion_matrix(truth, predicted, 3, 3);
  EXPECT_EQ(cm.scalar_type(), torch::kInt64);
  EXPECT_TRUE(torch::equal(cm, expected)) << cm;
  // Rectangular: 2 true classes, 4 predicted ones.
  const auto rect = eval::confusion_matrix(torch::tensor({0, 1, 1}, torch::kInt64),
                                           torch::tensor({3, 3, 0}, torch::kInt64), 2, 4);
  EXPECT_TRUE(torch::equal(rect, torch::tensor({{0, 0, 0, 1}, {1, 0, 0, 1}}, torch::kInt64)));
  EXPECT_THROW(eval::confusion_matrix(truth, predicted, 2, 3), InputError);
  EXPECT_THROW(eval::confusion_matrix(truth, predicted.narrow(0, 0, 4), 3, 3), InputError);
}

TEST(Pictures, ConfusionPngSizeAndCellColours) {
  const auto path = temp_path("confusion.png");
  // Row 0 all on the diagonal; row 1 split 1:3; row 2 empty.
  const auto cm = torch::tensor({{5, 0, 0}, {1, 3, 0}, {0, 0, 0}}, torch::kInt64);
  eval::write_confusion_png(path, cm, {"cat", "dog", "bird"}, {"cat", "dog", "bird"}, "confusion");
  const auto m = read_png(path);
  const int cell = 60;  // clamp(720 / 3, 14, 60)
  EXPECT_EQ(m.cols, 170 + 3 * cell + 20);
  EXPECT_EQ(m.rows, 40 + 170 + 3 * cell + 20);
  // Near the top-left corner of a cell (clear of the grid line and the centred text).
  auto at = [&](int r, int c) { return m.at<cv::Vec3b>(210 + r * cell + 5, 170 + c * cell + 5); };
  EXPECT_EQ(at(0, 0), cv::Vec3b(107, 48, 8));  // share 1: the darkest blue (BGR)
  EXPECT_EQ(at(0, 1), cv::Vec3b(255, 255, 255));
  EXPECT_EQ(at(2, 2), cv::Vec3b(255, 255, 255));
  // Share 0.75: 255 + 0.75 * (dark - 255), rounded.
  EXPECT_EQ(at(1, 1), cv::Vec3b(144, 100, 70));
  // Many classes: cells shrink to 720 / 40 = 18 px.
  const auto big = torch::eye(40, torch::kInt64);
  std::vector<std::string> names(40, "name");
  eval::write_confusion_png(path, big, names, names, "forty");
  const auto m40 = read_png(path);
  EXPECT_EQ(m40.cols, 170 + 40 * 18 + 20);
  EXPECT_EQ(m40.rows, 210 + 40 * 18 + 20);
  EXPECT_THROW(eval::write_confusion_png(path, cm, {"a", "b"}, {"a", "b", "c"}, ""), InputError);
  EXPECT_THROW(eval::write_confusion_png(path, -cm, {"a", "b", "c"}, {"a", "b", "c"}, ""),
               InputError);
}

TEST(Pictures, ImageRowsPng) {
  const auto path = temp_path("rows.png");
  // 2 rows of 3 RGB 28x28 images, short captions (one line each); the default scale brings
  // 28-pixel items to 112 pixels (4x): row height = 112.
  eval::write_image_rows_png(path, {"a red circle", "a blue square"},
                             torch::rand({2, 3, 3, 28, 28}));
  auto m = read_png(path);
  EXPECT_EQ(m.cols, 260 + 3 * (112 + 4));
  EXPECT_EQ(m.rows, 4 + 2 * (112 + 4));
  // A grey image per row (K = 1, a caption generated from it), scale 3, a narrow strip: a long
  // caption wraps over more lines than the image is high, so its row grows.
  const std::string long_caption(
      "a very long generated caption that cannot possibly fit on one line of a narrow strip "
      "and so wraps over many lines, more than the height of the image");
  eval::write_image_rows_png(path, {"short", long_caption}, torch::rand({2, 1, 1, 16, 16}), 100, 3);
  m = read_png(path);
  EXPECT_EQ(m.cols, 100 + 1 * (48 + 4));
  EXPECT_GT(m.rows, 4 + 2 * (48 + 4));
  EXPECT_EQ((m.rows - 4 - (48 + 4) - 4 - 8) % 18, 0);  // second row: lines * 18 + 8
  // The images sit right of the strip, at full intensity for an all-white image.
  eval::write_image_rows_png(path, {"white"}, torch::ones({1, 1, 3, 8, 8}), 100, 2);
  m = read_png(path);
  EXPECT_EQ(m.at<cv::Vec3b>(4 + 3, 100 + 3), cv::Vec3b(255, 255, 255));
  EXPECT_THROW(eval::write_image_rows_png(path, {"one"}, torch::rand({2, 1, 3, 8, 8})), InputError);
  EXPECT_THROW(eval::write_image_rows_png(path, {"one"}, torch::rand({1, 1, 2, 8, 8})), InputError);
}

TEST(Pictures, ContactSheetPng) {
  const auto path = temp_path("sheet.png");
  const auto results = torch::zeros({2, 4, 3, 10, 10});  // black images: frames stand out
  auto relevant = torch::zeros({2, 4}, torch::kBool);
  relevant[0][0] = true;
  // Image queries: tile = 10*2 + 6 = 26; row height = max(26, 1*18 + 8) = 26.
  eval::write_contact_sheet_png(path, {"query one", "query two"}, torch::rand({2, 3, 10, 10}),
                                results, relevant, 2);
  auto m = read_png(path);
  const int tile = 26, results_x = 4 + tile + 4 + 260;
  EXPECT_EQ(m.cols, results_x + 4 * (tile + 4));
  EXPECT_EQ(m.rows, 4 + 2 * (26 + 4));
  // Frame pixels (top-left corner of each result tile, BGR): green when relevant, red when not.
  EXPECT_EQ(m.at<cv::Vec3b>(4, results_x), cv::Vec3b(0, 170, 0));
  EXPECT_EQ(m.at<cv::Vec3b>(4, results_x + tile + 4), cv::Vec3b(0, 0, 220));
  EXPECT_EQ(m.at<cv::Vec3b>(4 + 30, results_x), cv::Vec3b(0, 0, 220));
  EXPECT_EQ(m.at<cv::Vec3b>(4 + 3, results_x + 3), cv::Vec3b(0, 0, 0));  // inside: the image
  // Text queries (no query image), grey results.
  eval::write_contact_sheet_png(path, {"a text query"}, {}, torch::rand({1, 5, 1, 10, 10}),
                                torch::ones({1, 5}, torch::kBool), 1);
  m = read_png(path);
  EXPECT_EQ(m.cols, 4 + 260 + 5 * (16 + 4));
  EXPECT_EQ(m.rows, 4 + 26 + 4);  // max(16, 18 + 8)
  // Grey queries beside colour results (image -> image across datasets).
  eval::write_contact_sheet_png(path, {"a", "b"}, torch::rand({2, 1, 10, 10}), results, relevant,
                                2);
  EXPECT_EQ(read_png(path).cols, results_x + 4 * (tile + 4));
  // The default scale for 10-pixel items: 12x would reach 112 pixels, the cap is 8x: tile 86.
  eval::write_contact_sheet_png(path, {"a", "b"}, torch::rand({2, 1, 10, 10}), results, relevant);
  EXPECT_EQ(read_png(path).cols, 4 + (80 + 6) + 4 + 260 + 4 * (80 + 6 + 4));
  EXPECT_THROW(eval::write_contact_sheet_png(path, {"a"}, {}, results, relevant), InputError);
  EXPECT_THROW(
      eval::write_contact_sheet_png(path, {"a", "b"}, {}, results, relevant.narrow(1, 0, 3)),
      InputError);
  EXPECT_THROW(eval::write_contact_sheet_png(path, {"a", "b"}, torch::rand({2, 3, 12, 12}), results,
                                             relevant),
               InputError);
}
