#include "mmkt/eval/pictures.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "mmkt/core/error.h"
#include "mmkt/image/convert.h"
#include "mmkt/io/files.h"

namespace mmkt::eval {
namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr double kTextScale = 0.45;
constexpr double kTitleScale = 0.7;
constexpr int kLine = 18;  // line height of kTextScale text
constexpr int kPad = 4;
const cv::Scalar kBlack(0, 0, 0), kWhite(255, 255, 255), kGrey(160, 160, 160);

// tab20 (matplotlib), dark shades first: the first ten classes get the tab10 colours, which
// are easier to tell apart than neighbouring tab20 pairs. RGB.
const int kPalette[20][3] = {{31, 119, 180},  {255, 127, 14},  {44, 160, 44},   {214, 39, 40},
                             {148, 103, 189}, {140, 86, 75},   {227, 119, 194}, {127, 127, 127},
                             {188, 189, 34},  {23, 190, 207},  {174, 199, 232}, {255, 187, 120},
                             {152, 223, 138}, {255, 152, 150}, {197, 176, 213}, {196, 156, 148},
                             {247, 182, 210}, {199, 199, 199}, {219, 219, 141}, {158, 218, 229}};

cv::Scalar class_colour(std::int64_t label) {
  if (label < 0) return kGrey;
  const auto* c = kPalette[label % 20];
  return cv::Scalar(c[2], c[1], c[0]);  // BGR
}

// Hershey fonts draw ASCII only: each other UTF-8 code point becomes one '?'.
std::string ascii(const std::string& utf8) {
  std::string out;
  for (const char ch : utf8) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out.push_back(c == '\t' || c == '\n' ? ' ' : ch);
    } else if (c >= 0xc0) {
      out.push_back('?');  // a lead byte; continuation bytes (0x80-0xbf) are dropped
    }
  }
  return out;
}

int text_width(const std::string& s, double scale, int thickness = 1) {
  int baseline = 0;
  return cv::getTextSize(s, kFont, scale, thickness, &baseline).width;
}

// The longest prefix of s (with "..." when cut) that fits in `width` pixels.
std::string fit(const std::string& text, int width, double scale) {
  std::string s = ascii(text);
  if (text_width(s, scale) <= width) return s;
  while (!s.empty() && text_width(s + "...", scale) > width) s.pop_back();
  return s + "...";
}

// Greedy word wrap into lines at most `width` pixels wide; words longer than a line are split.
std::vector<std::string> wrap(const std::string& text, int width, double scale) {
  std::vector<std::string> lines;
  std::string line;
  const std::string s = ascii(text);
  std::size_t pos = 0;
  while (pos < s.size()) {
    while (pos < s.size() && s[pos] == ' ') ++pos;
    if (pos >= s.size()) break;
    const auto end = std::min(s.find(' ', pos), s.size());
    std::string word = s.substr(pos, end - pos);
    pos = end;
    const std::string joined = line.empty() ? word : line + " " + word;
    if (text_width(joined, scale) <= width) {
      line = joined;
      continue;
    }
    if (!line.empty()) lines.push_back(line);
    line.clear();
    while (text_width(word, scale) > width && word.size() > 1) {
      std::size_t n = word.size() - 1;
      while (n > 1 && text_width(word.substr(0, n), scale) > width) --n;
      lines.push_back(word.substr(0, n));
      word = word.substr(n);
    }
    line = word;
  }
  if (!line.empty()) lines.push_back(line);
  if (lines.empty()) lines.push_back("");
  return lines;
}

void put_text(cv::Mat& canvas, const std::string& s, cv::Point origin, double scale,
              const cv::Scalar& colour, int thickness = 1) {
  cv::putText(canvas, s, origin, kFont, scale, colour, thickness, cv::LINE_AA);
}

// Lines of text from the top-left corner (x, y), kLine apart.
void put_lines(cv::Mat& canvas, const std::vector<std::string>& lines, int x, int y) {
  for (std::size_t i = 0; i < lines.size(); ++i) {
    put_text(canvas, lines[i], {x, y + static_cast<int>(i + 1) * kLine - 5}, kTextScale, kBlack);
  }
}

void write_mat_png(const std::string& path, const cv::Mat& bgr) {
  std::vector<unsigned char> bytes;
  MMKT_CHECK(cv::imencode(".png", bgr, bytes), path, ": PNG encoding failed");
  io::write_file_atomic(path, std::string(bytes.begin(), bytes.end()));
}

// One image [C,H,W] in [0,1] (C = 1 or 3) as 8-bit BGR, upscaled by `scale` (nearest).
cv::Mat image_tile(const torch::Tensor& image, int scale) {
  cv::Mat m = image::tensor_to_mat(image);
  if (m.channels() == 1) cv::cvtColor(m, m, cv::COLOR_GRAY2BGR);
  cv::Mat out;
  cv::resize(m, out, cv::Size(), scale, scale, cv::INTER_NEAREST);
  return out;
}

void paste(cv::Mat& canvas, const cv::Mat& tile, int x, int y) {
  tile.copyTo(canvas(cv::Rect(x, y, tile.cols, tile.rows)));
}

void check_images(const torch::Tensor& t, int dims, const char* what, const std::string& path) {
  MMKT_CHECK_INPUT(
      t.defined() && t.dim() == dims && (t.size(dims - 3) == 1 || t.size(dims - 3) == 3), path,
      ": ", what, " must be ", dims == 5 ? "[R,K,C,H,W]" : "[R,C,H,W]", " with C = 1 or 3, got ",
      t.defined() ? t.sizes() : torch::IntArrayRef{});
  MMKT_CHECK_INPUT(t.numel() > 0, path, ": ", what, " is empty, got ", t.sizes());
}

}  // namespace

torch::Tensor pca_2d(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  MMKT_CHECK_INPUT(x.defined() && x.dim() == 2 && x.size(0) > 0 && x.size(1) > 0,
                   "pca_2d expects [N,D] with N, D > 0, got ",
                   x.defined() ? x.sizes() : torch::IntArrayRef{});
  const auto xd = x.detach().to(torch::kCPU, torch::kFloat64);
  MMKT_CHECK_INPUT(torch::isfinite(xd).all().item<bool>(), "pca_2d: x has NaN or infinite values");
  const auto n = xd.size(0), d = xd.size(1);
  const auto centred = xd - xd.mean(0, /*keepdim=*/true);
  // Covariance C = Xc^T Xc / max(N-1, 1); eigh returns eigenvalues in ascending order.
  const auto cov = centred.t().mm(centred) / static_cast<double>(std::max<std::int64_t>(n - 1, 1));
  const auto [values, vectors] = torch::linalg::eigh(cov, "L");
  const auto k = std::min<std::int64_t>(2, d);
  auto components = vectors.narrow(1, d - k, k).flip({1});  // [D,k], largest first
  // Sign: the largest-magnitude loading of each component is positive.
  const auto top = components.abs().argmax(0);
  const auto signs = components.gather(0, top.unsqueeze(0)).sign();
  components = components * torch::where(signs == 0, torch::ones_like(signs), signs);
  auto projected = centred.mm(components);
  if (k < 2) projected = torch::cat({projected, torch::zeros({n, 1}, projected.options())}, 1);
  return projected.to(torch::kFloat32);
}

void write_scatter_png(const std::string& path, const torch::Tensor& points,
                       const torch::Tensor& labels, const std::vector<std::string>& class_names,
                       const std::string& title, int size) {
  MMKT_CHECK_INPUT(points.defined() && points.dim() == 2 && points.size(1) == 2, path,
                   ": scatter points must be [N,2], got ",
                   points.defined() ? points.sizes() : torch::IntArrayRef{});
  const auto n = points.size(0);
  MMKT_CHECK_INPUT(labels.defined() && labels.dim() == 1 && labels.size(0) == n, path,
                   ": scatter labels must be [", n, "], got ",
                   labels.defined() ? labels.sizes() : torch::IntArrayRef{});
  MMKT_CHECK_INPUT(size >= 300, path, ": scatter size must be at least 300 px, got ", size);
  const auto p = points.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const auto l = labels.detach().to(torch::kCPU, torch::kInt64).contiguous();
  const auto* pp = p.data_ptr<double>();
  const auto* lp = l.data_ptr<std::int64_t>();
  const auto classes = static_cast<std::int64_t>(class_names.size());
  for (std::int64_t i = 0; i < n; ++i) {
    MMKT_CHECK_INPUT(lp[i] >= -1 && lp[i] < classes, path, ": scatter label ", lp[i], " of point ",
                     i, " is outside -1..", classes - 1, " (", classes, " class names)");
    MMKT_CHECK_INPUT(std::isfinite(pp[2 * i]) && std::isfinite(pp[2 * i + 1]), path,
                     ": scatter point ", i, " is not finite");
  }

  // Layout: title band 40 px, legend column 200 px at right, plot frame inside.
  constexpr int kLegend = 200;
  cv::Mat canvas(size, size, CV_8UC3, kWhite);
  put_text(canvas, fit(title, size - 20, kTitleScale), {10, 28}, kTitleScale, kBlack, 2);
  const cv::Rect plot(60, 50, size - kLegend - 70, size - 90);
  cv::rectangle(canvas, plot, kGrey, 1);

  // Data range with a 5% margin; a zero range is widened to +-0.5.
  double lo[2] = {0, 0}, hi[2] = {1, 1};
  for (int a = 0; a < 2 && n > 0; ++a) {
    lo[a] = hi[a] = pp[a];
    for (std::int64_t i = 0; i < n; ++i) {
      lo[a] = std::min(lo[a], pp[2 * i + a]);
      hi[a] = std::max(hi[a], pp[2 * i + a]);
    }
    if (hi[a] - lo[a] < 1e-12) {
      lo[a] -= 0.5;
      hi[a] += 0.5;
    }
    const double m = 0.05 * (hi[a] - lo[a]);
    lo[a] -= m;
    hi[a] += m;
  }
  char buf[64];
  auto tick = [&](double v) {
    std::snprintf(buf, sizeof buf, "%.3g", v);
    return std::string(buf);
  };
  put_text(canvas, tick(lo[0]), {plot.x, plot.y + plot.height + 16}, 0.4, kBlack);
  const auto xmax = tick(hi[0]);
  put_text(canvas, xmax, {plot.x + plot.width - text_width(xmax, 0.4), plot.y + plot.height + 16},
           0.4, kBlack);
  put_text(canvas, tick(lo[1]), {4, plot.y + plot.height}, 0.4, kBlack);
  put_text(canvas, tick(hi[1]), {4, plot.y + 12}, 0.4, kBlack);

  for (std::int64_t i = 0; i < n; ++i) {
    const double u = (pp[2 * i] - lo[0]) / (hi[0] - lo[0]);
    const double v = (pp[2 * i + 1] - lo[1]) / (hi[1] - lo[1]);
    const cv::Point at(
        plot.x + static_cast<int>(std::lround(u * (plot.width - 1))),
        plot.y + plot.height - 1 - static_cast<int>(std::lround(v * (plot.height - 1))));
    cv::circle(canvas, at, 3, class_colour(lp[i]), cv::FILLED, cv::LINE_AA);
  }

  // Legend: one line per class; what does not fit is summarised as "+k more".
  const int lx = size - kLegend + 5;
  int y = plot.y;
  const int rows_fit = (plot.height - kLine) / kLine;
  for (std::int64_t c = 0; c < classes; ++c) {
    if (c == rows_fit - 1 && classes > rows_fit) {
      put_text(canvas, "+" + std::to_string(classes - c) + " more", {lx, y + 13}, kTextScale,
               kBlack);
      break;
    }
    cv::circle(canvas, {lx + 6, y + 9}, 5, class_colour(c), cv::FILLED, cv::LINE_AA);
    put_text(canvas, fit(class_names[static_cast<std::size_t>(c)], kLegend - 30, kTextScale),
             {lx + 18, y + 14}, kTextScale, kBlack);
    y += kLine;
  }
  write_mat_png(path, canvas);
}

torch::Tensor confusion_matrix(const torch::Tensor& truth, const torch::Tensor& predicted,
                               std::int64_t rows, std::int64_t cols) {
  MMKT_CHECK_INPUT(rows > 0 && cols > 0, "confusion_matrix: rows and cols must be positive, got ",
                   rows, " and ", cols);
  MMKT_CHECK_INPUT(truth.defined() && predicted.defined() && truth.dim() == 1 &&
                       predicted.dim() == 1 && truth.size(0) == predicted.size(0),
                   "confusion_matrix: truth and predicted must be [N] with the same N, got ",
                   truth.defined() ? truth.sizes() : torch::IntArrayRef{}, " and ",
                   predicted.defined() ? predicted.sizes() : torch::IntArrayRef{});
  const auto t = truth.detach().to(torch::kCPU, torch::kInt64);
  const auto p = predicted.detach().to(torch::kCPU, torch::kInt64);
  if (t.numel() > 0) {
    MMKT_CHECK_INPUT(t.min().item<std::int64_t>() >= 0 && t.max().item<std::int64_t>() < rows,
                     "confusion_matrix: true labels must be in 0..", rows - 1, ", got ",
                     t.min().item<std::int64_t>(), "..", t.max().item<std::int64_t>());
    MMKT_CHECK_INPUT(p.min().item<std::int64_t>() >= 0 && p.max().item<std::int64_t>() < cols,
                     "confusion_matrix: predictions must be in 0..", cols - 1, ", got ",
                     p.min().item<std::int64_t>(), "..", p.max().item<std::int64_t>());
  }
  // Cell (r, c) is bin r*cols + c.
  return torch::bincount(t * cols + p, {}, rows * cols).reshape({rows, cols}).to(torch::kInt64);
}

void write_confusion_png(const std::string& path, const torch::Tensor& confusion,
                         const std::vector<std::string>& row_names,
                         const std::vector<std::string>& col_names, const std::string& title) {
  MMKT_CHECK_INPUT(confusion.defined() && confusion.dim() == 2 && confusion.numel() > 0, path,
                   ": confusion matrix must be [R,C] with R, C > 0, got ",
                   confusion.defined() ? confusion.sizes() : torch::IntArrayRef{});
  const auto rows = confusion.size(0), cols = confusion.size(1);
  MMKT_CHECK_INPUT(static_cast<std::int64_t>(row_names.size()) == rows &&
                       static_cast<std::int64_t>(col_names.size()) == cols,
                   path, ": confusion matrix ", confusion.sizes(), " needs ", rows,
                   " row names and ", cols, " column names, got ", row_names.size(), " and ",
                   col_names.size());
  const auto counts = confusion.detach().to(torch::kCPU, torch::kFloat64);
  MMKT_CHECK_INPUT(counts.min().item<double>() >= 0, path, ": confusion counts must be >= 0");
  // Row shares: count / row total (0 for an empty row).
  const auto totals = counts.sum(1, /*keepdim=*/true);
  const auto share = (counts / totals.clamp_min(1e-300)).contiguous();
  const auto* sp = share.data_ptr<double>();

  constexpr int kLabels = 170, kTitle = 40, kMargin = 20;
  const int cell = std::clamp(720 / static_cast<int>(std::max(rows, cols)), 14, 60);
  const int gx = kLabels, gy = kTitle + kLabels;
  cv::Mat canvas(gy + static_cast<int>(rows) * cell + kMargin,
                 gx + static_cast<int>(cols) * cell + kMargin, CV_8UC3, kWhite);
  put_text(canvas, fit(title, canvas.cols - 20, kTitleScale), {10, 28}, kTitleScale, kBlack, 2);
  put_text(canvas, "rows: true class", {10, gy - 26}, 0.4, kBlack);
  put_text(canvas, "columns: predicted", {10, gy - 8}, 0.4, kBlack);

  const double name_scale = cell >= 20 ? kTextScale : 0.35;
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto name = fit(row_names[static_cast<std::size_t>(r)], kLabels - 12, name_scale);
    put_text(
        canvas, name,
        {gx - 6 - text_width(name, name_scale), gy + static_cast<int>(r) * cell + cell / 2 + 5},
        name_scale, kBlack);
  }
  // Column names read bottom to top: drawn on a strip, rotated 90 degrees counter-clockwise.
  for (std::int64_t c = 0; c < cols; ++c) {
    cv::Mat strip(cell, kLabels - 10, CV_8UC3, kWhite);
    put_text(strip, fit(col_names[static_cast<std::size_t>(c)], kLabels - 12, name_scale),
             {2, cell / 2 + 5}, name_scale, kBlack);
    cv::Mat upright;
    cv::rotate(strip, upright, cv::ROTATE_90_COUNTERCLOCKWISE);
    paste(canvas, upright, gx + static_cast<int>(c) * cell, kTitle + 5);
  }

  // Cell colour: white + share * (dark blue - white), per channel (BGR).
  const double dark[3] = {107, 48, 8};
  const double value_scale = cell >= 40 ? 0.4 : 0.3;
  char buf[16];
  for (std::int64_t r = 0; r < rows; ++r) {
    const bool empty_row = totals[r][0].item<double>() == 0;
    for (std::int64_t c = 0; c < cols; ++c) {
      const double s = sp[r * cols + c];
      const cv::Rect box(gx + static_cast<int>(c) * cell, gy + static_cast<int>(r) * cell, cell,
                         cell);
      cv::Scalar colour;
      for (int k = 0; k < 3; ++k) colour[k] = std::round(255.0 + s * (dark[k] - 255.0));
      cv::rectangle(canvas, box, colour, cv::FILLED);
      cv::rectangle(canvas, box, cv::Scalar(210, 210, 210), 1);
      if (cell >= 28 && !empty_row) {
        std::snprintf(buf, sizeof buf, "%.2f", s);
        const int w = text_width(buf, value_scale);
        put_text(canvas, buf, {box.x + (cell - w) / 2, box.y + cell / 2 + 4}, value_scale,
                 s > 0.5 ? kWhite : kBlack);
      }
    }
  }
  write_mat_png(path, canvas);
}

void write_image_rows_png(const std::string& path, const std::vector<std::string>& row_captions,
                          const torch::Tensor& images, int caption_width, int scale) {
  check_images(images, 5, "images", path);
  const auto rows = images.size(0), k = images.size(1), h = images.size(3), w = images.size(4);
  MMKT_CHECK_INPUT(static_cast<std::int64_t>(row_captions.size()) == rows, path, ": ",
                   row_captions.size(), " captions for ", rows, " rows of images");
  if (scale == 0) scale = image::viewing_scale(h);
  MMKT_CHECK_INPUT(caption_width >= 40 && scale >= 1, path,
                   ": caption_width must be >= 40 and scale >= 1, got ", caption_width, " and ",
                   scale);
  const int tile_w = static_cast<int>(w) * scale, tile_h = static_cast<int>(h) * scale;

  std::vector<std::vector<std::string>> lines;
  std::vector<int> row_h;
  int height = kPad;
  for (const auto& caption : row_captions) {
    lines.push_back(wrap(caption, caption_width - 2 * kPad, kTextScale));
    row_h.push_back(std::max(tile_h, static_cast<int>(lines.back().size()) * kLine + 2 * kPad));
    height += row_h.back() + kPad;
  }
  cv::Mat canvas(height, caption_width + static_cast<int>(k) * (tile_w + kPad), CV_8UC3, kWhite);
  const auto cpu = images.detach().to(torch::kCPU);
  int y = kPad;
  for (std::int64_t r = 0; r < rows; ++r) {
    put_lines(canvas, lines[static_cast<std::size_t>(r)], kPad, y + kPad);
    for (std::int64_t j = 0; j < k; ++j) {
      paste(canvas, image_tile(cpu[r][j], scale),
            caption_width + static_cast<int>(j) * (tile_w + kPad), y);
    }
    y += row_h[static_cast<std::size_t>(r)] + kPad;
  }
  write_mat_png(path, canvas);
}

void write_contact_sheet_png(const std::string& path,
                             const std::vector<std::string>& query_captions,
                             const torch::Tensor& query_images, const torch::Tensor& results,
                             const torch::Tensor& relevant, int scale) {
  check_images(results, 5, "results", path);
  const auto rows = results.size(0), k = results.size(1);
  const auto h = results.size(3), w = results.size(4);
  MMKT_CHECK_INPUT(static_cast<std::int64_t>(query_captions.size()) == rows, path, ": ",
                   query_captions.size(), " query captions for ", rows, " rows of results");
  MMKT_CHECK_INPUT(relevant.defined() && relevant.dim() == 2 && relevant.size(0) == rows &&
                       relevant.size(1) == k,
                   path, ": relevant must be [", rows, ",", k, "], got ",
                   relevant.defined() ? relevant.sizes() : torch::IntArrayRef{});
  const bool with_queries = query_images.defined();
  if (with_queries) {
    check_images(query_images, 4, "query_images", path);
    // Grey and colour may mix (tiles are drawn in colour); the sizes must agree.
    MMKT_CHECK_INPUT(
        query_images.size(0) == rows && query_images.size(2) == h && query_images.size(3) == w,
        path, ": query_images ", query_images.sizes(), " do not match results ", results.sizes());
  }
  if (scale == 0) scale = image::viewing_scale(h);
  MMKT_CHECK_INPUT(scale >= 1, path, ": scale must be >= 1, got ", scale);

  constexpr int kCaption = 260, kFrame = 3;
  const int tile_w = static_cast<int>(w) * scale + 2 * kFrame;
  const int tile_h = static_cast<int>(h) * scale + 2 * kFrame;
  const int caption_x = kPad + (with_queries ? tile_w + kPad : 0);
  const int results_x = caption_x + kCaption;

  std::vector<std::vector<std::string>> lines;
  std::vector<int> row_h;
  int height = kPad;
  for (const auto& caption : query_captions) {
    lines.push_back(wrap(caption, kCaption - 2 * kPad, kTextScale));
    row_h.push_back(std::max(tile_h, static_cast<int>(lines.back().size()) * kLine + 2 * kPad));
    height += row_h.back() + kPad;
  }
  cv::Mat canvas(height, results_x + static_cast<int>(k) * (tile_w + kPad), CV_8UC3, kWhite);
  const auto res = results.detach().to(torch::kCPU);
  const auto rel = relevant.detach().to(torch::kCPU).ne(0);
  const auto queries = with_queries ? query_images.detach().to(torch::kCPU) : torch::Tensor();
  // A framed tile: the frame colour fills the tile, the image covers all but its border.
  auto framed = [&](const torch::Tensor& image, const cv::Scalar& frame, int x, int y) {
    cv::rectangle(canvas, cv::Rect(x, y, tile_w, tile_h), frame, cv::FILLED);
    paste(canvas, image_tile(image, scale), x + kFrame, y + kFrame);
  };
  const cv::Scalar green(0, 170, 0), red(0, 0, 220), neutral(90, 90, 90);
  int y = kPad;
  for (std::int64_t r = 0; r < rows; ++r) {
    if (with_queries) framed(queries[r], neutral, kPad, y);
    put_lines(canvas, lines[static_cast<std::size_t>(r)], caption_x + kPad, y + kPad);
    for (std::int64_t j = 0; j < k; ++j) {
      framed(res[r][j], rel[r][j].item<bool>() ? green : red,
             results_x + static_cast<int>(j) * (tile_w + kPad), y);
    }
    y += row_h[static_cast<std::size_t>(r)] + kPad;
  }
  write_mat_png(path, canvas);
}

}  // namespace mmkt::eval
