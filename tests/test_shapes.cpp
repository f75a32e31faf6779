#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "mmkt/core/error.h"
#include "mmkt/data/shapes.h"
#include "mmkt/io/files.h"

using namespace mmkt;
using namespace mmkt::data;

namespace {

ShapesOptions opts(int level, std::int64_t size = 500, std::uint64_t seed = 7) {
  ShapesOptions o;
  o.level = level;
  o.size = size;
  o.seed = seed;
  return o;
}

ShapeFactors make(int shape, int size, int colour, int position, int background) {
  ShapeFactors f;
  f.shape = shape;
  f.size = size;
  f.colour = colour;
  f.position = position;
  f.background = background;
  return f;
}

int value(const std::string& factor, const std::string& name) {
  const int v = shapes_value_index(shapes_factor_index(factor), name);
  EXPECT_GE(v, 0) << factor << "=" << name;
  return v;
}

std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> out;
  std::string w;
  for (char c : text) {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      w += c;
    } else if (!w.empty()) {
      out.push_back(w);
      w.clear();
    }
  }
  if (!w.empty()) out.push_back(w);
  return out;
}

// Every word that names a value of each factor in the caption grammar.
const std::vector<std::set<std::string>> kFactorWords = {
    {"square", "circle", "disc", "triangle", "heart", "star"},
    {"small", "tiny", "little", "big", "large", "huge"},
    {"red", "green", "blue", "yellow", "purple", "violet", "white"},
    {"top", "upper", "bottom", "lower", "left", "right", "centre", "center", "middle"},
    {"black", "dark", "plain", "noise", "noisy", "grainy", "stripes", "striped", "stripy",
     "checkered", "checkerboard", "chequered", "checker", "background", "pattern"}};

// Bounding box and count of the pixels that are not (near) black.
struct Blob {
  cv::Rect box;
  int pixels = 0;
  cv::Point2d centroid;
};
Blob blob_of(const cv::Mat& bgr, int threshold = 40) {
  cv::Mat gray;
  cv::Mat channels[3];
  cv::split(bgr, channels);
  cv::max(channels[0], channels[1], gray);
  cv::max(gray, channels[2], gray);
  cv::Mat mask = gray > threshold;
  Blob b;
  b.pixels = cv::countNonZero(mask);
  if (b.pixels == 0) return b;
  std::vector<cv::Point> pts;
  cv::findNonZero(mask, pts);
  b.box = cv::boundingRect(pts);
  const cv::Moments m = cv::moments(mask, true);
  b.centroid = {m.m10 / m.m00, m.m01 / m.m00};
  return b;
}

std::string temp_dir(const std::string& tag) {
  auto dir = std::filesystem::temp_directory_path() /
             ("mmkt_test_shapes_" + tag + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir.string();
}

}  // namespace

TEST(ShapesDataset, DeterministicPerSeedAndIndexWhateverTheAccessOrder) {
  const ShapesDataset a(opts(5)), b(opts(5)), c(opts(5, 500, 8));
  std::vector<torch::Tensor> forward;
  for (int i = 0; i < 50; ++i) forward.push_back(a.get(i).image);
  for (int i = 49; i >= 0; --i) {  // reverse order, other instance
    const Sample s = b.get(i);
    EXPECT_TRUE(torch::equal(s.image, forward[i])) << i;
    EXPECT_EQ(s.caption, a.get(i).caption);
    EXPECT_EQ(s.label, a.get(i).label);
    EXPECT_TRUE(torch::equal(s.attributes, a.get(i).attributes));
  }
  int different = 0, different_labels = 0;
  for (int i = 0; i < 50; ++i) {
    different += !torch::equal(c.get(i).image, forward[i]);
    different_labels += c.get(i).label != a.get(i).label;
  }
  EXPECT_EQ(different, 50);
  EXPECT_GT(different_labels, 40);
  // The dataset size does not change item i (it only depends on seed and index).
  const ShapesDataset longer(opts(5, 5000));
  EXPECT_TRUE(torch::equal(longer.get(17).image, forward[17]));
}

TEST(ShapesDataset, ImageShapeDtypeRangeAndInfo) {
  const ShapesDataset d(opts(3));
  const Sample s = d.get(3);
  EXPECT_EQ(s.image.sizes(), (std::vector<std::int64_t>{3, 64, 64}));
  EXPECT_EQ(s.image.dtype(), torch::kFloat32);
  EXPECT_EQ(s.attributes.dtype(), torch::kFloat32);
  EXPECT_EQ(s.attributes.size(0), 5 + 2 + 6);
  for (int i = 0; i < 50; ++i) {
    const auto img = d.get(i).image;
    EXPECT_GE(img.min().item<float>(), 0.0f);
    EXPECT_LE(img.max().item<float>(), 1.0f);
    EXPECT_GT(img.max().item<float>(), 0.5f);  // a bright shape is there
  }
  const auto& info = d.info();
  EXPECT_EQ(info.name, "shapes-l3");
  EXPECT_EQ(info.image_shape, (std::vector<std::int64_t>{3, 64, 64}));
  EXPECT_EQ(info.class_names.size(), 60u);
  EXPECT_EQ(info.attribute_names.size(), 13u);
  EXPECT_EQ(info.attribute_names[0], "shape=square");
  EXPECT_EQ(info.attribute_names[5], "size=small");
  EXPECT_EQ(info.attribute_names[12], "colour=white");
  EXPECT_TRUE(info.has_captions);

  ShapesOptions o = opts(5);
  o.image_size = 32;
  const ShapesDataset small(o);
  EXPECT_EQ(small.get(0).image.sizes(), (std::vector<std::int64_t>{3, 32, 32}));
  EXPECT_EQ(small.info().class_names.size(), 5u * 2 * 6 * 9 * 4);
  EXPECT_EQ(small.info().attribute_names.size(), 26u);
  EXPECT_EQ(small.info().attribute_names[25], "background=checker");
  EXPECT_EQ(small.info().attribute_names[13], "position=top left");
}

TEST(ShapesDataset, LabelIsMixedRadixWithShapeSlowest) {
  const ShapeFactors f =
      make(value("shape", "heart"), value("size", "small"), value("colour", "red"),
           value("position", "top left"), value("background", "stripes"));
  EXPECT_EQ(shapes_label(f, 5), (((3 * 2 + 0) * 6 + 0) * 9 + 0) * 4 + 2);
  EXPECT_EQ(shapes_label(f, 4), ((3 * 2 + 0) * 6 + 0) * 9 + 0);
  EXPECT_EQ(shapes_label(f, 1), 3);
  EXPECT_EQ(shapes_class_name(f, 5), "small red heart top left on stripes");
  EXPECT_EQ(shapes_class_name(f, 4), "small red heart top left");
  EXPECT_EQ(shapes_class_name(f, 2), "small heart");
  EXPECT_EQ(shapes_class_name(f, 1), "heart");
  for (int level = 1; level <= 5; ++level) {
    for (std::int64_t label = 0; label < shapes_num_classes(level); ++label) {
      const ShapeFactors g = shapes_factors_from_label(label, level);
      ASSERT_EQ(shapes_label(g, level), label);
      if (level > 1) {
        const auto radix = static_cast<std::int64_t>(shapes_factor_values(level - 1).size());
        ASSERT_EQ(shapes_label(g, level - 1), label / radix);
      }
    }
  }
  EXPECT_EQ(shapes_num_classes(5), 2160);
  // Inactive factors take the fixed values.
  const ShapeFactors g = shapes_factors_from_label(7, 2);
  EXPECT_EQ(g.shape, 3);
  EXPECT_EQ(g.size, 1);
  EXPECT_EQ(shapes_factor_values(2)[g.colour], "white");
  EXPECT_EQ(shapes_factor_values(3)[g.position], "centre");
  EXPECT_EQ(shapes_factor_values(4)[g.background], "black");
}

TEST(ShapesDataset, AttributesAreOneHotGroupsConsistentWithLabelAndFactors) {
  for (int level = 1; level <= 5; ++level) {
    const ShapesDataset d(opts(level, 300));
    const auto& names = d.info().attribute_names;
    std::vector<std::int64_t> idx;
    for (int i = 0; i < 300; ++i) idx.push_back(i);
    const auto batch_attrs = d.attributes(idx);
    const auto batch_labels = d.labels(idx);
    const auto batch_captions = d.captions(idx);
    for (int i = 0; i < 300; ++i) {
      const Sample s = d.get(i);
      const ShapeFactors f = d.factors(i);
      ASSERT_EQ(s.attributes.size(0), static_cast<std::int64_t>(names.size()));
      int offset = 0;
      for (int k = 0; k < level; ++k) {
        const int n = static_cast<int>(shapes_factor_values(k).size());
        const auto group = s.attributes.slice(0, offset, offset + n);
        ASSERT_EQ(group.sum().item<float>(), 1.0f) << "level " << level << " factor " << k;
        const int hot = static_cast<int>(group.argmax().item<std::int64_t>());
        ASSERT_EQ(hot, f.get(k));
        ASSERT_EQ(names[offset + hot],
                  shapes_factor_names()[k] + "=" + shapes_factor_values(k)[f.get(k)]);
        offset += n;
      }
      ASSERT_EQ(offset, s.attributes.size(0));
      ASSERT_TRUE(((s.attributes == 0) | (s.attributes == 1)).all().item<bool>());
      ASSERT_EQ(s.label, shapes_label(f, level));
      ASSERT_EQ(shapes_factors_from_label(s.label, level), f);
      ASSERT_EQ(d.info().class_names[s.label], shapes_class_name(f, level));
      ASSERT_TRUE(torch::equal(batch_attrs[i], s.attributes));
      ASSERT_EQ(batch_labels[i].item<std::int64_t>(), s.label);
      ASSERT_EQ(batch_captions[i], s.caption);
    }
  }
}

TEST(ShapesDataset, LevelVariesExactlyTheIntendedFactors) {
  const std::array<int, 5> fixed = {-1, value("size", "big"), value("colour", "white"),
                                    value("position", "centre"), value("background", "black")};
  for (int level = 1; level <= 5; ++level) {
    const ShapesDataset d(opts(level, 500, 100 + level));
    std::array<std::set<int>, 5> seen;
    for (int i = 0; i < 500; ++i) {
      const ShapeFactors f = d.factors(i);
      for (int k = 0; k < 5; ++k) seen[k].insert(f.get(k));
    }
    for (int k = 0; k < 5; ++k) {
      if (k < level) {
        EXPECT_EQ(seen[k].size(), shapes_factor_values(k).size())
            << "level " << level << " factor " << shapes_factor_names()[k];
      } else {
        ASSERT_EQ(seen[k].size(), 1u) << "level " << level << " factor " << k;
        EXPECT_EQ(*seen[k].begin(), fixed[k]);
      }
    }
  }
}

TEST(ShapesHoldout, TrainNeverAndHeldOutAlwaysMatch) {
  const ShapesHoldout red_hearts = {{{"colour", "red"}, {"shape", "heart"}}};
  const int red = value("colour", "red"), heart = value("shape", "heart");
  ShapesOptions o = opts(3, 2000);
  o.holdout = red_hearts;
  o.split = ShapesSplit::kTrain;
  const ShapesDataset train(o);
  int other_hearts = 0, other_reds = 0;
  for (int i = 0; i < 2000; ++i) {
    const ShapeFactors f = train.factors(i);
    ASSERT_FALSE(f.colour == red && f.shape == heart) << i;
    other_hearts += f.shape == heart;
    other_reds += f.colour == red;
  }
  EXPECT_GT(other_hearts, 200);  // only the combination is held out, not its parts
  EXPECT_GT(other_reds, 200);
  EXPECT_EQ(train.allowed_labels().size(), 58u);

  o.split = ShapesSplit::kHeldOut;
  const ShapesDataset held(o);
  std::set<int> sizes;
  for (int i = 0; i < 2000; ++i) {
    const ShapeFactors f = held.factors(i);
    ASSERT_TRUE(f.colour == red && f.shape == heart) << i;
    sizes.insert(f.size);
  }
  EXPECT_EQ(sizes.size(), 2u);

  o.split = ShapesSplit::kAll;  // ignores the holdout
  const ShapesDataset all(o);
  int matches = 0;
  for (int i = 0; i < 2000; ++i) matches += shapes_matches_holdout(all.factors(i), red_hearts);
  EXPECT_GT(matches, 30);  // expected 2000/30 ~= 67
  EXPECT_LT(matches, 120);

  // The default holdout at level 5: both combinations show up in held-out, none in train.
  ShapesOptions o5 = opts(5, 1000);
  o5.holdout = default_shapes_holdout(5);
  o5.split = ShapesSplit::kHeldOut;
  const ShapesDataset held5(o5);
  std::set<std::string> kinds;
  for (int i = 0; i < 1000; ++i) {
    const ShapeFactors f = held5.factors(i);
    ASSERT_TRUE(shapes_matches_holdout(f, o5.holdout));
    kinds.insert(shapes_factor_values(2)[f.colour] + " " + shapes_factor_values(0)[f.shape]);
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"red heart", "blue star"}));
  o5.split = ShapesSplit::kTrain;
  const ShapesDataset train5(o5);
  for (int i = 0; i < 1000; ++i)
    ASSERT_FALSE(shapes_matches_holdout(train5.factors(i), o5.holdout));
}

TEST(ShapesHoldout, DefaultsAreValidAtEveryLevel) {
  EXPECT_TRUE(default_shapes_holdout(1).empty());
  EXPECT_EQ(default_shapes_holdout(2).size(), 1u);
  EXPECT_EQ(default_shapes_holdout(3).size(), 2u);
  for (int level = 2; level <= 5; ++level) {
    ShapesOptions o = opts(level, 100);
    o.holdout = default_shapes_holdout(level);
    for (auto split : {ShapesSplit::kAll, ShapesSplit::kTrain, ShapesSplit::kHeldOut}) {
      o.split = split;
      EXPECT_NO_THROW(ShapesDataset{o}) << "level " << level;
    }
  }
  EXPECT_EQ(parse_shapes_split("held-out"), ShapesSplit::kHeldOut);
  EXPECT_EQ(parse_shapes_split(to_string(ShapesSplit::kTrain)), ShapesSplit::kTrain);
  EXPECT_THROW(parse_shapes_split("validation"), InputError);
}

TEST(ShapesHoldout, BadOptionsAreInputErrorsNamingTheProblem) {
  auto message = [](const ShapesOptions& o) -> std::string {
    try {
      ShapesDataset d(o);
    } catch (const InputError& e) {
      return e.what();
    }
    return "";
  };
  ShapesOptions o = opts(0);
  EXPECT_NE(message(o).find("level"), std::string::npos);
  o.level = 6;
  EXPECT_NE(message(o).find("level"), std::string::npos);
  o = opts(3, 0);
  EXPECT_NE(message(o).find("size"), std::string::npos);
  o = opts(3);
  o.image_size = 8;
  EXPECT_NE(message(o).find("image_size"), std::string::npos);

  o = opts(2);
  o.holdout = {{{"colour", "red"}}};  // colour is not varied at level 2
  const std::string inactive = message(o);
  EXPECT_NE(inactive.find("'colour'"), std::string::npos) << inactive;
  EXPECT_NE(inactive.find("level 2"), std::string::npos) << inactive;
  o = opts(5);
  o.holdout = {{{"texture", "stripes"}}};
  EXPECT_NE(message(o).find("'texture'"), std::string::npos);
  o.holdout = {{{"colour", "orange"}}};
  EXPECT_NE(message(o).find("'orange'"), std::string::npos);
  o.holdout = {{}};
  EXPECT_NE(message(o).find("empty"), std::string::npos);
  o.holdout.clear();
  o.split = ShapesSplit::kHeldOut;
  EXPECT_NE(message(o).find("held-out"), std::string::npos);
  o = opts(1);
  o.holdout = {{{"shape", "square"}},
               {{"shape", "circle"}},
               {{"shape", "triangle"}},
               {{"shape", "heart"}},
               {{"shape", "star"}}};
  o.split = ShapesSplit::kTrain;
  EXPECT_NE(message(o).find("every combination"), std::string::npos);
  o.split = ShapesSplit::kAll;
  EXPECT_EQ(message(o), "");
}

TEST(ShapesCaption, ParserRecoversTheFactorsOfRandomItems) {
  for (int level : {5, 3}) {
    const ShapesDataset d(opts(level, 2000, 11));
    for (int i = 0; i < 2000; ++i) {
      const Sample s = d.get(i);
      const auto parsed = parse_shapes_caption(s.caption, level);
      ASSERT_TRUE(parsed.has_value()) << "level " << level << ": '" << s.caption << "'";
      ASSERT_EQ(*parsed, d.factors(i)) << "level " << level << ": '" << s.caption << "' parsed as "
                                       << shapes_describe(*parsed, level);
    }
  }
}

TEST(ShapesCaption, ParserRecoversEveryParaphraseOfEveryClass) {
  // Every class at every level, 40 variants each: covers every template and synonym.
  std::set<std::string> seen;
  for (int level = 1; level <= 5; ++level) {
    for (std::int64_t label = 0; label < shapes_num_classes(level); ++label) {
      const ShapeFactors f = shapes_factors_from_label(label, level);
      const std::string canonical = shapes_class_description(f, level);
      ASSERT_EQ(parse_shapes_caption(canonical, level), f) << canonical;
      for (std::uint64_t v = 0; v < 40; ++v) {
        const std::string c = shapes_caption(f, level, v * 0x9E3779B97F4A7C15ULL + label);
        seen.insert(c);
        const auto parsed = parse_shapes_caption(c, level);
        ASSERT_TRUE(parsed.has_value()) << "level " << level << ": '" << c << "'";
        ASSERT_EQ(*parsed, f) << "level " << level << ": '" << c << "'";
        // Words of the inactive factors never appear.
        for (const auto& w : words(c))
          for (int k = level; k < 5; ++k)
            ASSERT_EQ(kFactorWords[k].count(w), 0u) << "level " << level << ": '" << c << "'";
      }
    }
  }
  EXPECT_GT(seen.size(), 20000u);
}

TEST(ShapesCaption, ParaphrasesVaryTemplateAndWordOrder) {
  const ShapeFactors f =
      make(value("shape", "heart"), value("size", "small"), value("colour", "red"),
           value("position", "top left"), value("background", "stripes"));
  for (int level : {4, 5}) {
    std::set<std::string> captions, skeletons;
    bool position_first = false, shape_first = false, background_first = false;
    for (std::uint64_t v = 0; v < 400; ++v) {
      const std::string c = shapes_caption(f, level, v);
      EXPECT_EQ(c, shapes_caption(f, level, v));  // deterministic
      captions.insert(c);
      // The template skeleton: the caption without the words that name factor values.
      std::string skeleton;
      for (const auto& w : words(c)) {
        bool factor_word = false;
        for (const auto& group : kFactorWords) factor_word |= group.count(w) > 0;
        if (!factor_word) skeleton += w + " ";
      }
      skeletons.insert(skeleton);
      const auto first = words(c).front();
      position_first |= first == "top" || first == "upper" || first == "in" || first == "at";
      shape_first |= c.rfind("a red heart", 0) == 0 || c.rfind("a heart", 0) == 0;
      background_first |= first == "on" || first == "against" || first == "over";
    }
    EXPECT_GE(skeletons.size(), 8u) << "level " << level;
    EXPECT_GE(captions.size(), 30u) << "level " << level;
    EXPECT_TRUE(position_first);
    EXPECT_TRUE(shape_first);
    EXPECT_EQ(background_first, level == 5);
  }
  // Level 1 still paraphrases.
  std::set<std::string> level1;
  for (std::uint64_t v = 0; v < 200; ++v) level1.insert(shapes_caption(make(3, 1, 5, 4, 0), 1, v));
  EXPECT_GE(level1.size(), 5u);
  EXPECT_EQ(shapes_class_description(f, 5),
            "a small red heart in the top left corner on a striped background");
}

TEST(ShapesCaption, ParserHandlesFreeTextAndRejectsMissingOrConflictingFactors) {
  const auto p = parse_shapes_caption("Top-Left: A TINY Red Heart!", 4);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(*p, make(3, 0, 0, 0, 0));
  EXPECT_EQ(parse_shapes_caption("a large violet disc at the centre right over stripes", 5),
            make(1, 1, 4, 5, 2));
  EXPECT_EQ(parse_shapes_caption("a big white star in the middle", 4), make(4, 1, 5, 4, 0));
  EXPECT_EQ(parse_shapes_caption("bottom: a little green triangle", 4), make(2, 0, 1, 7, 0));
  // Inactive factors are ignored, and get their fixed values.
  EXPECT_EQ(parse_shapes_caption("a small red heart top left", 2), make(3, 0, 5, 4, 0));
  EXPECT_FALSE(parse_shapes_caption("a shape", 1).has_value());
  EXPECT_FALSE(parse_shapes_caption("a small heart", 3).has_value());           // no colour
  EXPECT_FALSE(parse_shapes_caption("a small red blue heart", 3).has_value());  // conflict
  EXPECT_FALSE(parse_shapes_caption("a heart and a star", 1).has_value());
  EXPECT_FALSE(parse_shapes_caption("a small red heart", 4).has_value());  // no position
  EXPECT_FALSE(parse_shapes_caption("a small red heart top bottom", 4).has_value());
  EXPECT_FALSE(parse_shapes_caption("a small red heart at the top", 5).has_value());  // no bg
  EXPECT_FALSE(parse_shapes_caption("", 1).has_value());
}

TEST(ShapesRender, ColourDominatesTheRightChannelOnBlack) {
  const std::map<std::string, int> channel = {{"red", 2}, {"green", 1}, {"blue", 0}};  // BGR
  for (const auto& [name, ch] : channel) {
    for (int shape = 0; shape < 5; ++shape) {
      const ShapeFactors f = make(shape, 1, value("colour", name), 4, 0);
      const cv::Mat img = render_shapes_image(f, 64, 3);
      ASSERT_EQ(img.type(), CV_8UC3);
      ASSERT_EQ(img.size(), cv::Size(64, 64));
      const Blob b = blob_of(img);
      ASSERT_GT(b.pixels, 50) << name << " " << shape;
      const cv::Scalar mean = cv::mean(img(b.box));
      for (int other = 0; other < 3; ++other) {
        if (other != ch) {
          EXPECT_GT(mean[ch], 2.5 * mean[other]) << name << " shape " << shape << " " << mean;
        }
      }
      EXPECT_GT(mean[ch], 60) << name;  // the box includes black corners (star, triangle)
    }
  }
  // The dataset's tensor is RGB: a red item has its mass in channel 0.
  const ShapesDataset d(opts(3, 500));
  int checked = 0;
  for (int i = 0; i < 500 && checked < 5; ++i) {
    if (d.factors(i).colour != value("colour", "red")) continue;
    const auto img = d.get(i).image;
    EXPECT_GT(img[0].sum().item<float>(), 3 * img[2].sum().item<float>());
    ++checked;
  }
  EXPECT_EQ(checked, 5);
}

TEST(ShapesRender, BigShapesCoverMorePixelsAndPositionsLandInTheirCell) {
  for (int shape = 0; shape < 5; ++shape) {
    for (std::uint64_t seed : {1u, 2u, 3u}) {
      const Blob big = blob_of(render_shapes_image(make(shape, 1, 5, 4, 0), 64, seed));
      const Blob small = blob_of(render_shapes_image(make(shape, 0, 5, 4, 0), 64, seed));
      EXPECT_GT(big.pixels, 2 * small.pixels) << "shape " << shape;
      EXPECT_GT(small.pixels, 30) << "shape " << shape;
      // Shapes are compact, so they fit in their grid cell.
      EXPECT_LE(std::max(big.box.width, big.box.height), 24) << "shape " << shape;
    }
    for (int position = 0; position < 9; ++position) {
      const Blob b = blob_of(render_shapes_image(make(shape, 1, 0, position, 0), 64, 9));
      EXPECT_EQ(static_cast<int>(b.centroid.x / (64 / 3.0)), position % 3)
          << shape << " " << position;
      EXPECT_EQ(static_cast<int>(b.centroid.y / (64 / 3.0)), position / 3)
          << shape << " " << position;
      // Nothing is cut off at the border.
      EXPECT_GT(b.box.x, 0);
      EXPECT_GT(b.box.y, 0);
      EXPECT_LT(b.box.x + b.box.width, 64);
      EXPECT_LT(b.box.y + b.box.height, 64);
    }
  }
}

TEST(ShapesRender, ShapesAreDistinguishableByFill) {
  // The share of the bounding box the shape fills tells the outlines apart: square ~1,
  // circle ~pi/4, heart and triangle ~0.5-0.65, star lowest.
  std::array<double, 5> fill{};
  for (int shape = 0; shape < 5; ++shape) {
    const cv::Mat img = render_shapes_image(make(shape, 1, 5, 4, 0), 128, 0);
    const Blob b = blob_of(img, 127);
    fill[shape] = static_cast<double>(b.pixels) / b.box.area();
  }
  EXPECT_GT(fill[0], 0.8);                  // square
  EXPECT_NEAR(fill[1], 3.14159 / 4, 0.06);  // circle
  EXPECT_NEAR(fill[2], 0.5, 0.08);          // triangle
  EXPECT_GT(fill[3], fill[2]);              // heart
  EXPECT_LT(fill[3], fill[1]);
  EXPECT_LT(fill[4], fill[2]);  // star
}

TEST(ShapesRender, BackgroundsAreDistinctDarkTexturesAndJitterVariesItems) {
  const ShapeFactors base = make(0, 0, 0, 0, 0);
  std::vector<double> stddev;
  for (int bg = 0; bg < 4; ++bg) {
    ShapeFactors f = base;
    f.background = bg;
    const cv::Mat img = render_shapes_image(f, 64, 5);
    // The bottom right quarter holds only background.
    const cv::Mat corner = img(cv::Rect(40, 40, 24, 24));
    double lo = 0, hi = 0;
    cv::minMaxLoc(corner.reshape(1), &lo, &hi);
    EXPECT_LE(hi, 90) << "background " << bg << " must stay dark";
    cv::Scalar mean, sd;
    cv::meanStdDev(corner.reshape(1), mean, sd);
    stddev.push_back(sd[0]);
  }
  EXPECT_EQ(stddev[0], 0.0);  // plain black
  for (int bg = 1; bg < 4; ++bg) EXPECT_GT(stddev[bg], 5.0) << bg;

  // Same class, different jitter: not byte-identical, but the same shape at the same place.
  const ShapeFactors f = make(3, 1, 2, 4, 2);
  const cv::Mat a = render_shapes_image(f, 64, 1), b = render_shapes_image(f, 64, 2);
  EXPECT_GT(cv::norm(a, b, cv::NORM_L1), 0.0);
  EXPECT_EQ(cv::norm(a, render_shapes_image(f, 64, 1), cv::NORM_L1), 0.0);
  EXPECT_THROW(render_shapes_image(f, 8, 1), InputError);
}

TEST(ShapesWrite, WritesPngsManifestAndClasses) {
  const std::string dir = temp_dir("write");
  ShapesOptions o = opts(5, 20, 3);
  o.holdout = default_shapes_holdout(5);
  o.split = ShapesSplit::kTrain;
  write_shapes(o, dir);
  const ShapesDataset d(o);

  int pngs = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/images"))
    pngs += e.path().extension() == ".png";
  EXPECT_EQ(pngs, 20);

  std::istringstream manifest(io::read_file(dir + "/manifest.jsonl"));
  std::string line;
  int n = 0;
  while (std::getline(manifest, line)) {
    const auto j = nlohmann::json::parse(line);
    char name[32];
    std::snprintf(name, sizeof(name), "images/%06d.png", n);
    EXPECT_EQ(j.at("image").get<std::string>(), name);
    const cv::Mat img = cv::imread(dir + "/" + name, cv::IMREAD_COLOR);
    ASSERT_FALSE(img.empty()) << name;
    EXPECT_EQ(img.size(), cv::Size(64, 64));
    EXPECT_EQ(cv::norm(img, d.image_bgr(n), cv::NORM_L1), 0.0) << "PNG is lossless";
    const Sample s = d.get(n);
    EXPECT_EQ(j.at("text").get<std::string>(), s.caption);
    EXPECT_EQ(j.at("label").get<std::int64_t>(), s.label);
    EXPECT_EQ(j.at("class").get<std::string>(), d.info().class_names[s.label]);
    const auto attrs = j.at("attributes").get<std::vector<int>>();
    ASSERT_EQ(attrs.size(), 26u);
    for (int k = 0; k < 26; ++k)
      EXPECT_EQ(attrs[k], static_cast<int>(s.attributes[k].item<float>()));
    ++n;
  }
  EXPECT_EQ(n, 20);

  const auto classes = nlohmann::json::parse(io::read_file(dir + "/classes.json"));
  EXPECT_EQ(classes.at("class_names").size(), 2160u);
  EXPECT_EQ(classes.at("attribute_names").size(), 26u);
  EXPECT_EQ(classes.at("options").at("split"), "train");
  EXPECT_EQ(classes.at("options").at("holdout").size(), 2u);
  EXPECT_EQ(classes.at("options").at("size"), 20);
  std::filesystem::remove_all(dir);
}

TEST(ShapesSpeed, GetIsFast) {
  const ShapesDataset d(opts(5, 4000));
  for (int i = 0; i < 100; ++i) d.get(i);  // warm-up
  const auto t0 = std::chrono::steady_clock::now();
  double checksum = 0;
  for (int i = 0; i < 4000; ++i) checksum += d.get(i).label;
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const double per_item = ms / 4000;
  std::printf("[ shapes ] get(i) 64x64 level 5: %.4f ms per item (checksum %.0f)\n", per_item,
              checksum);
  EXPECT_LT(per_item, 1.0);  // target 0.2 ms; loose here so that a loaded machine passes
}

// Writes a contact sheet of 25 level-5 items with their captions to $MMKT_SHAPES_SHEET (default
// /tmp/shapes_sheet.png). Run with --gtest_also_run_disabled_tests to look at the data.
TEST(ShapesRender, DISABLED_ContactSheet) {
  const char* env = std::getenv("MMKT_SHAPES_SHEET");
  const std::string path = env ? env : "/tmp/shapes_sheet.png";
  const int cell = 192, cols = 5;
  const ShapesDataset d(opts(5, 25, 42));
  cv::Mat sheet(cell * 5 + 5 * 40, cell * cols, CV_8UC3, cv::Scalar(255, 255, 255));
  for (int i = 0; i < 25; ++i) {
    cv::Mat big;
    cv::resize(d.image_bgr(i), big, cv::Size(cell - 8, cell - 8), 0, 0, cv::INTER_NEAREST);
    const int x = (i % cols) * cell, y = (i / cols) * (cell + 40);
    big.copyTo(sheet(cv::Rect(x + 4, y + 4, cell - 8, cell - 8)));
    const std::string cls = d.info().class_names[d.get(i).label];
    cv::putText(sheet, cls, {x + 4, y + cell + 10}, cv::FONT_HERSHEY_PLAIN, 0.75, {0, 0, 0});
    // The caption, wrapped at word boundaries.
    std::string line;
    int row = 1;
    for (const auto& w : words(d.get(i).caption + " ")) {
      if (!line.empty() && line.size() + w.size() + 1 > 28) {
        cv::putText(sheet, line, {x + 4, y + cell + 10 + 10 * row++}, cv::FONT_HERSHEY_PLAIN, 0.7,
                    {90, 90, 90});
        line.clear();
      }
      line += (line.empty() ? "" : " ") + w;
    }
    cv::putText(sheet, line, {x + 4, y + cell + 10 + 10 * row}, cv::FONT_HERSHEY_PLAIN, 0.7,
                {90, 90, 90});
  }
  ASSERT_TRUE(cv::imwrite(path, sheet));
}
