// A folder of "your own photos", made from a labelled image dataset: what a researcher brings
// to mmkt. Images of mixed sizes (28-120 px by default) and formats (PNG, JPEG, BMP): a third
// grey, a third colour-tinted, a third tinted on a light coloured background (a product shot);
// each with a free-form caption ("catalogue image of a strappy sandal", "product shot: jumper")
// built from the class-name paraphrases of the dataset's class-attribute file, and its class
// name. Written as images/ plus manifest.jsonl (the format of data/manifest.h). The own-data
// experiment (experiments/own_data.sh) and its test train on such folders.
#pragma once

#include <cstdint>
#include <string>

#include "mmkt/data/class_attributes.h"
#include "mmkt/data/dataset.h"

namespace mmkt::data {

struct PhotoFolderOptions {
  std::string out;            // folder to write (created; manifest.jsonl + images/)
  std::int64_t count = 3000;  // items, drawn at random without replacement from the source
  std::uint64_t seed = 0;
  int min_size = 28, max_size = 120;  // square side in pixels, uniform
};

// Writes the folder from `source` (grey [1,H,W] images in [0,1], labels) with captions from
// `classes`; returns the manifest's path. Every file is written whole or not at all.
std::string write_photo_folder(const Dataset& source, const ClassAttributes& classes,
                               const PhotoFolderOptions& options);

}  // namespace mmkt::data
