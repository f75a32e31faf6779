#include "mmkt/run/config.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "mmkt/core/error.h"
#include "mmkt/io/json_config.h"
#include "mmkt/run/datasets.h"

namespace mmkt {
using nlohmann::json;

json default_config_json() {
  // Every configurable value of a run, with its default. Meanings: config.h and README.md.
  return json{
      {"seed", 0},
      {"data",
       {{"dataset", "fashion-mnist"},
        {"root", ""},
        {"manifest", ""},
        {"test_manifest", ""},
        {"attributes_file", ""},
        {"validation", 5000},
        {"binarize", "auto"},
        {"zero_shot_split", true},
        {"validation_unseen", json::array()},
        {"shapes_level", 3},
        {"shapes_train", 50000},
        {"shapes_test", 5000},
        {"image_size", 0},
        {"channels", 0},
        {"workers", 1},
        {"max_tokens", 48}}},
      {"tokenizer", {{"type", "unigram"}, {"vocab_size", 256}}},
      {"model",
       {{"type", "jmvae"},
        {"latent_dim", 64},
        {"joint_hidden", {512}},
        {"alpha", 0.1},
        {"modalities", json::array()}}},
      {"triplet",
       {{"weight", 0.0},
        {"kind", "soft"},
        {"margin", 1.0},
        {"temperature", 0.1},
        {"negatives", "random"},
        {"warmup_epochs", 0.0},
        {"pairs", json::array()}}},
      {"train",
       {{"epochs", 10},
        {"batch_size", 100},
        {"lr", 1e-3},
        {"beta1", 0.9},
        {"beta2", 0.999},
        {"warmup_epochs", 0.0},
        {"free_bits", -1.0},
        {"token_dropout", 0.0},
        {"grad_clip", 0.0},
        {"early_stopping", 0},
        {"max_steps_per_epoch", 0},
        {"progress_seconds", 5.0},
        {"eval_batch_size", 500},
        {"lr_schedule", "constant"},
        {"lr_min", 0.0},
        {"lr_decay_start", 0.0},
        {"keep_checkpoints", json::array()},
        {"init_from", ""}}},
  };
}

double learning_rate_at(const TrainConfig& train, double epoch) {
  if (train.lr_schedule != "cosine" || epoch <= train.lr_decay_start) return train.lr;
  const double span = static_cast<double>(train.epochs) - train.lr_decay_start;
  if (span <= 0) return train.lr;
  const double t = std::min(1.0, (epoch - train.lr_decay_start) / span);
  return train.lr_min + (train.lr - train.lr_min) * 0.5 * (1.0 + std::cos(M_PI * t));
}

namespace {
const std::vector<std::string> kOpenPaths = {"model.modalities", "triplet.pairs",
                                             "model.joint_hidden", "train.keep_checkpoints",
                                             "data.validation_unseen"};

void check_one_of(const std::string& value, const std::set<std::string>& allowed,
                  const std::string& key) {
  if (allowed.count(value) == 0) {
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    fail_input(key, ": '", value, "' is not one of ", list);
  }
}

std::vector<std::int64_t> int_list(const json& j, const std::string& where) {
  MMKT_CHECK_INPUT(j.is_array(), where, ": expected an array of positive integers");
  std::vector<std::int64_t> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    MMKT_CHECK_INPUT(j[i].is_number_integer() && j[i].get<std::int64_t>() > 0, where, "[", i,
                     "]: expected a positive integer, got ", j[i].dump());
    out.push_back(j[i].get<std::int64_t>());
  }
  return out;
}
}  // namespace

const std::vector<std::string>& config_open_paths() { return kOpenPaths; }

json modality_to_json(const models::ModalityConfig& m) {
  return json{{"name", m.name},
              {"kind", models::to_string(m.kind)},
              {"encoder", m.encoder},
              {"decoder", m.decoder},
              {"likelihood", m.likelihood},
              {"hidden", m.hidden},
              {"shape", m.shape},
              {"classes", m.classes},
              {"vocab_size", m.vocab_size},
              {"embedding_dim", m.embedding_dim},
              {"rnn_hidden", m.rnn_hidden},
              {"max_length", m.max_length},
              {"channels", m.channels},
              {"likelihood_scale", m.likelihood_scale},
              {"weight", m.weight}};
}

models::ModalityConfig modality_from_json(const json& j, const std::string& where) {
  const json defaults = modality_to_json(models::ModalityConfig{});
  const json merged = io::merge_strict(defaults, j, where);
  MMKT_CHECK_INPUT(j.contains("name") && j.contains("kind"), where,
                   ": a modality needs at least \"name\" and \"kind\"");
  models::ModalityConfig m;
  m.name = merged["name"];
  m.kind = models::parse_modality_kind(merged["kind"].get<std::string>(), where + ".kind");
  m.encoder = merged["encoder"];
  m.decoder = merged["decoder"];
  m.likelihood = merged["likelihood"];
  m.hidden = int_list(merged["hidden"], where + ".hidden");
  MMKT_CHECK_INPUT(!m.hidden.empty(), where, ".hidden: needs at least one width");
  m.shape = merged["shape"].empty() ? std::vector<std::int64_t>{}
                                    : int_list(merged["shape"], where + ".shape");
  m.classes = merged["classes"];
  m.vocab_size = merged["vocab_size"];
  m.embedding_dim = merged["embedding_dim"];
  m.rnn_hidden = merged["rnn_hidden"];
  m.max_length = merged["max_length"];
  m.channels = merged["channels"];
  m.likelihood_scale = merged["likelihood_scale"];
  m.weight = merged["weight"];
  MMKT_CHECK_INPUT(m.likelihood_scale >= 0, where, ".likelihood_scale must be > 0 (or 0: learned)");
  MMKT_CHECK_INPUT(m.weight > 0, where, ".weight must be > 0");
  return m;
}

json resolve_config_json(const std::string& file, const std::vector<std::string>& overrides) {
  json config = default_config_json();
  if (!file.empty()) config = io::merge_strict(config, io::load_json_file(file), file, kOpenPaths);
  for (const auto& o : overrides) io::apply_override(config, o, kOpenPaths);
  return config;
}

RunConfig config_from_json(const json& j, const std::string& source) {
  return with_context(source, [&] {
    RunConfig c;
    c.seed = j["seed"].get<std::uint64_t>();
    const auto& d = j["data"];
    c.data.dataset = d["dataset"];
    const auto datasets = dataset_names();
    check_one_of(c.data.dataset, {datasets.begin(), datasets.end()}, "data.dataset");
    c.data.root = d["root"];
    c.data.manifest = d["manifest"];
    c.data.test_manifest = d["test_manifest"];
    c.data.attributes_file = d["attributes_file"];
    c.data.validation = d["validation"];
    MMKT_CHECK_INPUT(c.data.validation >= 0, "data.validation must be >= 0");
    c.data.binarize = d["binarize"];
    check_one_of(c.data.binarize, {"auto", "dynamic", "none"}, "data.binarize");
    c.data.zero_shot_split = d["zero_shot_split"];
    MMKT_CHECK_INPUT(d["validation_unseen"].is_array(),
                     "data.validation_unseen: expected an array of class names");
    for (std::size_t i = 0; i < d["validation_unseen"].size(); ++i) {
      const auto& v = d["validation_unseen"][i];
      MMKT_CHECK_INPUT(v.is_string() && !v.get<std::string>().empty(), "data.validation_unseen[",
                       i, "]: expected a class name, got ", v.dump());
      c.data.validation_unseen.push_back(v.get<std::string>());
    }
    MMKT_CHECK_INPUT(c.data.validation_unseen.empty() || c.data.validation > 0,
                     "data.validation_unseen needs a validation split (data.validation > 0)");
    c.data.shapes_level = d["shapes_level"];
    MMKT_CHECK_INPUT(c.data.shapes_level >= 1 && c.data.shapes_level <= 5,
                     "data.shapes_level must be 1..5");
    c.data.shapes_train = d["shapes_train"];
    c.data.shapes_test = d["shapes_test"];
    c.data.image_size = d["image_size"];
    MMKT_CHECK_INPUT(
        c.data.image_size == 0 || (c.data.image_size >= 8 && c.data.image_size <= 1024),
        "data.image_size must be 0 (auto) or 8..1024, got ", c.data.image_size);
    c.data.channels = d["channels"];
    MMKT_CHECK_INPUT(c.data.channels == 0 || c.data.channels == 1 || c.data.channels == 3,
                     "data.channels must be 0 (auto), 1 or 3, got ", c.data.channels);
    c.data.workers = d["workers"];
    c.data.max_tokens = d["max_tokens"];
    MMKT_CHECK_INPUT(c.data.max_tokens >= 4, "data.max_tokens must be >= 4");
    if (const auto& check = dataset_entry(c.data.dataset).check) check(c);

    c.tokenizer.type = j["tokenizer"]["type"];
    check_one_of(c.tokenizer.type, {"unigram", "bpe", "char", "word"}, "tokenizer.type");
    c.tokenizer.vocab_size = j["tokenizer"]["vocab_size"];

    const auto& m = j["model"];
    c.model.type = m["type"];
    check_one_of(c.model.type, {"jmvae", "mvae", "mmvae"}, "model.type");
    c.model.latent_dim = m["latent_dim"];
    MMKT_CHECK_INPUT(c.model.latent_dim > 0, "model.latent_dim must be > 0");
    c.model.joint_hidden = int_list(m["joint_hidden"], "model.joint_hidden");
    c.model.alpha = m["alpha"];
    MMKT_CHECK_INPUT(c.model.alpha >= 0, "model.alpha must be >= 0");
    MMKT_CHECK_INPUT(m["modalities"].is_array(), "model.modalities must be an array");
    std::set<std::string> names;
    for (std::size_t i = 0; i < m["modalities"].size(); ++i) {
      auto mod =
          modality_from_json(m["modalities"][i], "model.modalities[" + std::to_string(i) + "]");
      MMKT_CHECK_INPUT(names.insert(mod.name).second, "model.modalities[", i, "]: duplicate name '",
                       mod.name, "'");
      c.model.modalities.push_back(mod);
    }
    MMKT_CHECK_INPUT(c.model.modalities.empty() || c.model.modalities.size() >= 2,
                     "model.modalities: a multimodal model needs at least 2 modalities");

    const auto& t = j["triplet"];
    c.triplet.weight = t["weight"];
    MMKT_CHECK_INPUT(c.triplet.weight >= 0, "triplet.weight must be >= 0");
    c.triplet.kind = t["kind"];
    check_one_of(c.triplet.kind, {"soft", "hinge", "contrastive"}, "triplet.kind");
    c.triplet.margin = t["margin"];
    c.triplet.temperature = t["temperature"];
    MMKT_CHECK_INPUT(c.triplet.temperature > 0, "triplet.temperature must be > 0");
    c.triplet.negatives = t["negatives"];
    check_one_of(c.triplet.negatives, {"random", "hard"}, "triplet.negatives");
    c.triplet.warmup_epochs = t["warmup_epochs"];
    MMKT_CHECK_INPUT(t["pairs"].is_array(), "triplet.pairs must be an array of [a, b] names");
    for (std::size_t i = 0; i < t["pairs"].size(); ++i) {
      const auto& p = t["pairs"][i];
      MMKT_CHECK_INPUT(p.is_array() && p.size() == 2 && p[0].is_string() && p[1].is_string(),
                       "triplet.pairs[", i, "]: expected [\"modality\", \"modality\"]");
      c.triplet.pairs.emplace_back(p[0].get<std::string>(), p[1].get<std::string>());
    }

    const auto& tr = j["train"];
    c.train.epochs = tr["epochs"];
    MMKT_CHECK_INPUT(c.train.epochs >= 0, "train.epochs must be >= 0");
    c.train.batch_size = tr["batch_size"];
    MMKT_CHECK_INPUT(c.train.batch_size > 0, "train.batch_size must be > 0");
    c.train.lr = tr["lr"];
    MMKT_CHECK_INPUT(c.train.lr > 0, "train.lr must be > 0");
    c.train.beta1 = tr["beta1"];
    c.train.beta2 = tr["beta2"];
    MMKT_CHECK_INPUT(
        c.train.beta1 >= 0 && c.train.beta1 < 1 && c.train.beta2 >= 0 && c.train.beta2 < 1,
        "train.beta1 and train.beta2 must be in [0, 1)");
    c.train.warmup_epochs = tr["warmup_epochs"];
    MMKT_CHECK_INPUT(c.train.warmup_epochs >= 0, "train.warmup_epochs must be >= 0");
    c.train.token_dropout = tr["token_dropout"];
    MMKT_CHECK_INPUT(c.train.token_dropout >= 0 && c.train.token_dropout < 1,
                     "train.token_dropout must be in [0, 1), got ", c.train.token_dropout);
    c.train.free_bits = tr["free_bits"];
    MMKT_CHECK_INPUT(c.train.free_bits == -1.0 || c.train.free_bits >= 0,
                     "train.free_bits must be -1 (auto) or >= 0, got ", c.train.free_bits);
    c.train.grad_clip = tr["grad_clip"];
    c.train.early_stopping = tr["early_stopping"];
    c.train.max_steps_per_epoch = tr["max_steps_per_epoch"];
    c.train.progress_seconds = tr["progress_seconds"];
    c.train.eval_batch_size = tr["eval_batch_size"];
    MMKT_CHECK_INPUT(c.train.eval_batch_size > 0, "train.eval_batch_size must be > 0");
    c.train.lr_schedule = tr["lr_schedule"];
    check_one_of(c.train.lr_schedule, {"constant", "cosine"}, "train.lr_schedule");
    c.train.lr_min = tr["lr_min"];
    MMKT_CHECK_INPUT(c.train.lr_min >= 0 && c.train.lr_min <= c.train.lr,
                     "train.lr_min must be in [0, train.lr]");
    c.train.lr_decay_start = tr["lr_decay_start"];
    MMKT_CHECK_INPUT(c.train.lr_decay_start >= 0, "train.lr_decay_start must be >= 0");
    if (tr.contains("keep_checkpoints")) {
      c.train.keep_checkpoints = int_list(tr["keep_checkpoints"], "train.keep_checkpoints");
    }
    c.train.init_from = tr["init_from"];
    return c;
  });
}

}  // namespace mmkt
