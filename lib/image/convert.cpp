#include "mmkt/image/convert.h"

#include <algorithm>

#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "mmkt/core/error.h"
#include "mmkt/io/files.h"

namespace mmkt::image {

std::string read_image_file(const std::string& path) {
  if (!io::file_exists(path)) fail_input(path, ": image file does not exist");
  const auto file_bytes = io::file_size(path);
  MMKT_CHECK_INPUT(file_bytes <= static_cast<std::uint64_t>(kMaxImageFileBytes), path,
                   ": image file of ", file_bytes, " bytes is over the limit of ",
                   kMaxImageFileBytes);
  std::string bytes = io::read_file(path);
  MMKT_CHECK_INPUT(!bytes.empty(), path, ": image file is empty");
  return bytes;
}

cv::Mat decode_image(const std::string& bytes, int channels, const std::string& name) {
  MMKT_CHECK_INPUT(channels == 1 || channels == 3, "channels must be 1 or 3, got ", channels);
  MMKT_CHECK_INPUT(!bytes.empty(), name, ": the image is empty");
  MMKT_CHECK_INPUT(bytes.size() <= static_cast<std::uint64_t>(kMaxImageFileBytes), name,
                   ": image of ", bytes.size(), " bytes is over the limit of ", kMaxImageFileBytes);
  // imdecode on bytes we hold ourselves: a clear error for unreadable files, and no OpenCV
  // warnings printed for undecodable ones.
  const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  cv::Mat decoded;
  try {
    decoded = cv::imdecode(buffer, channels == 3 ? cv::IMREAD_COLOR : cv::IMREAD_GRAYSCALE);
  } catch (const cv::Exception& e) {
    fail_input(name, ": OpenCV cannot decode this image: ", e.what());
  }
  MMKT_CHECK_INPUT(!decoded.empty(), name,
                   ": OpenCV cannot decode this image (corrupt or unsupported format)");
  if (decoded.depth() != CV_8U) decoded.convertTo(decoded, CV_8U);
  return decoded;
}

cv::Mat load_image(const std::string& path, int channels) {
  MMKT_CHECK_INPUT(channels == 1 || channels == 3, "channels must be 1 or 3, got ", channels);
  return decode_image(read_image_file(path), channels, path);
}

cv::Mat resize_center_crop(const cv::Mat& image, int size) {
  MMKT_CHECK(size > 0 && !image.empty(), "resize_center_crop: empty image or size ", size);
  const int shorter = std::min(image.rows, image.cols);
  const double scale = static_cast<double>(size) / shorter;
  cv::Mat resized;
  if (scale != 1.0) {
    const auto w = std::max<std::int64_t>(size, std::llround(image.cols * scale));
    const auto h = std::max<std::int64_t>(size, std::llround(image.rows * scale));
    MMKT_CHECK_INPUT(w * h <= kMaxResizedPixels, "a ", image.cols, "x", image.rows,
                     " image brought to a short side of ", size, " would be ", w, "x", h,
                     " pixels before its centre crop, over the limit of ", kMaxResizedPixels,
                     " (aspect ratio too extreme)");
    cv::resize(image, resized, cv::Size(static_cast<int>(w), static_cast<int>(h)), 0, 0,
               scale < 1.0 ? cv::INTER_AREA : cv::INTER_CUBIC);
  } else {
    resized = image;
  }
  const int x = (resized.cols - size) / 2;
  const int y = (resized.rows - size) / 2;
  return resized(cv::Rect(x, y, size, size)).clone();
}

cv::Mat decode_square_image(const std::string& bytes, int channels, int size,
                            const std::string& name) {
  const cv::Mat decoded = decode_image(bytes, channels, name);  // its errors name the image
  try {
    return resize_center_crop(decoded, size);
  } catch (const std::exception& e) {  // OpenCV's allocation errors included
    fail_input(name, ": ", e.what());
  }
}

cv::Mat load_square_image(const std::string& path, int channels, int size) {
  MMKT_CHECK_INPUT(channels == 1 || channels == 3, "channels must be 1 or 3, got ", channels);
  return decode_square_image(read_image_file(path), channels, size, path);
}

torch::Tensor mat_to_tensor(const cv::Mat& image) {
  MMKT_CHECK(image.depth() == CV_8U, "mat_to_tensor expects 8-bit images");
  cv::Mat rgb;
  if (image.channels() == 3) {
    cv::cvtColor(image, rgb, cv::COLOR_BGR2RGB);
  } else {
    rgb = image.isContinuous() ? image : image.clone();
  }
  if (!rgb.isContinuous()) rgb = rgb.clone();
  // from_blob does not own the memory: clone before the Mat goes away.
  return torch::from_blob(rgb.data, {rgb.rows, rgb.cols, rgb.channels()}, torch::kUInt8)
      .permute({2, 0, 1})
      .contiguous()
      .clone();
}

cv::Mat tensor_to_mat(const torch::Tensor& image) {
  MMKT_CHECK(image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3),
             "tensor_to_mat expects [C,H,W] with C = 1 or 3, got ", image.sizes());
  torch::Tensor t = image.detach().to(torch::kCPU);
  if (t.scalar_type() != torch::kUInt8) {
    t = t.to(torch::kFloat32).clamp(0, 1).mul(255).round().to(torch::kUInt8);
  }
  t = t.permute({1, 2, 0}).contiguous();
  const int c = static_cast<int>(t.size(2));
  cv::Mat mat(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), CV_8UC(c), t.data_ptr());
  cv::Mat out;
  if (c == 3) {
    cv::cvtColor(mat, out, cv::COLOR_RGB2BGR);
  } else {
    out = mat.clone();
  }
  return out;
}

torch::Tensor make_grid(const torch::Tensor& images, int columns, int padding, float pad_value) {
  MMKT_CHECK(images.dim() == 4 && images.size(0) > 0, "make_grid expects [N,C,H,W], got ",
             images.sizes());
  const auto n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  const auto cols = std::min<std::int64_t>(columns, n);
  const auto rows = (n + cols - 1) / cols;
  auto grid = torch::full({c, rows * (h + padding) + padding, cols * (w + padding) + padding},
                          pad_value, images.options().dtype(torch::kFloat32));
  const auto src = images.to(torch::kFloat32);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto r = i / cols, col = i % cols;
    grid.narrow(1, padding + r * (h + padding), h)
        .narrow(2, padding + col * (w + padding), w)
        .copy_(src[i]);
  }
  return grid;
}

torch::Tensor upscale_nearest(const torch::Tensor& images, int factor) {
  MMKT_CHECK(factor >= 1 && images.dim() >= 2, "upscale_nearest: factor ", factor, " for ",
             images.sizes());
  if (factor == 1) return images;
  return images.repeat_interleave(factor, -1).repeat_interleave(factor, -2);
}

int viewing_scale(std::int64_t height) {
  return static_cast<int>(
      std::clamp<std::int64_t>((112 + height - 1) / std::max<std::int64_t>(height, 1), 1, 8));
}

std::string encode_png(const torch::Tensor& image) {
  std::vector<unsigned char> bytes;
  MMKT_CHECK(cv::imencode(".png", tensor_to_mat(image), bytes), "PNG encoding failed");
  return std::string(bytes.begin(), bytes.end());
}

void write_png(const std::string& path, const torch::Tensor& image) {
  io::write_file_atomic(path, encode_png(image));
}

}  // namespace mmkt::image
