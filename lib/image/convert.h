// OpenCV <-> tensor: decoding, resizing, centre cropping, colour order, grids and PNG output.
// Tensors are [C,H,W] in RGB order (or one grey channel); OpenCV matrices are HWC in BGR.
#pragma once

#include <string>
#include <vector>

#include <torch/types.h>
#include <opencv2/core.hpp>

namespace mmkt::image {

// Decodes an image file into 8-bit BGR (channels = 3) or grey (channels = 1). Throws
// InputError naming the file when it is missing or OpenCV cannot decode it.
cv::Mat load_image(const std::string& path, int channels);
// Image files larger than this are refused before they are read (cv::imdecode takes an int
// length, and no photo a model here trains on comes near it).
constexpr std::int64_t kMaxImageFileBytes = 1ll << 30;
// The bytes of an image file, refused (InputError naming it) when missing, empty or over
// kMaxImageFileBytes.
std::string read_image_file(const std::string& path);
// decode_image: load_image on bytes already in memory (an upload); `name` names them in errors.
cv::Mat decode_image(const std::string& bytes, int channels, const std::string& name);
// The largest intermediate image resize_center_crop makes (a 1 x 65000 sliver with a short side
// brought to 1024 would be 66.5 million pixels wide, about 200 GB).
constexpr std::int64_t kMaxResizedPixels = 1ll << 26;

// Resizes the shorter side to `size` (area interpolation when shrinking, cubic when growing)
// and crops the centre square size x size. Throws InputError when the resized image would
// exceed kMaxResizedPixels (an extreme aspect ratio).
cv::Mat resize_center_crop(const cv::Mat& image, int size);
// load_image + resize_center_crop, every error naming the file: how an image file becomes a
// size x size item (manifests and queries).
cv::Mat load_square_image(const std::string& path, int channels, int size);
// decode_image + resize_center_crop, every error naming `name`.
cv::Mat decode_square_image(const std::string& bytes, int channels, int size,
                            const std::string& name);
// 8-bit HWC BGR/grey -> uint8 tensor [C,H,W] RGB/grey (owns its memory).
torch::Tensor mat_to_tensor(const cv::Mat& image);
// Float [C,H,W] in [0,1] (or uint8) RGB/grey -> 8-bit BGR/grey matrix.
cv::Mat tensor_to_mat(const torch::Tensor& image);
// Tiles images [N,C,H,W] into a grid `columns` wide with `padding` pixels between them.
torch::Tensor make_grid(const torch::Tensor& images, int columns, int padding = 2,
                        float pad_value = 1.0f);
// Nearest-neighbour upscaling of the last two dimensions by an integer factor (pixels stay
// sharp squares: 28-pixel items are unreadable at their own size).
torch::Tensor upscale_nearest(const torch::Tensor& images, int factor);
// The factor that brings an item of `height` pixels to at least 112 pixels (1 to 8).
int viewing_scale(std::int64_t height);
// A tensor image as PNG bytes.
std::string encode_png(const torch::Tensor& image);
// Writes a tensor image as PNG, atomically; throws Error on failure.
void write_png(const std::string& path, const torch::Tensor& image);

}  // namespace mmkt::image
