// Dataset shift wrappers on small synthetic tensor datasets: each transform checked against
// its formula, prior-shift counts and concept-shift label changes counted exactly.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <numeric>

#include "mmkt/core/error.h"
#include "mmkt/eval/shift.h"

using namespace mmkt;

namespace {

std::vector<std::int64_t> range(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

data::DatasetPtr images_dataset(torch::Tensor images) {
  const auto n = images.size(0);
  return data::tensor_dataset(std::move(images), torch::arange(n, torch::kInt64) % 2);
}

}  // namespace

TEST(Shift, SeverityZeroChangesNothing) {
  torch::manual_seed(1);
  const auto images = torch::rand({4, 3, 8, 8});
  const auto base = images_dataset(images);
  for (const auto& kind : eval::covariate_shift_kinds()) {
    const auto shifted = eval::covariate_shift(base, kind, 0, 7);
    EXPECT_EQ(shifted->info().name, "tensors+" + kind + "@0");
    EXPECT_TRUE(torch::equal(shifted->get(2).image, images[2])) << kind;
    EXPECT_TRUE(torch::equal(shifted->images(range(4)), images)) << kind;
  }
  const auto prior = eval::prior_shift(base, 0, 7);
  EXPECT_EQ(prior->size(), 4);
  EXPECT_TRUE(torch::equal(prior->images(range(4)), images));
  const auto concept_ = eval::concept_shift(base, 0, 7);
  EXPECT_TRUE(torch::equal(concept_->labels(range(4)), base->labels(range(4))));
}

TEST(Shift, RotationBy90DegreesIsRot90CounterClockwise) {
  // Severity 6 = 90 degrees. OpenCV's positive angle turns the picture counter-clockwise as
  // displayed (origin top-left), which is torch::rot90(x, 1, {H, W}) (numpy's rot90 direction).
  const auto image = (torch::arange(2 * 8 * 8, torch::kFloat32) / 128.0f).reshape({2, 8, 8});
  const auto base = images_dataset(image.unsqueeze(0));
  const auto rotated = eval::covariate_shift(base, "rotation", 6, 0);
  EXPECT_EQ(rotated->info().name, "tensors+rotation@6");
  const auto got = rotated->get(0).image;
  EXPECT_TRUE(torch::allclose(got, torch::rot90(image, 1, {1, 2}), 0, 1e-6));
  // The top-right corner comes to the top-left.
  EXPECT_FLOAT_EQ(got[0][0][0].item<float>(), image[0][0][7].item<float>());
  EXPECT_TRUE(torch::equal(rotated->images({0}), got.unsqueeze(0)));
  // 45 degrees: the corners come from outside the image and are black.
  const auto ones =
      eval::covariate_shift(images_dataset(torch::ones({1, 1, 9, 9})), "rotation", 3, 0);
  const auto r45 = ones->get(0).image;
  EXPECT_EQ(r45[0][0][0].item<float>(), 0.0f);
  EXPECT_NEAR(r45[0][4][4].item<float>(), 1.0f, 1e-6);
}

TEST(Shift, NoiseHasTheRightSigmaAndIsDeterministic) {
  const auto base = images_dataset(torch::full({2, 1, 64, 64}, 0.5f));
  const auto noisy = eval::covariate_shift(base, "noise", 1, 42);
  const auto a = noisy->get(0).image;
  const double sd = (a - 0.5).std().item<double>();
  EXPECT_NEAR(sd, 0.1, 0.01);  // sigma = 0.1 * severity, within 10%
  EXPECT_NEAR((a - 0.5).mean().item<double>(), 0.0, 0.01);
  EXPECT_TRUE(torch::equal(a, noisy->get(0).image));
  EXPECT_TRUE(torch::equal(a, noisy->images({1, 0})[1]));
  EXPECT_FALSE(torch::equal(a, noisy->get(1).image));  // another index, other noise
  EXPECT_FALSE(torch::equal(a, eval::covariate_shift(base, "noise", 1, 43)->get(0).image));
  // Clamped to [0,1].
  const auto strong = eval::covariate_shift(base, "noise", 20, 42)->get(0).image;
  EXPECT_GE(strong.min().item<float>(), 0.0f);
  EXPECT_LE(strong.max().item<float>(), 1.0f);
}

TEST(Shift, BlurKeepsTheMeanAndSmoothsACheckerboard) {
  const auto constant = torch::full({1, 3, 16, 16}, 0.3f);
  const auto blurred = eval::covariate_shift(images_dataset(constant), "blur", 2, 0)->get(0).image;
  EXPECT_NEAR(blurred.mean().item<double>(), 0.3, 1e-5);
  EXPECT_TRUE(torch::allclose(blurred, constant[0], 0, 1e-5));
  const auto i = torch::arange(16).unsqueeze(1), j = torch::arange(16).unsqueeze(0);
  const auto board = ((i + j) % 2).to(torch::kFloat32).reshape({1, 1, 16, 16});
  const auto smooth = eval::covariate_shift(images_dataset(board), "blur", 2, 0)->get(0).image;
  EXPECT_LT(smooth.var().item<double>(), 0.1 * board.var().item<double>());
  EXPECT_NEAR(smooth.mean().item<double>(), 0.5, 0.01);
}

TEST(Shift, ContrastKeepsTheMeanAndScalesDeviations) {
  torch::manual_seed(3);
  const auto images = torch::rand({2, 3, 8, 8});
  const auto low = eval::covariate_shift(images_dataset(images), "contrast", 1.5, 0);
  for (std::int64_t k = 0; k < 2; ++k) {
    const auto x = images[k], y = low->get(k).image;
    const auto m = x.mean();
    EXPECT_NEAR(y.mean().item<double>(), m.item<double>(), 1e-6);
    EXPECT_TRUE(torch::allclose(y - m, (x - m) / 2.5, 1e-5, 1e-6));
  }
}

TEST(Shift, PhotoRendersUserPhotosAndReadsThemBackLikeAManifest) {
  // Strength 0: colour white, background black, so pixel = a whatever the style; a constant
  // grey image comes back the same grey (8-bit files, JPEG q90 on a flat image: within 1%).
  const auto grey = images_dataset(torch::full({6, 1, 12, 12}, 0.6f));
  const auto untinted = eval::covariate_shift(grey, "photo", 1e-12, 5);
  for (std::int64_t k = 0; k < 6; ++k) {
    const auto y = untinted->get(k).image;
    EXPECT_EQ(y.sizes(), (std::vector<std::int64_t>{1, 12, 12}));
    EXPECT_LT((y - 0.6).abs().max().item<double>(), 0.01) << k;
  }
  // Strength 1 on black images (no object, a = 0): grey and tinted-on-black styles stay black;
  // product shots (one in three) show their light background, grey luminance of [0.75, 1]^3.
  const std::int64_t n = 90;
  const auto black = images_dataset(torch::zeros({n, 1, 12, 12}));
  const auto photos = eval::covariate_shift(black, "photo", 1, 5);
  EXPECT_EQ(photos->info().name, "tensors+photo@1");
  const auto all = photos->images(range(n));
  std::int64_t light = 0;
  for (std::int64_t k = 0; k < n; ++k) {
    const double lo = all[k].min().item<double>(), hi = all[k].max().item<double>();
    if (lo > 0.7) {
      ++light;
      EXPECT_LE(hi, 1.0);
    } else {
      EXPECT_LT(hi, 0.02) << "item " << k << " is neither black nor a light product shot";
    }
  }
  EXPECT_GT(light, n / 3 - 15);
  EXPECT_LT(light, n / 3 + 15);
  // Fixed per (seed, index) however fetched; another seed draws other photos.
  EXPECT_TRUE(torch::equal(photos->get(7).image, all[7]));
  EXPECT_TRUE(torch::equal(photos->images({7, 3})[1], all[3]));
  EXPECT_FALSE(torch::equal(eval::covariate_shift(black, "photo", 1, 6)->images(range(n)), all));
  // Colour or non-square items, and strengths above 1, are refused.
  EXPECT_THROW(
      eval::covariate_shift(images_dataset(torch::rand({1, 3, 8, 8})), "photo", 1, 0)->get(0),
      InputError);
  EXPECT_THROW(
      eval::covariate_shift(images_dataset(torch::rand({1, 1, 8, 6})), "photo", 1, 0)->get(0),
      InputError);
  EXPECT_THROW(eval::covariate_shift(grey, "photo", 1.5, 0), InputError);
}

TEST(Shift, PriorShiftHalvesTheRarestClass) {
  // 4 balanced classes of 100; severity 1: keep 100 * 2^(-r/3) = 100, 79.4, 63.0, 50 -> 100, 79,
  // 63, 50 (rounded), whichever classes land at positions 0..3.
  const auto labels = torch::arange(400, torch::kInt64) % 4;
  const auto base = data::tensor_dataset(torch::zeros({400, 1, 2, 2}), labels);
  const auto shifted = eval::prior_shift(base, 1, 5);
  EXPECT_EQ(shifted->info().name, "tensors+prior@1");
  ASSERT_EQ(shifted->size(), 100 + 79 + 63 + 50);
  const auto kept = shifted->labels(range(shifted->size()));
  std::vector<std::int64_t> counts;
  for (std::int64_t c = 0; c < 4; ++c) counts.push_back(kept.eq(c).sum().item<std::int64_t>());
  std::vector<std::int64_t> sorted = counts;
  std::sort(sorted.rbegin(), sorted.rend());
  EXPECT_EQ(sorted, (std::vector<std::int64_t>{100, 79, 63, 50}));
  EXPECT_EQ(sorted.front(), 2 * sorted.back());
  // Deterministic by seed; the class order depends on it.
  EXPECT_TRUE(torch::equal(kept, eval::prior_shift(base, 1, 5)->labels(range(shifted->size()))));
  bool other_order = false;
  for (std::uint64_t seed = 6; seed < 16 && !other_order; ++seed) {
    const auto o = eval::prior_shift(base, 1, seed);
    const auto l = o->labels(range(o->size()));
    for (std::int64_t c = 0; c < 4; ++c)
      other_order |= l.eq(c).sum().item<std::int64_t>() != counts[c];
  }
  EXPECT_TRUE(other_order);
  // Severity 3: ratio 2^3 = 8 (100 .. 12.5 -> 13 by rounding: 100/13 is the nearest we get).
  const auto strong = eval::prior_shift(base, 3, 5);
  EXPECT_EQ(strong->size(), 100 + 50 + 25 + 13);
}

TEST(Shift, ConceptShiftRelabelsExactlyTheShare) {
  const std::int64_t n = 1000;
  const auto labels = torch::arange(n, torch::kInt64) % 5;
  torch::manual_seed(4);
  const auto images = torch::rand({n, 1, 4, 4});
  const auto base = data::tensor_dataset(images, labels, std::vector<std::string>(n, "caption"));
  const auto shifted = eval::concept_shift(base, 0.5, 11);
  EXPECT_EQ(shifted->info().name, "tensors+concept@0.5");
  const auto changed_labels = shifted->labels(range(n));
  EXPECT_EQ(changed_labels.ne(labels).sum().item<std::int64_t>(), 500);
  // One fixed mapping per class, never to itself.
  std::map<std::int64_t, std::int64_t> perm;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto from = labels[i].item<std::int64_t>(), to = changed_labels[i].item<std::int64_t>();
    EXPECT_EQ(shifted->get(i).label, to);
    if (from == to) continue;
    EXPECT_TRUE(perm.emplace(from, to).first->second == to) << "class " << from;
  }
  EXPECT_EQ(perm.size(), 5u);
  // Images and captions untouched.
  EXPECT_TRUE(torch::equal(shifted->images(range(n)), images));
  EXPECT_TRUE(torch::equal(shifted->get(3).image, images[3]));
  EXPECT_EQ(shifted->get(3).caption, "caption");
  EXPECT_TRUE(torch::equal(eval::concept_shift(base, 0.5, 11)->labels(range(n)), changed_labels));
  EXPECT_EQ(
      eval::concept_shift(base, 1.0, 2)->labels(range(n)).ne(labels).sum().item<std::int64_t>(), n);
}

TEST(Shift, BadArgumentsThrowInputError) {
  const auto base = images_dataset(torch::rand({4, 1, 4, 4}));
  try {
    eval::covariate_shift(base, "fog", 1, 0);
    FAIL() << "unknown kind accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("rotation, noise, blur, contrast"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(eval::covariate_shift(base, "noise", -1, 0), InputError);
  EXPECT_THROW(eval::covariate_shift(base, "noise", std::nan(""), 0), InputError);
  EXPECT_THROW(eval::prior_shift(base, -0.5, 0), InputError);
  EXPECT_THROW(eval::concept_shift(base, 1.5, 0), InputError);
  EXPECT_THROW(eval::concept_shift(base, -0.1, 0), InputError);
  const auto unlabelled =
      data::tensor_dataset(torch::rand({3, 1, 4, 4}), torch::tensor({0, -1, 1}, torch::kInt64));
  EXPECT_THROW(eval::prior_shift(unlabelled, 1, 0), InputError);
  EXPECT_THROW(eval::concept_shift(unlabelled, 0.5, 0), InputError);
  const auto one_class =
      data::tensor_dataset(torch::rand({3, 1, 4, 4}), torch::zeros({3}, torch::kInt64));
  EXPECT_THROW(eval::concept_shift(one_class, 0.5, 0), InputError);
}
