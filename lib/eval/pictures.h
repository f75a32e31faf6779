// PNG pictures for reports, drawn with OpenCV: latent scatter plots (after PCA), confusion
// heatmaps, caption/image rows and retrieval contact sheets. Every writer creates the parent
// folders and writes atomically. Text is drawn with the Hershey fonts, which only have ASCII:
// other UTF-8 characters are shown as '?'.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

namespace mmkt::eval {

// Projections of x [N,D] on its top two principal components, [N,2] float32 (x is centred; the
// second column is 0 when D = 1). Each component's sign makes its largest-magnitude loading
// positive, so the picture does not flip between runs.
torch::Tensor pca_2d(const torch::Tensor& x);

// Scatter plot of points [N,2] coloured by labels [N] int64 (a 20-colour palette, tab20,
// cycled; label -1 = unlabelled, grey), with a legend of class_names and a title.
// The image is size x size pixels; axes span the data range plus a 5% margin.
void write_scatter_png(const std::string& path, const torch::Tensor& points,
                       const torch::Tensor& labels, const std::vector<std::string>& class_names,
                       const std::string& title, int size = 800);

// Counts [rows, cols] int64 of (truth, predicted) pairs; both [N] int64 with values in range.
torch::Tensor confusion_matrix(const torch::Tensor& truth, const torch::Tensor& predicted,
                               std::int64_t rows, std::int64_t cols);

// Heatmap of a confusion matrix [R,C] of counts (rows = true class, columns = predicted),
// normalised per row from white (0) to dark blue RGB (8, 48, 107) (1), the share printed in
// each cell when cells are at least 28 px. Layout: cell = clamp(720 / max(R,C), 14, 60) px;
// width = 170 + C*cell + 20, height = 40 + 170 + R*cell + 20; cell (r,c) has its top-left
// corner at (170 + c*cell, 210 + r*cell).
void write_confusion_png(const std::string& path, const torch::Tensor& confusion,
                         const std::vector<std::string>& row_names,
                         const std::vector<std::string>& col_names, const std::string& title);

// One row per caption: the caption (wrapped) on a white strip caption_width wide, then the K
// images of images [R,K,C,H,W] (float in [0,1], C = 1 or 3) upscaled by `scale` (nearest;
// 0 = image::viewing_scale(H): 4x for 28-pixel items, 2x for 64-pixel ones).
// Layout (pad 4, line 18 px): row height = max(H*scale, lines*18 + 8);
// width = caption_width + K*(W*scale + 4), height = 4 + sum of (row height + 4).
void write_image_rows_png(const std::string& path, const std::vector<std::string>& row_captions,
                          const torch::Tensor& images, int caption_width = 260, int scale = 0);

// Retrieval contact sheet, one row per query: the query image (query_images [R,C,H,W], C = 1
// or 3 whatever the results' C, or undefined for text queries), its caption on a 260 px strip, then
// the top-K results [R,K,C,H,W] framed 3 px green when relevant [R,K] and red when not (scale 0 =
// image::viewing_scale(H)). Layout (pad 4, tile t = W*scale + 6 wide, H*scale + 6 high): width = 4
// + (query image ? t + 4 : 0) + 260 + K*(t + 4); row height = max(H*scale + 6, lines*18 + 8);
// height = 4 + sum of (row height + 4).
void write_contact_sheet_png(const std::string& path,
                             const std::vector<std::string>& query_captions,
                             const torch::Tensor& query_images, const torch::Tensor& results,
                             const torch::Tensor& relevant, int scale = 0);

}  // namespace mmkt::eval
