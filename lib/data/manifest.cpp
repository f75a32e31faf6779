#include "mmkt/data/manifest.h"

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/image/convert.h"

#include <opencv2/core.hpp>
#include "mmkt/text/utf8.h"

namespace mmkt::data {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

struct Line {
  std::size_t number = 0;  // 1-based
  std::string image;
  std::string text;
  std::optional<std::int64_t> label;
  std::optional<std::string> class_name;
  std::vector<float> attributes;
  bool has_attributes = false;
};

Line parse_line(const std::string& raw, std::size_t number, const std::string& where) {
  if (const auto bad = text::find_invalid_utf8(raw)) {
    fail_input(where, ": not valid UTF-8 at byte ", *bad + 1, " of the line");
  }
  json j;
  try {
    j = json::parse(raw);
  } catch (const json::parse_error& e) {
    fail_input(where, ": not a JSON object (", e.what(), ")");
  }
  MMKT_CHECK_INPUT(j.is_object(), where, ": expected a JSON object, got ", j.type_name());
  Line line;
  line.number = number;
  for (const auto& [key, value] : j.items()) {
    if (key == "image") {
      MMKT_CHECK_INPUT(value.is_string() && !value.get<std::string>().empty(), where,
                       ": \"image\" must be a non-empty string");
      line.image = value.get<std::string>();
    } else if (key == "text") {
      MMKT_CHECK_INPUT(value.is_string(), where, ": \"text\" must be a string, got ",
                       value.type_name());
      line.text = value.get<std::string>();
    } else if (key == "label") {
      if (value.is_number_integer()) {
        line.label = value.get<std::int64_t>();
        MMKT_CHECK_INPUT(*line.label >= 0, where, ": \"label\" must be >= 0, got ", *line.label);
        MMKT_CHECK_INPUT(*line.label <= kMaxManifestLabel, where, ": \"label\" ", *line.label,
                         " is over the limit of ", kMaxManifestLabel, " (labels are class indices ",
                         "0..C-1; put other identifiers in \"id\", or use class names)");
      } else if (value.is_string()) {
        line.class_name = value.get<std::string>();
      } else {
        fail_input(where, ": \"label\" must be an integer or a class name, got ",
                   value.type_name());
      }
    } else if (key == "class") {
      MMKT_CHECK_INPUT(value.is_string(), where, ": \"class\" must be a string");
      if (!line.class_name) line.class_name = value.get<std::string>();
    } else if (key == "attributes") {
      MMKT_CHECK_INPUT(value.is_array(), where, ": \"attributes\" must be an array of 0/1");
      line.has_attributes = true;
      for (std::size_t k = 0; k < value.size(); ++k) {
        const auto& a = value[k];
        MMKT_CHECK_INPUT(a.is_number() || a.is_boolean(), where, ": attributes[", k,
                         "] must be 0 or 1, got ", a.type_name());
        const float v = a.is_boolean() ? (a.get<bool>() ? 1.0f : 0.0f) : a.get<float>();
        MMKT_CHECK_INPUT(v == 0.0f || v == 1.0f, where, ": attributes[", k,
                         "] must be 0 or 1, got ", v);
        line.attributes.push_back(v);
      }
    } else if (key == "id") {
      // carried by the user's own tooling; nothing to check
    } else {
      fail_input(where, ": unknown key \"", key,
                 "\" (expected image, text, label, class, attributes, id)");
    }
  }
  MMKT_CHECK_INPUT(!line.image.empty(), where, ": missing \"image\"");
  MMKT_CHECK_INPUT(j.contains("text"), where, ": missing \"text\"");
  std::string trimmed = line.text;
  trimmed.erase(0, trimmed.find_first_not_of(" \t\r\n"));
  MMKT_CHECK_INPUT(!trimmed.empty(), where, ": empty \"text\"");
  return line;
}

// Every non-blank line of a manifest, parsed, with image paths made absolute and checked.
std::vector<Line> read_lines(const std::string& path) {
  if (!fs::exists(path)) fail_input(path, ": manifest does not exist");
  std::ifstream in(path, std::ios::binary);
  MMKT_CHECK_INPUT(static_cast<bool>(in), path, ": cannot open manifest");
  const fs::path base = fs::path(path).parent_path();
  std::vector<Line> lines;
  std::string raw;
  std::size_t number = 0;
  while (std::getline(in, raw)) {
    ++number;
    if (!raw.empty() && raw.back() == '\r') raw.pop_back();
    if (raw.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines
    const std::string where = path + ":" + std::to_string(number);
    auto line = parse_line(raw, number, where);
    const fs::path p(line.image);
    line.image = p.is_absolute() ? p.string() : (base / p).string();
    MMKT_CHECK_INPUT(fs::exists(line.image), where, ": image ", line.image, " does not exist");
    lines.push_back(std::move(line));
  }
  MMKT_CHECK_INPUT(!lines.empty(), path, ": the manifest holds no items (empty dataset)");
  return lines;
}

// Runs work(i) for i in [0, n) on `threads` threads; the first error per item is kept and the
// first one (in item order) is thrown after every thread has finished.
template <typename Work>
void for_each_item(std::int64_t n, int threads, Work work) {
  std::atomic<std::int64_t> next{0};
  std::vector<std::string> errors(static_cast<std::size_t>(n));
  auto loop = [&] {
    for (std::int64_t i = next++; i < n; i = next++) {
      try {
        work(i);
      } catch (const Error& e) {
        errors[i] = e.what();
      } catch (const std::exception& e) {  // OpenCV and allocation errors: never escape a thread
        errors[i] = e.what();
      } catch (...) {  // an exception that escaped a std::thread would std::terminate the process
        errors[i] = "unknown exception";
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, threads); ++t) pool.emplace_back(loop);
  loop();
  for (auto& t : pool) t.join();
  for (const auto& e : errors) {
    if (!e.empty()) fail_input(e);
  }
}

}  // namespace

ManifestImageSurvey survey_manifest_images(const std::string& manifest, std::int64_t max_images,
                                           int threads) {
  const auto lines = read_lines(manifest);
  ManifestImageSurvey survey;
  survey.items = static_cast<std::int64_t>(lines.size());
  const auto n = std::min<std::int64_t>(survey.items, std::max<std::int64_t>(1, max_images));
  std::vector<int> short_side(n), colour(n);
  std::vector<double> binary_pixels(n), pixels(n);
  for_each_item(n, threads, [&](std::int64_t k) {
    const auto& line = lines[static_cast<std::size_t>(k * survey.items / n)];  // evenly spaced
    try {
      const cv::Mat bgr = image::load_image(line.image, 3);
      short_side[k] = std::min(bgr.rows, bgr.cols);
      std::int64_t spread = 0, extreme = 0;
      for (int r = 0; r < bgr.rows; ++r) {
        const auto* p = bgr.ptr<cv::Vec3b>(r);
        for (int c = 0; c < bgr.cols; ++c) {
          const int b = p[c][0], g = p[c][1], rr = p[c][2];
          if (std::max({std::abs(b - g), std::abs(g - rr), std::abs(b - rr)}) > 16) ++spread;
          const int grey = (b + g + rr) / 3;
          if (grey <= 16 || grey >= 239) ++extreme;
        }
      }
      const double total = static_cast<double>(bgr.rows) * bgr.cols;
      colour[k] = spread > 0.02 * total ? 1 : 0;
      binary_pixels[k] = static_cast<double>(extreme);
      pixels[k] = total;
    } catch (const Error& e) {
      fail_input(manifest, ":", line.number, ": ", e.what());
    }
  });
  survey.surveyed = n;
  double extreme = 0, total = 0;
  for (std::int64_t k = 0; k < n; ++k) {
    survey.colour += colour[k];
    extreme += binary_pixels[k];
    total += pixels[k];
  }
  survey.binary_pixel_share = total > 0 ? extreme / total : 0.0;
  std::nth_element(short_side.begin(), short_side.begin() + n / 2, short_side.end());
  survey.median_short_side = short_side[n / 2];
  return survey;
}

ManifestDataset::ManifestDataset(const ManifestOptions& o) {
  MMKT_CHECK_INPUT(o.channels == 1 || o.channels == 3, "manifest channels must be 1 or 3, got ",
                   o.channels);
  MMKT_CHECK_INPUT(o.image_size >= 8 && o.image_size <= 1024, "manifest image_size ", o.image_size,
                   " out of range 8..1024");
  if (!o.attributes_file.empty()) attrs_ = ClassAttributes::load(o.attributes_file);
  auto lines = read_lines(o.path);

  // Labels: integers as given; class names through the class-attribute file, or numbered in
  // order of first appearance.
  std::map<std::string, std::int64_t> class_index;
  std::vector<std::string> class_names;
  if (attrs_) {
    class_names = attrs_->class_names;
    for (std::size_t c = 0; c < class_names.size(); ++c) class_index[class_names[c]] = c;
  }
  const bool any_label = std::any_of(lines.begin(), lines.end(), [](const Line& l) {
    return l.label.has_value() || l.class_name.has_value();
  });
  const std::size_t n_attr = lines.front().attributes.size();
  const bool any_attr = lines.front().has_attributes;
  std::vector<std::int64_t> labels(lines.size(), -1);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    auto& l = lines[i];
    const std::string where = o.path + ":" + std::to_string(l.number);
    MMKT_CHECK_INPUT(l.has_attributes == any_attr, where,
                     any_attr ? ": missing \"attributes\" (line " +
                                    std::to_string(lines.front().number) + " has them)"
                              : ": has \"attributes\" but earlier lines do not");
    MMKT_CHECK_INPUT(l.attributes.size() == n_attr, where, ": ", l.attributes.size(),
                     " attributes, line ", lines.front().number, " has ", n_attr);
    if (l.label) {
      labels[i] = *l.label;
    } else if (l.class_name) {
      auto it = class_index.find(*l.class_name);
      if (it == class_index.end()) {
        MMKT_CHECK_INPUT(!attrs_, where, ": class \"", *l.class_name, "\" is not in ",
                         o.attributes_file);
        it = class_index.emplace(*l.class_name, class_names.size()).first;
        class_names.push_back(*l.class_name);
      }
      labels[i] = it->second;
    } else {
      MMKT_CHECK_INPUT(!any_label, where, ": missing \"label\" (other lines are labelled)");
    }
    if (attrs_ && labels[i] >= 0) {
      MMKT_CHECK_INPUT(labels[i] < static_cast<std::int64_t>(attrs_->class_names.size()), where,
                       ": label ", labels[i], " but ", o.attributes_file, " has ",
                       attrs_->class_names.size(), " classes");
    }
    if (attrs_ && any_attr) {
      MMKT_CHECK_INPUT(n_attr == attrs_->attribute_names.size(), where, ": ", n_attr,
                       " attributes but ", o.attributes_file, " defines ",
                       attrs_->attribute_names.size());
    }
  }
  if (labels.front() >= 0 && class_names.empty()) {
    const auto max_label = *std::max_element(labels.begin(), labels.end());
    for (std::int64_t c = 0; c <= max_label; ++c) class_names.push_back(std::to_string(c));
  }

  // Decode every image now, in parallel: errors surface at load time with their line.
  const auto n = static_cast<std::int64_t>(lines.size());
  const int s = o.image_size;
  images_ = torch::empty({n, o.channels, s, s}, torch::kUInt8);
  for_each_item(n, o.threads, [&](std::int64_t i) {
    try {
      images_[i].copy_(
          image::mat_to_tensor(image::load_square_image(lines[i].image, o.channels, s)));
    } catch (const std::exception& e) {
      fail_input(o.path, ":", lines[i].number, ": ", e.what());
    }
  });

  for (auto& l : lines) {
    captions_.push_back(l.text);
    paths_.push_back(l.image);
  }
  labels_ = torch::tensor(labels, torch::kInt64);
  if (any_attr) {
    attributes_ = torch::empty({n, static_cast<std::int64_t>(n_attr)}, torch::kFloat32);
    for (std::int64_t i = 0; i < n; ++i) {
      attributes_[i].copy_(torch::tensor(lines[i].attributes, torch::kFloat32));
    }
  } else if (attrs_ && labels.front() >= 0) {
    attributes_ = attrs_->matrix.index_select(0, labels_);  // from the class-attribute file
  }
  info_.name = "manifest:" + o.path;
  info_.image_shape = {o.channels, s, s};
  info_.class_names = class_names;
  if (attributes_.defined()) {
    if (attrs_) {
      info_.attribute_names = attrs_->attribute_names;
    } else {
      for (std::size_t a = 0; a < n_attr; ++a)
        info_.attribute_names.push_back("a" + std::to_string(a));
    }
  }
  info_.has_captions = true;
  log::info("manifest ", o.path, ": ", n, " items, ", class_names.size(), " classes, ",
            info_.attribute_names.size(), " attributes, images ", o.channels, "x", s, "x", s);
}

Sample ManifestDataset::get(std::int64_t index) const {
  MMKT_CHECK(index >= 0 && index < size(), "index ", index, " out of range for ", info_.name);
  Sample s;
  s.image = images_[index].to(torch::kFloat32).div_(255.0);
  s.caption = captions_[static_cast<std::size_t>(index)];
  s.label = labels_.data_ptr<std::int64_t>()[index];
  if (attributes_.defined()) s.attributes = attributes_[index].clone();
  return s;
}

torch::Tensor ManifestDataset::images(const std::vector<std::int64_t>& indices) const {
  return images_.index_select(0, torch::tensor(indices, torch::kInt64))
      .to(torch::kFloat32)
      .div_(255.0);
}

std::vector<std::string> ManifestDataset::captions(const std::vector<std::int64_t>& indices) const {
  std::vector<std::string> out;
  out.reserve(indices.size());
  for (const auto i : indices) out.push_back(captions_.at(static_cast<std::size_t>(i)));
  return out;
}

torch::Tensor ManifestDataset::labels(const std::vector<std::int64_t>& indices) const {
  return labels_.index_select(0, torch::tensor(indices, torch::kInt64));
}

torch::Tensor ManifestDataset::attributes(const std::vector<std::int64_t>& indices) const {
  if (!attributes_.defined()) return {};
  return attributes_.index_select(0, torch::tensor(indices, torch::kInt64));
}

}  // namespace mmkt::data
