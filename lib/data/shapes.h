// Procedural image-text dataset in the style of CdSprites+ (Sejnova et al. 2023): a coloured
// shape at a grid position on a textured background, with a paraphrased caption, a class label
// and a one-hot attribute vector. Five difficulty levels switch the factors on in a fixed order:
// level 1 varies the shape only, 2 adds size, 3 colour, 4 position, 5 background texture.
//
// Conventions used everywhere in this unit:
// - Factor order: shape, size, colour, position, background (index 0..4). Level k varies the
//   first k factors; the others keep their fixed value (big, white, centre, black).
// - Label = mixed-radix index of the active factor values with the SHAPE SLOWEST (most
//   significant) and the last active factor fastest:
//     label = (((shape * 2 + size) * 6 + colour) * 9 + position) * 4 + background  (level 5),
//   truncated to the active factors at lower levels, so label_{k-1} = label_k / radix_k.
// - Attributes = concatenation of one-hot groups of the active factors, in factor order.
// - Item i of a dataset is a pure function of (seed, level, image_size, split, holdout, i).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>
#include <opencv2/core.hpp>

#include "mmkt/data/dataset.h"

namespace mmkt::data {

inline constexpr int kShapesNumFactors = 5;
inline constexpr int kShapesMaxLevel = 5;

// Factor values as indices into shapes_factor_values(factor). Defaults are the fixed values
// of the inactive factors (big, white, centre, black background).
struct ShapeFactors {
  int shape = 0;       // square, circle, triangle, heart, star
  int size = 1;        // small, big
  int colour = 5;      // red, green, blue, yellow, purple, white
  int position = 4;    // top left, top, top right, left, centre, right, bottom left, bottom,
                       // bottom right (row-major 3x3 grid)
  int background = 0;  // black, noise, stripes, checker

  int get(int factor) const;  // factor in 0..4 (order above)
  void set(int factor, int value);
  bool operator==(const ShapeFactors& other) const;
  bool operator!=(const ShapeFactors& other) const { return !(*this == other); }
};

// {"shape", "size", "colour", "position", "background"}.
const std::vector<std::string>& shapes_factor_names();
// The value names of one factor, e.g. {"small", "big"} for factor 1.
const std::vector<std::string>& shapes_factor_values(int factor);
// Index of a factor name, -1 when unknown.
int shapes_factor_index(const std::string& name);
// Index of a value name within a factor, -1 when unknown.
int shapes_value_index(int factor, const std::string& value);
// The words of a factor assignment, e.g. "shape=heart colour=red".
std::string shapes_describe(const ShapeFactors& factors, int level);

// Number of classes (combinations of the active factors) at a level.
std::int64_t shapes_num_classes(int level);
// Mixed-radix label of the active factors (shape slowest, see the top of this file).
std::int64_t shapes_label(const ShapeFactors& factors, int level);
// Inverse of shapes_label; inactive factors get their fixed values.
ShapeFactors shapes_factors_from_label(std::int64_t label, int level);
// "small red heart top left on stripes": size colour shape position "on" background, active
// factors only.
std::string shapes_class_name(const ShapeFactors& factors, int level);
// "shape=square", ..., "background=checker" for the active factors, in attribute order.
std::vector<std::string> shapes_attribute_names(int level);
// [A] float32 0/1: one-hot groups of the active factors.
torch::Tensor shapes_attributes(const ShapeFactors& factors, int level);

// A natural caption naming exactly the active factors, lower case, e.g. "top left: a tiny red
// heart on a striped background". The template, word order and synonyms are a deterministic
// function of variant_seed (13 templates, several synonyms per value).
std::string shapes_caption(const ShapeFactors& factors, int level, std::uint64_t variant_seed);
// The canonical description of a class ("a small red heart in the top left corner on a striped
// background"), e.g. for text zero-shot prototypes. Parses back like every caption.
std::string shapes_class_description(const ShapeFactors& factors, int level);
// Recovers the active factors from a caption (any paraphrase shapes_caption produces, and
// loosely worded free text using the same vocabulary). Inactive factors get their fixed values
// and mentions of them are ignored. nullopt when an active factor is not mentioned or is
// mentioned with two conflicting values (e.g. "red" and "blue").
std::optional<ShapeFactors> parse_shapes_caption(const std::string& caption, int level);

// Renders one image, CV_8UC3 in BGR order (for cv::imwrite). The jitter seed fixes the
// sub-pixel offset (+-2 px at 64x64), scale (+-6%), rotation (+-5 deg), brightness and texture
// phase. Anti-aliased. Background textures are built once per image size and cached.
cv::Mat render_shapes_image(const ShapeFactors& factors, int image_size, std::uint64_t jitter_seed);

enum class ShapesSplit { kAll, kTrain, kHeldOut };
// "all" | "train" | "held-out"
std::string to_string(ShapesSplit split);
// Parses "all" | "train" | "held-out" (also "heldout", "test"); InputError otherwise.
ShapesSplit parse_shapes_split(const std::string& name);

// A compositional zero-shot holdout: each map is a partial assignment of factors, e.g.
// {{"colour","red"},{"shape","heart"}} = every red heart.
using ShapesHoldout = std::vector<std::map<std::string, std::string>>;

struct ShapesOptions {
  int level = 3;              // 1..5
  std::int64_t size = 10000;  // number of items
  std::uint64_t seed = 0;     // item i is drawn from derive_seed(seed, "shapes") and i
  int image_size = 64;        // S: images are [3,S,S], S >= 16
  ShapesHoldout holdout;      // combinations kept out of kTrain / the only ones in kHeldOut
  ShapesSplit split = ShapesSplit::kAll;
};

// True when `factors` matches at least one combination of the holdout (names as validated by
// the dataset; unknown names never match).
bool shapes_matches_holdout(const ShapeFactors& factors, const ShapesHoldout& holdout);
// Default compositional split: level >= 3: red hearts and blue stars; level 2: big triangles;
// level 1: empty (nothing to compose).
ShapesHoldout default_shapes_holdout(int level);

namespace detail {
struct ShapesTextures;  // background textures of one image size (shapes.cpp)
}

// Everything item i is made from.
struct ShapesItem {
  ShapeFactors factors;
  std::int64_t label = 0;
  std::uint64_t caption_seed = 0;  // variant_seed of shapes_caption
  std::uint64_t jitter_seed = 0;   // jitter_seed of the renderer
};

class ShapesDataset : public Dataset {
 public:
  // Validates the options (InputError naming the bad level, size, image size or holdout entry).
  explicit ShapesDataset(ShapesOptions options);

  std::int64_t size() const override { return options_.size; }
  Sample get(std::int64_t index) const override;
  const DatasetInfo& info() const override { return info_; }
  // These skip rendering.
  std::vector<std::string> captions(const std::vector<std::int64_t>& indices) const override;
  torch::Tensor labels(const std::vector<std::int64_t>& indices) const override;
  torch::Tensor attributes(const std::vector<std::int64_t>& indices) const override;

  const ShapesOptions& options() const { return options_; }
  ShapesItem item(std::int64_t index) const;
  ShapeFactors factors(std::int64_t index) const { return item(index).factors; }
  // The classes item draws from (all, all minus held-out, or held-out only), sorted.
  const std::vector<std::int64_t>& allowed_labels() const { return allowed_; }
  // The BGR CV_8UC3 image of item i (what get(i).image holds, as 8-bit BGR).
  cv::Mat image_bgr(std::int64_t index) const;

 private:
  void check_index(std::int64_t index) const;
  ShapesOptions options_;
  std::uint64_t base_seed_ = 0;
  std::vector<std::int64_t> allowed_;
  std::shared_ptr<const detail::ShapesTextures> textures_;
  DatasetInfo info_;
};

// Writes out_dir/images/000000.png ..., out_dir/manifest.jsonl (one line per item:
// {"image","text","label","class","attributes"}, written atomically) and out_dir/classes.json
// (class names, attribute names, factor values, options). Renders on 2 threads and logs progress.
void write_shapes(const ShapesOptions& options, const std::string& out_dir);

}  // namespace mmkt::data
