// A folder of "your own photos", made from a labelled image dataset: what a researcher brings
// to mmkt. Images of mixed sizes (28-120 px by default) and formats (PNG, JPEG, BMP): a third
// grey, a third colour-tinted, a third tinted on a light coloured background (a product shot);
// each with a free-form caption ("catalogue image of a strappy sandal", "product shot: jumper")
// built from the class-name paraphrases of the dataset's class-attribute file, and its class
// name. Written as images/ plus manifest.jsonl (the format of data/manifest.h). The own-data
// experiment (experiments/own_data.sh) and its test train on such folders.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include <torch/types.h>

#include "mmkt/data/class_attributes.h"
#include "mmkt/data/dataset.h"

namespace mmkt::data {

struct PhotoFolderOptions {
  std::string out;            // folder to write (created; manifest.jsonl + images/)
  std::int64_t count = 3000;  // items, drawn at random without replacement from the source
  std::uint64_t seed = 0;
  int min_size = 28, max_size = 120;  // square side in pixels, uniform
};

// One item rendered as a user photo, as the folder stores it: the grey source image a ([H,W] in
// [0,1], object bright on black) in one of three styles drawn from rng (grey; tinted,
// pixel = colour a; a product shot, pixel = background (1 - a) + colour a on a light
// background), resized to a side drawn from [min_size, max_size] and encoded as PNG, JPEG
// (quality 90) or BMP. strength in [0,1] moves the colour from white and the background from
// black towards the drawn ones (1: the folder's rendering; 0: grey on black). The same draws of
// rng in the same order whatever the strength. The photo covariate shift (eval/shift.h) uses it.
struct RenderedPhoto {
  std::string bytes;   // the encoded file
  std::string format;  // ".png", ".jpg" or ".bmp"
};
RenderedPhoto render_photo(const torch::Tensor& grey, std::mt19937_64& rng, int min_size,
                           int max_size, double strength = 1.0);

// Writes the folder from `source` (grey [1,H,W] images in [0,1], labels) with captions from
// `classes`; returns the manifest's path. Every file is written whole or not at all.
std::string write_photo_folder(const Dataset& source, const ClassAttributes& classes,
                               const PhotoFolderOptions& options);

}  // namespace mmkt::data
