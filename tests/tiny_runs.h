// Tiny models and runs shared by several test files.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "mmkt/core/runtime.h"
#include "mmkt/data/shapes.h"
#include "mmkt/models/modality.h"
#include "mmkt/run/config.h"
#include "mmkt/train/trainer.h"

namespace mmkt::testing_support {

// `n` shapes items of `level` at image_size x image_size, drawn from `seed` (real images, captions
// and labels for tests that need realistic inputs).
inline data::ShapesDataset shapes_items(std::int64_t n, std::uint64_t seed, int image_size = 64,
                                        int level = 3) {
  data::ShapesOptions o;
  o.level = level;
  o.size = n;
  o.seed = seed;
  o.image_size = image_size;
  return data::ShapesDataset(o);
}

// A 6x6-image (MLP, Bernoulli) + 3-class label model of the given type (jmvae | mvae | mmvae).
inline models::ModelConfig tiny_image_label_model(const std::string& type) {
  models::ModelConfig c;
  c.type = type;
  c.latent_dim = 4;
  c.joint_hidden = {16};
  models::ModalityConfig image;
  image.name = "image";
  image.kind = models::ModalityKind::kImage;
  image.encoder = image.decoder = "mlp";
  image.likelihood = "bernoulli";
  image.hidden = {32, 16};
  image.shape = {1, 6, 6};
  models::ModalityConfig label;
  label.name = "label";
  label.kind = models::ModalityKind::kLabel;
  label.encoder = label.decoder = "mlp";
  label.likelihood = "categorical";
  label.hidden = {16};
  label.classes = 3;
  c.modalities = {image, label};
  return c;
}

// Trains a tiny shapes level-3 run (red hearts and blue stars held out; 64x64 conv image and
// GRU text, latent 6) for one epoch of 200 items into `dir`. `text_network` "conv" takes the
// conv text encoder and decoder instead; `tokenizer` is the tokenizer type.
inline void train_tiny_shapes_run(const std::string& dir, std::uint64_t seed,
                                  const std::string& text_network = "gru",
                                  const std::string& tokenizer = "unigram") {
  auto j = default_config_json();
  j["seed"] = seed;
  j["data"]["dataset"] = "shapes";
  j["data"]["shapes_level"] = 3;
  j["data"]["shapes_train"] = 200;
  j["data"]["shapes_test"] = 120;
  j["data"]["validation"] = 40;
  j["data"]["workers"] = 1;
  j["tokenizer"]["vocab_size"] = 60;
  j["tokenizer"]["type"] = tokenizer;
  j["model"]["latent_dim"] = 6;
  j["model"]["joint_hidden"] = {16};
  j["model"]["modalities"] = nlohmann::json::array({{{"name", "image"},
                                                     {"kind", "image"},
                                                     {"encoder", "conv"},
                                                     {"decoder", "conv"},
                                                     {"likelihood", "bernoulli"},
                                                     {"hidden", {16}},
                                                     {"channels", 4}},
                                                    {{"name", "text"},
                                                     {"kind", "text"},
                                                     {"encoder", text_network},
                                                     {"decoder", text_network},
                                                     {"likelihood", "categorical"},
                                                     {"hidden", {16}},
                                                     {"embedding_dim", 8},
                                                     {"rnn_hidden", 16},
                                                     {"max_length", 12}}});
  j["train"]["epochs"] = 1;
  j["train"]["batch_size"] = 40;
  j["train"]["progress_seconds"] = 1000.0;
  RuntimeOptions ro;
  ro.threads = 2;
  const auto rt = init_runtime(ro);
  train::train_run(config_from_json(j, "test"), j, dir, train::RunStart::kFresh, rt);
}

}  // namespace mmkt::testing_support
