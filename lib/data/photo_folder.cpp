#include "mmkt/data/photo_folder.h"

#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/io/files.h"

namespace mmkt::data {
namespace {
namespace fs = std::filesystem;

// Free-form caption frames; {} is the class name with its article where it reads as a noun.
const std::vector<std::string> kFrames = {"catalogue image of {}",
                                          "product shot: {bare}",
                                          "a photo of {}",
                                          "{bare}, studio photo",
                                          "picture of {} on a plain background",
                                          "shop listing - {bare}",
                                          "my {bare}",
                                          "{} for sale",
                                          "close-up of {}",
                                          "new in: {bare}"};

std::string with_article(const std::string& noun) {
  if (noun.rfind("pair of", 0) == 0) return "a " + noun;
  const bool vowel = !noun.empty() && std::string("aeiou").find(noun[0]) != std::string::npos;
  return (vowel ? "an " : "a ") + noun;
}

std::string fill(const std::string& frame, const std::string& noun) {
  std::string out = frame;
  for (const auto& [key, value] :
       {std::pair<std::string, std::string>{"{bare}", noun}, {"{}", with_article(noun)}}) {
    const auto at = out.find(key);
    if (at != std::string::npos) out.replace(at, key.size(), value);
  }
  return out;
}

}  // namespace

RenderedPhoto render_photo(const torch::Tensor& grey_image, std::mt19937_64& rng, int min_size,
                           int max_size, double strength) {
  MMKT_CHECK_INPUT(grey_image.dim() == 2 && grey_image.numel() > 0,
                   "render_photo: expects a grey [H,W] image, got ", grey_image.sizes());
  MMKT_CHECK_INPUT(min_size >= 1 && max_size >= min_size && max_size <= 4096,
                   "render_photo: sizes must satisfy 1 <= min_size <= max_size <= 4096");
  MMKT_CHECK_INPUT(strength >= 0 && strength <= 1, "render_photo: strength must lie in [0,1], got ",
                   strength);
  std::uniform_int_distribution<int> size_of(min_size, max_size);
  std::uniform_real_distribution<double> tint(0.3, 1.0), light(0.75, 1.0);
  const std::vector<std::string> formats = {".png", ".jpg", ".bmp"};
  // The source's grey intensity a in [0,1] (object bright on black).
  const auto grey = grey_image.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  cv::Mat alpha(static_cast<int>(grey.size(0)), static_cast<int>(grey.size(1)), CV_32F,
                grey.data_ptr<float>());
  const int style = static_cast<int>(rng() % 3);
  cv::Mat image;
  if (style == 0) {
    alpha.convertTo(image, CV_8U, 255.0);
  } else {
    // The draws keep this order (colour, then background) so that folders stay reproducible.
    const cv::Scalar drawn(tint(rng), tint(rng), tint(rng));
    const cv::Scalar drawn_background =
        style == 1 ? cv::Scalar(0, 0, 0) : cv::Scalar(light(rng), light(rng), light(rng));
    std::vector<cv::Mat> planes(3);
    for (int c = 0; c < 3; ++c) {
      // strength t moves the colour from white (1) and the background from black (0) to the
      // drawn ones: t = 1 gives exactly the draws. pixel = background (1 - a) + colour a.
      const double colour = drawn[c] * strength + (1 - strength);
      const double background = drawn_background[c] * strength;
      planes[c] = alpha * (colour - background) + background;
    }
    cv::Mat merged;
    cv::merge(planes, merged);
    merged.convertTo(image, CV_8UC3, 255.0);
  }
  const int side = size_of(rng);
  cv::resize(image, image, cv::Size(side, side), 0, 0, cv::INTER_LINEAR);
  RenderedPhoto out;
  out.format = formats[rng() % formats.size()];
  std::vector<unsigned char> bytes;
  const std::vector<int> params =
      out.format == ".jpg" ? std::vector<int>{cv::IMWRITE_JPEG_QUALITY, 90} : std::vector<int>{};
  MMKT_CHECK(cv::imencode(out.format, image, bytes, params), "render_photo: cannot encode a ",
             out.format, " image");
  out.bytes.assign(bytes.begin(), bytes.end());
  return out;
}

std::string write_photo_folder(const Dataset& source, const ClassAttributes& classes,
                               const PhotoFolderOptions& o) {
  MMKT_CHECK_INPUT(o.count > 0 && o.count <= source.size(), "photo folder: count must lie in [1, ",
                   source.size(), "], got ", o.count);
  MMKT_CHECK_INPUT(o.min_size >= 8 && o.max_size >= o.min_size && o.max_size <= 4096,
                   "photo folder: sizes must satisfy 8 <= min_size <= max_size <= 4096");
  fs::create_directories(fs::path(o.out) / "images");
  std::mt19937_64 rng(o.seed);
  std::vector<std::int64_t> order(static_cast<std::size_t>(source.size()));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
  std::shuffle(order.begin(), order.end(), rng);
  order.resize(static_cast<std::size_t>(o.count));
  std::ostringstream manifest;
  for (std::int64_t k = 0; k < o.count; ++k) {
    const auto sample = source.get(order[k]);
    const auto label = sample.label;
    MMKT_CHECK_INPUT(label >= 0 && label < classes.num_classes(), "photo folder: item ", order[k],
                     " has label ", label, " outside the class-attribute file");
    const auto photo = render_photo(sample.image[0], rng, o.min_size, o.max_size);
    char name[32];
    std::snprintf(name, sizeof name, "%05lld", static_cast<long long>(k));
    const std::string relative = "images/" + std::string(name) + photo.format;
    io::write_file_atomic((fs::path(o.out) / relative).string(), photo.bytes);
    const auto& names = classes.class_name_variants[label];
    const std::string noun =
        names.empty() ? classes.class_names[label] : names[rng() % names.size()];
    const auto caption = fill(kFrames[rng() % kFrames.size()], noun);
    manifest << nlohmann::json{{"image", relative},
                               {"text", caption},
                               {"class", classes.class_names[label]}}
                    .dump()
             << "\n";
  }
  const auto path = (fs::path(o.out) / "manifest.jsonl").string();
  io::write_file_atomic(path, manifest.str());
  log::info("photo folder: ", o.count, " items in ", o.out, " (manifest ", path, ")");
  return path;
}

}  // namespace mmkt::data
