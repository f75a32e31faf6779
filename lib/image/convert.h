// OpenCV <-> tensor: decoding, resizing, centre cropping, colour order, grids and PNG output.
// Tensors are [C,H,W] in RGB order (or one grey channel); OpenCV matrices are HWC in BGR.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <torch/types.h>

namespace mmkt::image {

// Decodes an image file into 8-bit BGR (channels = 3) or grey (channels = 1). Throws
// InputError naming the file when it is missing or OpenCV cannot decode it.
cv::Mat load_image(const std::string& path, int channels);
// Resizes the shorter side to `size` (area interpolation when shrinking, cubic when growing)
// and crops the centre square size x size.
cv::Mat resize_center_crop(const cv::Mat& image, int size);
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
// Writes a tensor image as PNG, atomically; throws Error on failure.
void write_png(const std::string& path, const torch::Tensor& image);

}  // namespace mmkt::image
