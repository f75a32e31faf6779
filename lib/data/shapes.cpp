#include "mmkt/data/shapes.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <initializer_list>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <utility>

#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/core/random.h"
#include "mmkt/core/runtime.h"
#include "mmkt/io/files.h"

namespace mmkt::data {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Fixed values of inactive factors (ShapeFactors' defaults).
constexpr std::array<int, kShapesNumFactors> kFixed = {0, 1, 5, 4, 0};

const std::vector<std::vector<std::string>>& value_table() {
  static const std::vector<std::vector<std::string>> table = {
      {"square", "circle", "triangle", "heart", "star"},
      {"small", "big"},
      {"red", "green", "blue", "yellow", "purple", "white"},
      {"top left", "top", "top right", "left", "centre", "right", "bottom left", "bottom",
       "bottom right"},
      {"black", "noise", "stripes", "checker"},
  };
  return table;
}

int radix(int factor) { return static_cast<int>(value_table()[factor].size()); }

void check_level(int level) {
  MMKT_CHECK_INPUT(level >= 1 && level <= kShapesMaxLevel, "shapes: level must be in 1..",
                   kShapesMaxLevel, ", got ", level);
}

// ---------------------------------------------------------------------------------------------
// Caption grammar. Every word that names a factor value is in kVocabulary below, so the parser
// recovers the factors of every caption; the other words ("there", "placed", "corner", ...)
// never name a value.

// Picks a synonym at random, or always the first one (canonical descriptions).
struct Chooser {
  SplitMix* rng;  // nullptr: canonical
  const std::string& pick(const std::vector<std::string>& options) const {
    return options[rng ? rng->below(static_cast<int>(options.size())) : 0];
  }
  int below(int n) const {
    return rng ? static_cast<int>(rng->below(static_cast<std::uint64_t>(n))) : 0;
  }
};

const std::vector<std::vector<std::string>> kSizeWords = {{"small", "tiny", "little"},
                                                          {"big", "large", "huge"}};
const std::vector<std::vector<std::string>> kColourWords = {
    {"red"}, {"green"}, {"blue"}, {"yellow"}, {"purple", "violet"}, {"white"}};
const std::vector<std::vector<std::string>> kShapeWords = {
    {"square"}, {"circle", "disc"}, {"triangle"}, {"heart"}, {"star"}};
// Background as a prepositional phrase and as a bare noun phrase.
const std::vector<std::vector<std::string>> kBackgroundPhrases = {
    {"on a black background", "on plain black", "against a plain black background",
     "on a dark background"},
    {"on a noisy background", "on noise", "against a grainy background", "over random noise"},
    {"on a striped background", "on stripes", "against a stripy background",
     "over diagonal stripes"},
    {"on a checkered background", "on a checkerboard", "against a chequered pattern",
     "over a checker pattern"}};
const std::vector<std::vector<std::string>> kBackgroundBare = {
    {"black background", "plain black"},
    {"noisy background", "noise"},
    {"striped background", "stripes"},
    {"checkered background", "checkerboard"}};

// Position as a prepositional phrase ("in the top left corner") or bare ("top left").
std::string position_phrase(int position, const Chooser& choose, bool bare) {
  const int row = position / 3, col = position % 3;
  static const std::vector<std::string> kTop = {"top", "upper"}, kBottom = {"bottom", "lower"};
  if (row != 1 && col != 1) {
    const std::string v = choose.pick(row == 0 ? kTop : kBottom);
    const std::string h = col == 0 ? "left" : "right";
    if (bare) return v + " " + h;
    switch (choose.below(3)) {
      case 0:
        return "in the " + v + " " + h + " corner";
      case 1:
        return "at the " + v + " " + h;
      default:
        return "in the " + v + " " + h;
    }
  }
  if (row != 1) {
    static const std::vector<std::string> kTopPp = {"at the top", "along the top edge",
                                                    "near the top", "in the upper middle"};
    static const std::vector<std::string> kBottomPp = {"at the bottom", "along the bottom edge",
                                                       "near the bottom", "in the lower middle"};
    static const std::vector<std::string> kTopBare = {"top", "top centre", "upper middle"};
    static const std::vector<std::string> kBottomBare = {"bottom", "bottom centre", "lower middle"};
    if (bare) return choose.pick(row == 0 ? kTopBare : kBottomBare);
    return choose.pick(row == 0 ? kTopPp : kBottomPp);
  }
  if (col != 1) {
    const std::string h = col == 0 ? "left" : "right";
    if (bare) {
      switch (choose.below(3)) {
        case 0:
          return h;
        case 1:
          return "centre " + h;
        default:
          return "middle " + h;
      }
    }
    switch (choose.below(4)) {
      case 0:
        return "on the " + h;
      case 1:
        return "at the " + h + " edge";
      case 2:
        return "on the " + h + " side";
      default:
        return "at the centre " + h;
    }
  }
  static const std::vector<std::string> kCentrePp = {"in the centre", "in the middle",
                                                     "at the center", "in the centre of the image"};
  static const std::vector<std::string> kCentreBare = {"centre", "middle", "center"};
  return choose.pick(bare ? kCentreBare : kCentrePp);
}

// Joins the non-empty parts with `sep`.
std::string join_nonempty(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

constexpr int kNumTemplates = 13;

// The lowest level template `t` fits: templates 4-6 need the position, 7 and 9 the size, 8 the
// background, 10 the colour (6 needs size, colour and position).
bool template_fits(int t, int level) {
  static constexpr std::array<int, kNumTemplates> kMinLevel = {1, 1, 1, 1, 4, 4, 4,
                                                               2, 5, 2, 3, 1, 1};
  return level >= kMinLevel[t];
}

// Template `t` (0..kNumTemplates-1) for the active factors; "" when the template does not fit
// the level (it needs a factor that is not active).
std::string caption_from_template(int t, const ShapeFactors& f, int level, const Chooser& choose) {
  const bool has_size = level >= 2, has_colour = level >= 3, has_pos = level >= 4,
             has_bg = level >= 5;
  const std::string shape = choose.pick(kShapeWords[f.shape]);
  const std::string size = has_size ? choose.pick(kSizeWords[f.size]) : "";
  const std::string colour = has_colour ? choose.pick(kColourWords[f.colour]) : "";
  const std::string pos_pp = has_pos ? position_phrase(f.position, choose, false) : "";
  const std::string pos_bare = has_pos ? position_phrase(f.position, choose, true) : "";
  const std::string bg_pp = has_bg ? choose.pick(kBackgroundPhrases[f.background]) : "";
  const std::string bg_bare = has_bg ? choose.pick(kBackgroundBare[f.background]) : "";
  const std::string np = join_nonempty({size, colour, shape}, " ");
  const std::string tail = join_nonempty({pos_pp, bg_pp}, " ");
  auto with = [](const std::string& head, const std::string& rest, const std::string& sep) {
    return rest.empty() ? head : head + sep + rest;
  };
  switch (t) {
    case 0:
      return with("a " + np, tail, " ");
    case 1:
      return with("there is a " + np, tail, " ");
    case 2:
      return with("the image shows a " + np, tail, " ");
    case 3:
      return with("a picture of a " + np, tail, " ");
    case 4:
      if (!has_pos) return "";
      return with(pos_bare + ": a " + np, bg_pp, " ");
    case 5:
      if (!has_pos) return "";
      return with(pos_pp + " there is a " + np, bg_pp, " ");
    case 6:
      if (!has_size || !has_colour || !has_pos) return "";
      return with("a " + colour + " " + shape + ", " + size + ", placed " + pos_bare, bg_pp, " ");
    case 7:
      if (!has_size) return "";
      return with("a " + shape + " that is " + join_nonempty({size, colour}, " and "), tail, ", ");
    case 8:
      if (!has_bg) return "";
      return with(bg_pp + ", a " + np, pos_pp, " ");
    case 9:
      if (!has_size) return "";
      return join_nonempty({join_nonempty({colour, shape}, " "), size, pos_bare, bg_bare}, ", ");
    case 10:
      if (!has_colour) return "";
      return with("a " + join_nonempty({size, shape}, " ") + " in " + colour, tail, " ");
    case 11:
      return with("one " + np, tail, " ");
    case 12:
      return with("a single " + np, tail, " ");
    default:
      return "";
  }
}

enum class Word { kValue, kTop, kBottom, kLeft, kRight, kCentre };
struct VocabEntry {
  Word kind;
  int factor = -1;
  int value = -1;
};

// Every word that names a factor value (synonyms and plurals included).
const std::unordered_map<std::string, VocabEntry>& vocabulary() {
  static const std::unordered_map<std::string, VocabEntry> vocab = [] {
    std::unordered_map<std::string, VocabEntry> v;
    auto add = [&](int factor, int value, std::initializer_list<const char*> words) {
      for (const char* w : words) v[w] = VocabEntry{Word::kValue, factor, value};
    };
    add(0, 0, {"square", "squares"});
    add(0, 1, {"circle", "circles", "disc", "discs", "disk"});
    add(0, 2, {"triangle", "triangles"});
    add(0, 3, {"heart", "hearts"});
    add(0, 4, {"star", "stars"});
    add(1, 0, {"small", "tiny", "little"});
    add(1, 1, {"big", "large", "huge"});
    add(2, 0, {"red"});
    add(2, 1, {"green"});
    add(2, 2, {"blue"});
    add(2, 3, {"yellow"});
    add(2, 4, {"purple", "violet"});
    add(2, 5, {"white"});
    add(4, 0, {"black", "dark", "plain"});
    add(4, 1, {"noise", "noisy", "grainy"});
    add(4, 2, {"stripes", "stripe", "striped", "stripy"});
    add(4, 3, {"checker", "checkers", "checkered", "chequered", "checkerboard", "checked"});
    for (const char* w : {"top", "upper"}) v[w] = VocabEntry{Word::kTop};
    for (const char* w : {"bottom", "lower"}) v[w] = VocabEntry{Word::kBottom};
    v["left"] = VocabEntry{Word::kLeft};
    v["right"] = VocabEntry{Word::kRight};
    for (const char* w : {"centre", "center", "middle", "central"})
      v[w] = VocabEntry{Word::kCentre};
    return v;
  }();
  return vocab;
}

// ---------------------------------------------------------------------------------------------
// Rendering. Everything is drawn in RGB order; render_shapes_image converts to BGR.

// Shape colours (RGB), saturated and bright so that they stand out from the dark grey textures.
const std::array<cv::Scalar, 6> kColoursRgb = {cv::Scalar(235, 35, 35),  cv::Scalar(40, 205, 50),
                                               cv::Scalar(45, 90, 255),  cv::Scalar(245, 220, 40),
                                               cv::Scalar(175, 60, 230), cv::Scalar(245, 245, 245)};

// Shape radius as a share of the image side, and the grid: cell centres at 0.22, 0.5, 0.78.
constexpr double kRadiusBig = 0.13, kRadiusSmall = 0.075, kGridStep = 0.28;
constexpr int kShift = 4;  // sub-pixel bits of cv::fillPoly / cv::circle
constexpr double kOne = 1 << kShift;

// The outline of a shape of unit radius around the origin (y down), as a polygon.
const std::vector<cv::Point2d>& unit_outline(int shape) {
  static const std::array<std::vector<cv::Point2d>, 5> outlines = [] {
    std::array<std::vector<cv::Point2d>, 5> o;
    const double h = 0.85;  // square half side
    o[0] = {{-h, -h}, {h, -h}, {h, h}, {-h, h}};
    // o[1] (circle) is drawn with cv::circle.
    // Equilateral triangle pointing up, circumradius 1.15, bounding box centred vertically.
    const double R = 1.15, dy = R / 4.0;
    for (int k = 0; k < 3; ++k) {
      const double a = -kPi / 2 + k * 2 * kPi / 3;
      o[2].push_back({R * std::cos(a), R * std::sin(a) + dy});
    }
    // Heart: the classic parametric curve (two round lobes meeting in a cleft, and a point):
    // x = 16 sin^3 t, y = 13 cos t - 5 cos 2t - 2 cos 3t - cos 4t; y spans [-17, ~12], so it is
    // shifted by 2.5 to centre it and scaled to a half-width of 1.05.
    const int n = 48;
    for (int k = 0; k < n; ++k) {
      const double t = 2 * kPi * k / n;
      const double x = 16 * std::pow(std::sin(t), 3);
      const double y =
          13 * std::cos(t) - 5 * std::cos(2 * t) - 2 * std::cos(3 * t) - std::cos(4 * t);
      o[3].push_back({x * 1.05 / 16, -(y + 2.5) * 1.05 / 16});
    }
    // Five-pointed star, point up: outer radius 1.2, inner 0.48 of it.
    for (int k = 0; k < 10; ++k) {
      const double a = -kPi / 2 + k * kPi / 5;
      const double r = k % 2 == 0 ? 1.2 : 1.2 * 0.48;
      o[4].push_back({r * std::cos(a), r * std::sin(a)});
    }
    return o;
  }();
  return outlines[shape];
}

}  // namespace

namespace detail {
// Background textures of one image size: 2S x 2S RGB, cropped at a random offset per item so
// that the texture phase varies. Built once per size and shared.
struct ShapesTextures {
  int size = 0;
  std::array<cv::Mat, 4> textures;  // CV_8UC3, indexed by background value
};
}  // namespace detail

namespace {

std::shared_ptr<const detail::ShapesTextures> build_textures(int size) {
  auto t = std::make_shared<detail::ShapesTextures>();
  t->size = size;
  const int n = 2 * size;
  const double scale = size / 64.0;
  t->textures[0] = cv::Mat(n, n, CV_8UC3, cv::Scalar::all(0));
  // Noise: uniform grey in [0, 90), slightly blurred so that it reads as a texture. A fixed
  // seed: the texture is part of the dataset definition, not of the item seed.
  cv::Mat noise(n, n, CV_8UC1);
  cv::RNG rng(0x5eed5);
  rng.fill(noise, cv::RNG::UNIFORM, 0, 90);
  cv::GaussianBlur(noise, noise, cv::Size(0, 0), 0.7 * scale);
  cv::cvtColor(noise, t->textures[1], cv::COLOR_GRAY2RGB);
  // Diagonal stripes, period S/6 along an axis, grey 18..80 with soft (anti-aliased) edges.
  cv::Mat stripes(n, n, CV_8UC1), checker(n, n, CV_8UC1);
  const double period = size / 6.0;
  const int cell = std::max(2, size / 8);
  for (int y = 0; y < n; ++y) {
    auto* s = stripes.ptr<std::uint8_t>(y);
    auto* c = checker.ptr<std::uint8_t>(y);
    for (int x = 0; x < n; ++x) {
      const double w = std::sin(2 * kPi * (x + y) / period);
      const double v = std::clamp(0.5 + 1.5 * w, 0.0, 1.0);
      s[x] = static_cast<std::uint8_t>(std::lround(18 + 62 * v));
      c[x] = ((x / cell + y / cell) % 2) ? 72 : 22;
    }
  }
  cv::cvtColor(stripes, t->textures[2], cv::COLOR_GRAY2RGB);
  cv::cvtColor(checker, t->textures[3], cv::COLOR_GRAY2RGB);
  return t;
}

std::shared_ptr<const detail::ShapesTextures> textures_for(int size) {
  static std::mutex mutex;
  static std::map<int, std::shared_ptr<const detail::ShapesTextures>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = cache[size];
  if (!slot) slot = build_textures(size);
  return slot;
}

// Renders into `out` (CV_8UC3, RGB order).
void render_rgb(const ShapeFactors& f, const detail::ShapesTextures& tex, std::uint64_t jitter_seed,
                cv::Mat& out) {
  const int S = tex.size;
  SplitMix rng(jitter_seed);
  const int ox = static_cast<int>(rng.below(S)), oy = static_cast<int>(rng.below(S));
  const double jitter = 2.0 * S / 64.0;
  const double dx = rng.uniform(-jitter, jitter), dy = rng.uniform(-jitter, jitter);
  const double scale = rng.uniform(0.94, 1.06);
  const double angle = rng.uniform(-5.0, 5.0) * kPi / 180.0;
  const double brightness = rng.uniform(0.9, 1.0);
  tex.textures[f.background](cv::Rect(ox, oy, S, S)).copyTo(out);

  const double cx = (S - 1) / 2.0 + (f.position % 3 - 1) * kGridStep * S + dx;
  const double cy = (S - 1) / 2.0 + (f.position / 3 - 1) * kGridStep * S + dy;
  const double r = (f.size == 1 ? kRadiusBig : kRadiusSmall) * S * scale;
  const cv::Scalar colour = kColoursRgb[f.colour] * brightness;
  if (f.shape == 1) {
    cv::circle(out,
               cv::Point(static_cast<int>(std::lround(cx * kOne)),
                         static_cast<int>(std::lround(cy * kOne))),
               static_cast<int>(std::lround(r * kOne)), colour, cv::FILLED, cv::LINE_AA, kShift);
    return;
  }
  const double ca = std::cos(angle), sa = std::sin(angle);
  const auto& outline = unit_outline(f.shape);
  std::vector<cv::Point> pts;
  pts.reserve(outline.size());
  for (const auto& p : outline) {
    const double x = cx + r * (ca * p.x - sa * p.y);
    const double y = cy + r * (sa * p.x + ca * p.y);
    pts.emplace_back(static_cast<int>(std::lround(x * kOne)),
                     static_cast<int>(std::lround(y * kOne)));
  }
  const cv::Point* polys[] = {pts.data()};
  const int counts[] = {static_cast<int>(pts.size())};
  cv::fillPoly(out, polys, counts, 1, colour, cv::LINE_AA, kShift);
}

// RGB CV_8UC3 -> [3,S,S] float32 in [0,1].
torch::Tensor rgb_to_tensor(const cv::Mat& rgb) {
  static const std::array<float, 256> lut = [] {
    std::array<float, 256> l{};
    for (int i = 0; i < 256; ++i) l[i] = static_cast<float>(i) / 255.0f;
    return l;
  }();
  const int h = rgb.rows, w = rgb.cols;
  torch::Tensor out = torch::empty({3, h, w}, torch::kFloat32);
  float* r = out.data_ptr<float>();
  float* g = r + static_cast<std::ptrdiff_t>(h) * w;
  float* b = g + static_cast<std::ptrdiff_t>(h) * w;
  for (int y = 0; y < h; ++y) {
    const std::uint8_t* p = rgb.ptr<std::uint8_t>(y);
    for (int x = 0; x < w; ++x, p += 3) {
      *r++ = lut[p[0]];
      *g++ = lut[p[1]];
      *b++ = lut[p[2]];
    }
  }
  return out;
}

std::string fmt_holdout(const std::map<std::string, std::string>& combo) {
  std::string s = "{";
  for (const auto& [k, v] : combo) s += (s.size() > 1 ? ", " : "") + k + "=" + v;
  return s + "}";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Factors, labels, attributes.

int ShapeFactors::get(int factor) const {
  switch (factor) {
    case 0:
      return shape;
    case 1:
      return size;
    case 2:
      return colour;
    case 3:
      return position;
    case 4:
      return background;
    default:
      fail("ShapeFactors::get: factor ", factor, " out of range 0..4");
  }
}

void ShapeFactors::set(int factor, int value) {
  MMKT_CHECK(factor >= 0 && factor < kShapesNumFactors, "ShapeFactors::set: factor ", factor,
             " out of range 0..4");
  MMKT_CHECK(value >= 0 && value < radix(factor), "ShapeFactors::set: value ", value,
             " out of range for factor ", shapes_factor_names()[factor]);
  switch (factor) {
    case 0:
      shape = value;
      break;
    case 1:
      size = value;
      break;
    case 2:
      colour = value;
      break;
    case 3:
      position = value;
      break;
    default:
      background = value;
      break;
  }
}

bool ShapeFactors::operator==(const ShapeFactors& o) const {
  return shape == o.shape && size == o.size && colour == o.colour && position == o.position &&
         background == o.background;
}

const std::vector<std::string>& shapes_factor_names() {
  static const std::vector<std::string> names = {"shape", "size", "colour", "position",
                                                 "background"};
  return names;
}

const std::vector<std::string>& shapes_factor_values(int factor) {
  MMKT_CHECK(factor >= 0 && factor < kShapesNumFactors, "shapes: factor ", factor,
             " out of range 0..4");
  return value_table()[factor];
}

int shapes_factor_index(const std::string& name) {
  const auto& names = shapes_factor_names();
  const auto it = std::find(names.begin(), names.end(), name);
  return it == names.end() ? -1 : static_cast<int>(it - names.begin());
}

int shapes_value_index(int factor, const std::string& value) {
  if (factor < 0 || factor >= kShapesNumFactors) return -1;
  const auto& values = value_table()[factor];
  const auto it = std::find(values.begin(), values.end(), value);
  return it == values.end() ? -1 : static_cast<int>(it - values.begin());
}

std::string shapes_describe(const ShapeFactors& factors, int level) {
  check_level(level);
  std::string s;
  for (int f = 0; f < level; ++f) {
    if (!s.empty()) s += ' ';
    s += shapes_factor_names()[f] + "=" + value_table()[f][factors.get(f)];
  }
  return s;
}

std::int64_t shapes_num_classes(int level) {
  check_level(level);
  std::int64_t n = 1;
  for (int f = 0; f < level; ++f) n *= radix(f);
  return n;
}

std::int64_t shapes_label(const ShapeFactors& factors, int level) {
  check_level(level);
  std::int64_t label = 0;
  for (int f = 0; f < level; ++f) label = label * radix(f) + factors.get(f);
  return label;
}

ShapeFactors shapes_factors_from_label(std::int64_t label, int level) {
  check_level(level);
  MMKT_CHECK(label >= 0 && label < shapes_num_classes(level), "shapes: label ", label,
             " out of range for level ", level);
  ShapeFactors f;
  for (int k = level - 1; k >= 0; --k) {
    f.set(k, static_cast<int>(label % radix(k)));
    label /= radix(k);
  }
  return f;
}

std::string shapes_class_name(const ShapeFactors& f, int level) {
  check_level(level);
  const auto& v = value_table();
  std::string name =
      join_nonempty({level >= 2 ? v[1][f.size] : "", level >= 3 ? v[2][f.colour] : "",
                     v[0][f.shape], level >= 4 ? v[3][f.position] : ""},
                    " ");
  if (level >= 5) name += " on " + v[4][f.background];
  return name;
}

std::vector<std::string> shapes_attribute_names(int level) {
  check_level(level);
  std::vector<std::string> names;
  for (int f = 0; f < level; ++f)
    for (const auto& value : value_table()[f])
      names.push_back(shapes_factor_names()[f] + "=" + value);
  return names;
}

torch::Tensor shapes_attributes(const ShapeFactors& factors, int level) {
  check_level(level);
  int total = 0;
  for (int f = 0; f < level; ++f) total += radix(f);
  torch::Tensor a = torch::zeros({total}, torch::kFloat32);
  float* p = a.data_ptr<float>();
  int offset = 0;
  for (int f = 0; f < level; ++f) {
    p[offset + factors.get(f)] = 1.0f;
    offset += radix(f);
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// Captions.

std::string shapes_caption(const ShapeFactors& factors, int level, std::uint64_t variant_seed) {
  check_level(level);
  SplitMix rng(variant_seed);
  // Templates that need an inactive factor are skipped: draw among the ones that fit.
  std::array<int, kNumTemplates> fitting{};
  int n = 0;
  for (int t = 0; t < kNumTemplates; ++t)
    if (template_fits(t, level)) fitting[n++] = t;
  const int t = fitting[static_cast<std::size_t>(rng.below(static_cast<std::uint64_t>(n)))];
  return caption_from_template(t, factors, level, Chooser{&rng});
}

std::string shapes_class_description(const ShapeFactors& factors, int level) {
  check_level(level);
  return caption_from_template(0, factors, level, Chooser{nullptr});
}

std::optional<ShapeFactors> parse_shapes_caption(const std::string& caption, int level) {
  check_level(level);
  const auto& vocab = vocabulary();
  std::array<int, kShapesNumFactors> found;
  found.fill(-1);
  int vertical = 0, horizontal = 0;  // -1 top/left, +1 bottom/right, 0 none
  bool centre = false, conflict = false, position_conflict = false;
  auto note = [&](int& slot, int value) {
    if (slot != 0 && slot != value) position_conflict = true;
    slot = value;
  };
  std::string word;
  auto flush = [&] {
    if (word.empty()) return;
    const auto it = vocab.find(word);
    word.clear();
    if (it == vocab.end()) return;
    const VocabEntry& e = it->second;
    switch (e.kind) {
      case Word::kValue:
        if (e.factor >= level) return;  // mentions of inactive factors are ignored
        if (found[e.factor] >= 0 && found[e.factor] != e.value) conflict = true;
        found[e.factor] = e.value;
        return;
      case Word::kTop:
        note(vertical, -1);
        return;
      case Word::kBottom:
        note(vertical, 1);
        return;
      case Word::kLeft:
        note(horizontal, -1);
        return;
      case Word::kRight:
        note(horizontal, 1);
        return;
      case Word::kCentre:
        centre = true;
        return;
    }
  };
  for (char c : caption) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (std::isalpha(u)) {
      word += static_cast<char>(std::tolower(u));
    } else {
      flush();
    }
  }
  flush();
  ShapeFactors out;
  for (int f = 0; f < level; ++f) {
    if (f == 3) continue;
    if (found[f] < 0) return std::nullopt;
    out.set(f, found[f]);
  }
  if (level >= 4) {
    if (position_conflict || (vertical == 0 && horizontal == 0 && !centre)) return std::nullopt;
    out.position = (vertical + 1) * 3 + (horizontal + 1);
  }
  if (conflict) return std::nullopt;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rendering entry points.

cv::Mat render_shapes_image(const ShapeFactors& factors, int image_size,
                            std::uint64_t jitter_seed) {
  MMKT_CHECK_INPUT(image_size >= 16, "shapes: image_size must be >= 16, got ", image_size);
  for (int f = 0; f < kShapesNumFactors; ++f)
    MMKT_CHECK(factors.get(f) >= 0 && factors.get(f) < radix(f), "shapes: factor ",
               shapes_factor_names()[f], " has value ", factors.get(f), " out of range");
  cv::Mat rgb, bgr;
  render_rgb(factors, *textures_for(image_size), jitter_seed, rgb);
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  return bgr;
}

std::string to_string(ShapesSplit split) {
  switch (split) {
    case ShapesSplit::kAll:
      return "all";
    case ShapesSplit::kTrain:
      return "train";
    case ShapesSplit::kHeldOut:
      return "held-out";
  }
  return "?";
}

ShapesSplit parse_shapes_split(const std::string& name) {
  if (name == "all") return ShapesSplit::kAll;
  if (name == "train") return ShapesSplit::kTrain;
  if (name == "held-out" || name == "heldout" || name == "test") return ShapesSplit::kHeldOut;
  fail_input("shapes: unknown split '", name, "', expected all, train or held-out");
}

bool shapes_matches_holdout(const ShapeFactors& factors, const ShapesHoldout& holdout) {
  for (const auto& combo : holdout) {
    if (combo.empty()) continue;
    bool all = true;
    for (const auto& [name, value] : combo) {
      const int f = shapes_factor_index(name);
      if (f < 0 || shapes_value_index(f, value) != factors.get(f)) {
        all = false;
        break;
      }
    }
    if (all) return true;
  }
  return false;
}

ShapesHoldout default_shapes_holdout(int level) {
  check_level(level);
  if (level >= 3)
    return {{{"colour", "red"}, {"shape", "heart"}}, {{"colour", "blue"}, {"shape", "star"}}};
  if (level == 2) return {{{"size", "big"}, {"shape", "triangle"}}};
  return {};
}

// ---------------------------------------------------------------------------------------------
// The dataset.

ShapesDataset::ShapesDataset(ShapesOptions options) : options_(std::move(options)) {
  const int level = options_.level;
  check_level(level);
  MMKT_CHECK_INPUT(options_.size > 0, "shapes: size must be > 0, got ", options_.size);
  MMKT_CHECK_INPUT(options_.image_size >= 16, "shapes: image_size must be >= 16, got ",
                   options_.image_size);
  MMKT_CHECK_INPUT(options_.image_size <= 4096, "shapes: image_size must be <= 4096, got ",
                   options_.image_size);
  const auto& names = shapes_factor_names();
  for (std::size_t k = 0; k < options_.holdout.size(); ++k) {
    const auto& combo = options_.holdout[k];
    MMKT_CHECK_INPUT(!combo.empty(), "shapes: holdout entry ", k,
                     " is empty (it would hold out everything)");
    for (const auto& [name, value] : combo) {
      const int f = shapes_factor_index(name);
      if (f < 0)
        fail_input("shapes: holdout entry ", k, " ", fmt_holdout(combo), ": unknown factor '", name,
                   "', expected one of shape, size, colour, position, background");
      if (f >= level) {
        std::string active;
        for (int a = 0; a < level; ++a) active += (a ? ", " : "") + names[a];
        fail_input("shapes: holdout entry ", k, " ", fmt_holdout(combo), ": factor '", name,
                   "' is not varied at level ", level, " (level ", level, " varies ", active, ")");
      }
      if (shapes_value_index(f, value) < 0) {
        std::string values;
        for (const auto& v : value_table()[f]) values += (values.empty() ? "" : ", ") + v;
        fail_input("shapes: holdout entry ", k, " ", fmt_holdout(combo), ": unknown ", name, " '",
                   value, "', expected one of ", values);
      }
    }
  }
  MMKT_CHECK_INPUT(options_.split != ShapesSplit::kHeldOut || !options_.holdout.empty(),
                   "shapes: split held-out needs a non-empty holdout");

  // The classes items are drawn from: drawing a label uniformly from this list is rejection
  // sampling done once, so item i needs one draw whatever the split.
  const std::int64_t classes = shapes_num_classes(level);
  for (std::int64_t label = 0; label < classes; ++label) {
    const ShapeFactors f = shapes_factors_from_label(label, level);
    const bool held = shapes_matches_holdout(f, options_.holdout);
    if (options_.split == ShapesSplit::kAll || (options_.split == ShapesSplit::kTrain && !held) ||
        (options_.split == ShapesSplit::kHeldOut && held))
      allowed_.push_back(label);
  }
  MMKT_CHECK_INPUT(!allowed_.empty(), "shapes: the holdout covers every combination at level ",
                   level, ", split train would be empty");

  base_seed_ = derive_seed(options_.seed, "shapes");
  textures_ = textures_for(options_.image_size);

  info_.name = "shapes-l" + std::to_string(level);
  info_.image_shape = {3, options_.image_size, options_.image_size};
  info_.class_names.reserve(static_cast<std::size_t>(classes));
  for (std::int64_t label = 0; label < classes; ++label)
    info_.class_names.push_back(shapes_class_name(shapes_factors_from_label(label, level), level));
  info_.attribute_names = shapes_attribute_names(level);
  info_.has_captions = true;
}

void ShapesDataset::check_index(std::int64_t index) const {
  MMKT_CHECK(index >= 0 && index < options_.size, "shapes: index ", index, " out of range [0, ",
             options_.size, ")");
}

ShapesItem ShapesDataset::item(std::int64_t index) const {
  check_index(index);
  SplitMix rng(base_seed_ ^ mix64(static_cast<std::uint64_t>(index)));
  ShapesItem it;
  it.label = allowed_[static_cast<std::size_t>(rng.next() % allowed_.size())];
  it.factors = shapes_factors_from_label(it.label, options_.level);
  it.caption_seed = rng.next();
  it.jitter_seed = rng.next();
  return it;
}

Sample ShapesDataset::get(std::int64_t index) const {
  const ShapesItem it = item(index);
  cv::Mat rgb;
  render_rgb(it.factors, *textures_, it.jitter_seed, rgb);
  Sample s;
  s.image = rgb_to_tensor(rgb);
  s.caption = shapes_caption(it.factors, options_.level, it.caption_seed);
  s.label = it.label;
  s.attributes = shapes_attributes(it.factors, options_.level);
  return s;
}

cv::Mat ShapesDataset::image_bgr(std::int64_t index) const {
  const ShapesItem it = item(index);
  cv::Mat rgb, bgr;
  render_rgb(it.factors, *textures_, it.jitter_seed, rgb);
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  return bgr;
}

std::vector<std::string> ShapesDataset::captions(const std::vector<std::int64_t>& indices) const {
  std::vector<std::string> out;
  out.reserve(indices.size());
  for (const auto i : indices) {
    const ShapesItem it = item(i);
    out.push_back(shapes_caption(it.factors, options_.level, it.caption_seed));
  }
  return out;
}

torch::Tensor ShapesDataset::labels(const std::vector<std::int64_t>& indices) const {
  torch::Tensor out = torch::empty({static_cast<std::int64_t>(indices.size())}, torch::kInt64);
  auto* p = out.data_ptr<std::int64_t>();
  for (const auto i : indices) *p++ = item(i).label;
  return out;
}

torch::Tensor ShapesDataset::attributes(const std::vector<std::int64_t>& indices) const {
  const auto a = static_cast<std::int64_t>(info_.attribute_names.size());
  torch::Tensor out = torch::zeros({static_cast<std::int64_t>(indices.size()), a}, torch::kFloat32);
  float* p = out.data_ptr<float>();
  for (const auto i : indices) {
    const ShapeFactors f = item(i).factors;
    int offset = 0;
    for (int k = 0; k < options_.level; ++k) {
      p[offset + f.get(k)] = 1.0f;
      offset += radix(k);
    }
    p += a;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing to disk.

void write_shapes(const ShapesOptions& options, const std::string& out_dir) {
  namespace fs = std::filesystem;
  const ShapesDataset dataset(options);
  const int level = options.level;
  const std::int64_t n = dataset.size();
  std::error_code ec;
  fs::create_directories(fs::path(out_dir) / "images", ec);
  if (ec) fail_input(out_dir, ": cannot create folder images/: ", ec.message());
  log::info("shapes: writing ", n, " items (level ", level, ", ", options.image_size, "x",
            options.image_size, ", split ", to_string(options.split), ") to ", out_dir);

  std::vector<std::string> lines(static_cast<std::size_t>(n));
  std::atomic<std::int64_t> done{0};
  std::atomic<bool> stop{false};
  std::mutex error_mutex;
  std::exception_ptr error;
  constexpr int kThreads = 2;
  auto work = [&](int thread) {
    try {
      for (std::int64_t i = thread; i < n && !stop.load(std::memory_order_relaxed); i += kThreads) {
        const ShapesItem it = dataset.item(i);
        char name[32];
        std::snprintf(name, sizeof(name), "images/%06lld.png", static_cast<long long>(i));
        const std::string path = (fs::path(out_dir) / name).string();
        if (!cv::imwrite(path, dataset.image_bgr(i))) fail(path, ": cv::imwrite failed");
        std::vector<int> attrs;
        for (int f = 0; f < level; ++f)
          for (int v = 0; v < radix(f); ++v) attrs.push_back(v == it.factors.get(f) ? 1 : 0);
        nlohmann::ordered_json line;
        line["image"] = name;
        line["text"] = shapes_caption(it.factors, level, it.caption_seed);
        line["label"] = it.label;
        line["class"] = dataset.info().class_names[static_cast<std::size_t>(it.label)];
        line["attributes"] = attrs;
        lines[static_cast<std::size_t>(i)] = line.dump();
        const std::int64_t d = ++done;
        if (d * 10 / n != (d - 1) * 10 / n)
          log::info("shapes: ", d, "/", n, " images (", d * 100 / n, "%)");
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      stop = true;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(work, t);
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);

  std::string manifest;
  for (const auto& line : lines) manifest += line + "\n";
  io::write_file_atomic((fs::path(out_dir) / "manifest.jsonl").string(), manifest);

  nlohmann::ordered_json classes;
  classes["dataset"] = dataset.info().name;
  classes["level"] = level;
  classes["class_names"] = dataset.info().class_names;
  classes["attribute_names"] = dataset.info().attribute_names;
  nlohmann::ordered_json factors, fixed;
  for (int f = 0; f < kShapesNumFactors; ++f) {
    if (f < level)
      factors[shapes_factor_names()[f]] = value_table()[f];
    else
      fixed[shapes_factor_names()[f]] = value_table()[f][kFixed[f]];
  }
  classes["factors"] = factors;
  classes["fixed"] = fixed;
  classes["label_order"] = "mixed radix over the factors in order, shape slowest";
  nlohmann::ordered_json opts;
  opts["level"] = options.level;
  opts["size"] = options.size;
  opts["seed"] = options.seed;
  opts["image_size"] = options.image_size;
  opts["split"] = to_string(options.split);
  opts["holdout"] = options.holdout;
  classes["options"] = opts;
  io::write_file_atomic((fs::path(out_dir) / "classes.json").string(), classes.dump(2) + "\n");
  log::info("shapes: wrote ", n, " images, manifest.jsonl and classes.json to ", out_dir);
}

}  // namespace mmkt::data
