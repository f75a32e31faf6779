#include "mmkt/run/run_data.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/core/runtime.h"
#include "mmkt/data/labelled_images.h"
#include "mmkt/data/manifest.h"
#include "mmkt/io/files.h"
#include "mmkt/run/datasets.h"

namespace mmkt {
namespace {

bool needs_text(const RunConfig& config) {
  if (config.model.modalities.empty()) return !dataset_entry(config.data.dataset).label_modality;
  return std::any_of(
      config.model.modalities.begin(), config.model.modalities.end(),
      [](const models::ModalityConfig& m) { return m.kind == models::ModalityKind::kText; });
}

}  // namespace

RunConfig resolve_data_choices(RunConfig config) {
  auto& d = config.data;
  const auto choose = [](const std::string& key, const auto& value, const std::string& reason) {
    log::info("auto: ", key, " = ", value, " (", reason, "; set ", key, " to choose)");
  };
  const auto& entry = dataset_entry(d.dataset);
  if (!entry.user_data) {
    if (d.binarize == "auto") d.binarize = entry.auto_binarize;
    if (config.train.free_bits < 0) config.train.free_bits = 0.0;
    return config;
  }
  if (d.binarize == "auto" || d.channels == 0 || d.image_size == 0) {
    const auto s = data::survey_manifest_images(d.manifest);
    const auto of = [&](std::int64_t k) {
      return std::to_string(k) + " of " + std::to_string(s.surveyed) + " surveyed images";
    };
    if (d.channels == 0) {
      d.channels = s.colour > 0 ? 3 : 1;
      choose("data.channels", d.channels,
             of(s.colour) + (s.colour > 0 ? " have colour" : " have colour: grey"));
    }
    if (d.image_size == 0) {
      d.image_size = s.median_short_side >= 64 && s.items >= 20000 ? 64 : 32;
      choose("data.image_size", d.image_size,
             "median shorter side " + std::to_string(s.median_short_side) + " px, " +
                 std::to_string(s.items) +
                 " items; 64 only for images of >= 64 px and >= 20000 "
                 "items, 32 keeps the conv networks small for a few thousand");
    }
    if (d.binarize == "auto") {
      d.binarize = s.binary() ? "dynamic" : "none";
      const auto share = std::to_string(static_cast<int>(std::lround(100 * s.binary_pixel_share)));
      choose("data.binarize", d.binarize,
             share + "% of pixels are near black or white: " +
                 (s.binary() ? "binary images, binarized for a Bernoulli likelihood"
                             : "continuous images, kept as they are (a Gaussian likelihood with a "
                               "learned scale models them)"));
    }
  }
  if (config.train.free_bits < 0) {
    config.train.free_bits = kManifestFreeBits;
    choose("train.free_bits", config.train.free_bits,
           "manifest runs: keeps each latent dimension from collapsing while the decoders learn");
  }
  return config;
}

void store_data_choices(const RunConfig& config, nlohmann::json& resolved) {
  resolved["data"]["binarize"] = config.data.binarize;
  resolved["data"]["channels"] = config.data.channels;
  resolved["data"]["image_size"] = config.data.image_size;
  resolved["train"]["free_bits"] = config.train.free_bits;
}

namespace {
// data.validation_unseen as class indices, checked: known classes, not already unseen, at least
// one class left for training, and every attribute of a validation class still had by a class
// that trains (otherwise attribute zero-shot on the validation split has nothing to learn from).
std::vector<std::int64_t> resolve_validation_unseen(const RunConfig& config, const RunData& data) {
  const auto& names = config.data.validation_unseen;
  MMKT_CHECK_INPUT(data.class_attributes.has_value(),
                   "data.validation_unseen: the dataset '", config.data.dataset,
                   "' has no class-attribute file to name classes from");
  const auto& ca = *data.class_attributes;
  std::vector<std::int64_t> out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto c = with_context("data.validation_unseen[" + std::to_string(i) + "]",
                                [&] { return ca.class_index(names[i]); });
    MMKT_CHECK_INPUT(std::find(data.unseen_classes.begin(), data.unseen_classes.end(), c) ==
                         data.unseen_classes.end(),
                     "data.validation_unseen[", i, "]: '", names[i],
                     "' is already an unseen (test) class");
    MMKT_CHECK_INPUT(std::find(out.begin(), out.end(), c) == out.end(),
                     "data.validation_unseen[", i, "]: '", names[i], "' is named twice");
    out.push_back(c);
  }
  std::sort(out.begin(), out.end());
  auto held_out = [&](std::int64_t c) {
    return std::find(out.begin(), out.end(), c) != out.end() ||
           std::find(data.unseen_classes.begin(), data.unseen_classes.end(), c) !=
               data.unseen_classes.end();
  };
  // The attributes some training class has (the attribute file's own rule for unseen classes,
  // class_attributes.h, applied to what is left after the validation classes go too).
  std::vector<bool> trained(static_cast<std::size_t>(ca.num_attributes()), false);
  bool any_training_class = false;
  for (std::int64_t k = 0; k < ca.num_classes(); ++k) {
    if (held_out(k)) continue;
    any_training_class = true;
    for (auto a : ca.present(k)) trained[static_cast<std::size_t>(a)] = true;
  }
  MMKT_CHECK_INPUT(any_training_class, "data.validation_unseen: no class is left for training");
  for (auto c : out) {
    for (auto a : ca.present(c)) {
      MMKT_CHECK_INPUT(trained[static_cast<std::size_t>(a)], "data.validation_unseen: attribute '",
                       ca.attribute_names[static_cast<std::size_t>(a)], "' of '",
                       ca.class_names[static_cast<std::size_t>(c)],
                       "' is had by no class left for training; choose another validation class");
    }
  }
  return out;
}
}  // namespace

RunData load_run_data(const RunConfig& config, const std::string& tokenizer_path) {
  const auto& d = config.data;
  MMKT_CHECK(
      d.binarize != "auto" && config.train.free_bits >= 0 &&
          (!dataset_entry(d.dataset).user_data || (d.channels > 0 && d.image_size > 0)),
      "load_run_data: the configuration holds automatic values; call resolve_data_choices first");
  RunData out;
  auto source = dataset_entry(d.dataset).load(config);
  data::DatasetPtr train_full = std::move(source.train);
  out.test = std::move(source.test);
  out.class_attributes = std::move(source.class_attributes);
  out.unseen_classes = std::move(source.unseen_classes);
  if (!out.test) {
    // A manifest without a test file: carve 10% of all its items for testing, before the unseen
    // classes leave training, so that the test set holds them (zero-shot is judged on them).
    const auto all = train_full->size();
    MMKT_CHECK_INPUT(all > 0, train_full->info().name, ": no training items");
    auto [rest, test_idx] = data::split_train_validation(all, std::max<std::int64_t>(1, all / 10),
                                                         derive_seed(config.seed, "test-split"));
    out.test = data::subset(train_full, test_idx, train_full->info().name + "-test");
    train_full = data::subset(train_full, rest, train_full->info().name);
  }
  // Zero-shot: unseen classes never reach training, in any modality.
  if (d.zero_shot_split && out.class_attributes && !out.class_attributes->unseen.empty()) {
    out.unseen_classes = out.class_attributes->unseen;
    train_full =
        data::subset(train_full, data::indices_by_class(*train_full, out.unseen_classes, false),
                     train_full->info().name + "-seen");
  }
  // Validation classes (data.validation_unseen) leave training too: the split below is carved
  // from the other items, and the validation classes' items join the validation split only.
  std::vector<std::int64_t> seen_idx = data::index_range(train_full->size()), held_idx;
  if (!d.validation_unseen.empty()) {
    out.validation_unseen_classes = resolve_validation_unseen(config, out);
    seen_idx = data::indices_by_class(*train_full, out.validation_unseen_classes, false);
    held_idx = data::indices_by_class(*train_full, out.validation_unseen_classes, true);
    for (auto c : out.validation_unseen_classes) out.unseen_classes.push_back(c);
    std::sort(out.unseen_classes.begin(), out.unseen_classes.end());
  }
  const auto n = static_cast<std::int64_t>(seen_idx.size());
  MMKT_CHECK_INPUT(n > 0, train_full->info().name, ": no training items");
  std::int64_t validation = std::min<std::int64_t>(d.validation, n / 5);
  if (validation > 0) {
    auto [train_pos, val_pos] = data::split_train_validation(n, validation, config.seed);
    std::vector<std::int64_t> train_idx, val_idx;
    for (auto i : train_pos) train_idx.push_back(seen_idx[static_cast<std::size_t>(i)]);
    for (auto i : val_pos) val_idx.push_back(seen_idx[static_cast<std::size_t>(i)]);
    if (!held_idx.empty()) {
      // As many items of each validation class as a seen class has in the split on average
      // (the test set's balance), drawn by a seed stream of their own.
      const auto seen_classes = std::max<std::int64_t>(
          1, out.class_attributes->num_classes() - static_cast<std::int64_t>(out.unseen_classes.size()));
      const auto want = std::min<std::int64_t>(
          static_cast<std::int64_t>(held_idx.size()),
          std::max<std::int64_t>(1, validation / seen_classes) *
              static_cast<std::int64_t>(out.validation_unseen_classes.size()));
      auto picked = data::split_train_validation(static_cast<std::int64_t>(held_idx.size()), want,
                                                 derive_seed(config.seed, "validation-unseen"))
                        .second;
      for (auto i : picked) val_idx.push_back(held_idx[static_cast<std::size_t>(i)]);
    }
    out.validation = data::subset(train_full, val_idx, train_full->info().name + "-validation");
    out.train = data::subset(train_full, train_idx, train_full->info().name + "-train");
  } else {
    out.train = train_full;
  }
  if (d.binarize == "dynamic") {
    // The fixed binarized test (and validation) sets of the JMVAE/IWAE evaluations.
    out.test = data::fixed_binarized(out.test, derive_seed(config.seed, "test-binarization"));
    if (out.validation) {
      out.validation =
          data::fixed_binarized(out.validation, derive_seed(config.seed, "val-binarization"));
    }
  }

  if (needs_text(config)) {
    MMKT_CHECK_INPUT(out.train->info().has_captions, out.train->info().name,
                     ": a text modality is configured but the dataset has no captions");
    if (!tokenizer_path.empty() && io::file_exists(tokenizer_path)) {
      out.tokenizer = std::make_shared<text::Tokenizer>(text::Tokenizer::load(tokenizer_path));
    } else {
      const auto captions =
          out.train->captions(data::index_range(std::min<std::int64_t>(out.train->size(), 50000)));
      text::TokenizerTrainOptions t;
      t.model_type = config.tokenizer.type;
      t.vocab_size = config.tokenizer.vocab_size;
      t.extra["hard_vocab_limit"] = "false";  // small caption grammars have few pieces
      out.tokenizer = std::make_shared<text::Tokenizer>(text::Tokenizer::train(captions, t));
      log::info("tokenizer: ", t.model_type, ", ", out.tokenizer->vocab_size(),
                " pieces, trained on ", captions.size(), " training captions");
      if (!tokenizer_path.empty()) out.tokenizer->save(tokenizer_path);
    }
  }
  log::info("data: train ", out.train->size(), ", validation ",
            out.validation ? out.validation->size() : 0, ", test ", out.test->size(),
            out.unseen_classes.empty() ? ""
                                       : ", unseen classes held out of training: " +
                                             std::to_string(out.unseen_classes.size()),
            out.validation_unseen_classes.empty()
                ? ""
                : " (" + std::to_string(out.validation_unseen_classes.size()) +
                      " of them validation classes, in the validation split)");
  return out;
}

data::DatasetPtr evaluator_training_set(const RunConfig& config, std::int64_t max_items) {
  const auto& d = config.data;
  auto out = dataset_entry(d.dataset).evaluator_images(config, max_items);
  if (max_items > 0 && out->size() > max_items) {
    auto [rest, keep] = data::split_train_validation(out->size(), max_items,
                                                     derive_seed(config.seed, "evaluator-subset"));
    out = data::subset(out, keep, out->info().name + "-evaluator");
  }
  return out;
}

std::vector<models::ModalityConfig> resolve_modalities(const RunConfig& config,
                                                       const RunData& data) {
  auto mods = config.model.modalities;
  const auto& info = data.train->info();
  if (mods.empty()) {
    models::ModalityConfig image;
    image.name = "image";
    image.kind = models::ModalityKind::kImage;
    const bool small = info.image_shape.size() == 3 && info.image_shape[1] % 16 != 0;
    image.encoder = image.decoder = small ? "mlp" : "conv";
    image.likelihood = "bernoulli";
    if (dataset_entry(config.data.dataset).user_data) {
      const auto items = data.train->size();
      const bool few = items < 10000;
      image.channels = few ? 16 : 32;
      image.hidden = {few ? 256 : 512};
      if (config.data.binarize != "dynamic") {
        image.likelihood = "gaussian";
        image.likelihood_scale = 0.0;  // learned
      }
      log::info("auto: image networks ", image.encoder, " with ", image.channels,
                " channels and a ", image.hidden.back(), "-wide layer (", items, " training items",
                few ? " < 10000" : "", "), likelihood ", image.likelihood,
                image.likelihood == "gaussian" ? " with a learned scale (continuous pixels)"
                                               : " (binarized pixels)",
                "; model.modalities chooses otherwise");
    }
    mods.push_back(image);
    models::ModalityConfig second;
    if (dataset_entry(config.data.dataset).label_modality) {
      second.name = "label";
      second.kind = models::ModalityKind::kLabel;
      second.encoder = second.decoder = "mlp";
      second.likelihood = "categorical";
    } else {
      second.name = "text";
      second.kind = models::ModalityKind::kText;
      second.encoder = second.decoder = "gru";
      second.likelihood = "categorical";
      // GRU width 128: the text networks dominate the step time (three GRU passes per
      // step); 256 was 3x slower for no retrieval gain in short runs.
      second.hidden = {256};
      second.rnn_hidden = 128;
      second.embedding_dim = 64;
    }
    mods.push_back(second);
  }
  for (auto& m : mods) {
    if (m.kind == models::ModalityKind::kImage) {
      if (m.shape.empty()) m.shape = info.image_shape;
      MMKT_CHECK_INPUT(m.shape == info.image_shape, "modality '", m.name, "': shape ",
                       c10::IntArrayRef(m.shape), " but the data are ",
                       c10::IntArrayRef(info.image_shape));
    } else if (m.kind == models::ModalityKind::kLabel) {
      if (m.classes == 0) m.classes = static_cast<std::int64_t>(info.class_names.size());
      MMKT_CHECK_INPUT(m.classes > 0, "modality '", m.name, "': the dataset has no labels");
    } else if (m.kind == models::ModalityKind::kAttributes) {
      if (m.classes == 0) m.classes = static_cast<std::int64_t>(info.attribute_names.size());
      MMKT_CHECK_INPUT(m.classes > 0, "modality '", m.name, "': the dataset has no attributes");
    } else if (m.kind == models::ModalityKind::kText) {
      MMKT_CHECK_INPUT(data.tokenizer != nullptr, "modality '", m.name, "': no tokenizer");
      m.vocab_size = data.tokenizer->vocab_size();
      m.max_length = std::min<std::int64_t>(m.max_length, config.data.max_tokens);
    }
  }
  return mods;
}

models::Inputs inputs_from_batch(const data::Batch& batch,
                                 const std::vector<models::ModalityConfig>& modalities,
                                 const torch::Device& device) {
  models::Inputs inputs;
  for (const auto& m : modalities) {
    models::ModalityInput in;
    if (m.kind == models::ModalityKind::kImage) {
      in.data = batch.images;
    } else if (m.kind == models::ModalityKind::kText) {
      MMKT_CHECK(batch.tokens.defined(), "batch has no tokens for modality '", m.name, "'");
      in.data = batch.tokens;
      in.lengths = batch.lengths;
    } else if (m.kind == models::ModalityKind::kLabel) {
      in.data = batch.labels;
    } else {
      MMKT_CHECK(batch.attributes.defined(), "batch has no attributes for modality '", m.name, "'");
      in.data = batch.attributes;
    }
    inputs[m.name] = in.to(device);
  }
  return inputs;
}

}  // namespace mmkt
