#include "mmkt/query/index.h"

#include <algorithm>
#include <filesystem>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/eval/embed.h"
#include "mmkt/io/files.h"
#include "mmkt/run/run_data.h"

namespace mmkt::query {

namespace fs = std::filesystem;

std::vector<data::DatasetPtr> collection_datasets(const LoadedRun& run,
                                                  const std::string& collection) {
  if (collection == "test") return {run.data.test};
  if (collection == "all") {
    // Every training item of every class (the unseen classes included), then the test split.
    return {evaluator_training_set(run.config, 0), run.data.test};
  }
  fail_input("index collection '", collection, "' (expected test or all)");
}

std::string checkpoint_fingerprint(const std::string& run_dir) {
  for (const std::string name : {"best.pt", "checkpoint.pt"}) {
    const fs::path p = fs::path(run_dir) / name;
    std::error_code ec;
    if (fs::exists(p, ec)) {
      const auto size = fs::file_size(p, ec);
      const auto time = fs::last_write_time(p, ec).time_since_epoch().count();
      return name + ":" + std::to_string(size) + ":" + std::to_string(time);
    }
  }
  fail_input(run_dir, ": no checkpoint (best.pt or checkpoint.pt)");
}

namespace {
void finish(SearchIndex& index) {
  index.sq_norm = index.mu.pow(2).sum(1);
  index.unit = index.mu / index.sq_norm.sqrt().clamp_min(1e-12).unsqueeze(1);
}
}  // namespace

SearchIndex build_index(LoadedRun& run, const std::string& run_dir, const std::string& modality,
                        const std::string& collection, const torch::Device& device) {
  MMKT_CHECK_INPUT(run.model->has_modality(modality), "the run has no modality '", modality, "'");
  SearchIndex index;
  index.modality = modality;
  index.collection = collection;
  if (!run_dir.empty()) index.checkpoint = checkpoint_fingerprint(run_dir);
  std::vector<torch::Tensor> mu, labels;
  const bool text = std::any_of(run.modalities.begin(), run.modalities.end(), [&](const auto& m) {
    return m.name == modality && m.kind == models::ModalityKind::kText;
  });
  for (const auto& ds : collection_datasets(run, collection)) {
    eval::EmbedOptions o;
    o.modalities = {modality};
    const auto e = eval::embed_dataset(run, ds, device, o);
    mu.push_back(e.mu.at(modality).to(torch::kFloat32));
    labels.push_back(e.labels);
    index.part_sizes.push_back(e.labels.size(0));
    if (text) {
      const auto captions = ds->captions(data::index_range(ds->size()));
      index.captions.insert(index.captions.end(), captions.begin(), captions.end());
    }
  }
  index.mu = torch::cat(mu).contiguous();
  index.labels = torch::cat(labels);
  finish(index);
  return index;
}

void save_index(const std::string& stem, const SearchIndex& index) {
  torch::serialize::OutputArchive a;
  a.write("mu", index.mu);
  a.write("labels", index.labels);
  std::ostringstream bytes;
  a.save_to(bytes);
  io::write_file_atomic(stem + ".pt", bytes.str());
  const nlohmann::json meta{{"format", 1},
                            {"modality", index.modality},
                            {"collection", index.collection},
                            {"checkpoint", index.checkpoint},
                            {"items", index.size()},
                            {"latent_dim", index.mu.size(1)},
                            {"part_sizes", index.part_sizes},
                            {"captions", index.captions}};
  io::write_file_atomic(stem + ".json", meta.dump() + "\n");
}

SearchIndex load_index(const std::string& stem) {
  const std::string meta_path = stem + ".json", tensor_path = stem + ".pt";
  MMKT_CHECK_INPUT(io::file_exists(meta_path) && io::file_exists(tensor_path), stem,
                   ".{pt,json}: no such index");
  SearchIndex index;
  try {
    const auto meta = nlohmann::json::parse(io::read_file(meta_path));
    MMKT_CHECK_INPUT(meta.at("format").get<int>() == 1, meta_path,
                     ": index of an unknown format version");
    index.modality = meta.at("modality").get<std::string>();
    index.collection = meta.at("collection").get<std::string>();
    index.checkpoint = meta.at("checkpoint").get<std::string>();
    index.part_sizes = meta.at("part_sizes").get<std::vector<std::int64_t>>();
    index.captions = meta.at("captions").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    fail_input(meta_path, ": not an index description: ", e.what());
  }
  torch::serialize::InputArchive a;
  try {
    a.load_from(tensor_path);
    a.read("mu", index.mu);
    a.read("labels", index.labels);
  } catch (const c10::Error&) {
    fail_input(tensor_path, ": not a readable index (truncated or corrupt)");
  }
  std::int64_t total = 0;
  for (const auto n : index.part_sizes) total += n;
  MMKT_CHECK_INPUT(
      index.mu.dim() == 2 && index.mu.size(0) == total && index.labels.numel() == total &&
          (index.captions.empty() || static_cast<std::int64_t>(index.captions.size()) == total),
      stem, ": inconsistent index (", index.mu.sizes(), " means for ", total, " items)");
  index.mu = index.mu.to(torch::kFloat32).contiguous();
  finish(index);
  return index;
}

SearchIndex open_index(LoadedRun& run, const std::string& run_dir, const std::string& modality,
                       const std::string& collection, const torch::Device& device, bool* built) {
  const std::string stem = run_dir + "/index/" + collection + "_" + modality;
  if (io::file_exists(stem + ".json") && io::file_exists(stem + ".pt")) {
    auto index = load_index(stem);
    if (index.checkpoint == checkpoint_fingerprint(run_dir) &&
        index.mu.size(1) == run.config.model.latent_dim) {
      if (built) *built = false;
      return index;
    }
    log::info(stem, ": built from another checkpoint; rebuilding");
  }
  log::info("indexing the ", collection, " collection's ", modality,
            " items (once per checkpoint)");
  auto index = build_index(run, run_dir, modality, collection, device);
  fs::create_directories(run_dir + "/index");
  save_index(stem, index);
  if (built) *built = true;
  return index;
}

std::vector<Hit> search(const SearchIndex& index, const torch::Tensor& query, std::int64_t k,
                        const std::string& score) {
  MMKT_CHECK_INPUT(k > 0, "--top must be positive");
  const auto q = query.reshape({-1}).to(torch::kFloat32).cpu();
  MMKT_CHECK_INPUT(q.size(0) == index.mu.size(1), "query of dimension ", q.size(0),
                   " for an index of ", index.mu.size(1));
  torch::Tensor s;
  if (score == "cosine") {
    s = torch::mv(index.unit, q / q.norm().clamp_min(1e-12));
  } else if (score == "euclidean") {
    // -||x - q|| from ||x||^2 - 2 x.q + ||q||^2 (one matrix-vector product).
    s = -(index.sq_norm - 2.0 * torch::mv(index.mu, q) + q.pow(2).sum()).clamp_min(0.0).sqrt();
  } else {
    fail_input("score '", score, "' (expected cosine or euclidean)");
  }
  const auto kk = std::min(k, index.size());
  const auto [values, rows] = torch::topk(s, kk);
  // Read the k results through pointers (one .item() per value costs a dispatch each).
  const auto labels = index.labels.to(torch::kInt64).contiguous();
  const auto* row = rows.data_ptr<std::int64_t>();
  const auto* value = values.contiguous().data_ptr<float>();
  const auto* label = labels.data_ptr<std::int64_t>();
  std::vector<Hit> hits;
  hits.reserve(static_cast<std::size_t>(kk));
  for (std::int64_t i = 0; i < kk; ++i) hits.push_back({row[i], value[i], label[row[i]]});
  return hits;
}

torch::Tensor index_images(const LoadedRun& run, const SearchIndex& index,
                           const std::vector<std::int64_t>& rows) {
  const auto parts = collection_datasets(run, index.collection);
  std::vector<torch::Tensor> images;
  for (const auto r : rows) {
    std::int64_t offset = r;
    std::size_t p = 0;
    while (p < parts.size() && offset >= index.part_sizes[p]) offset -= index.part_sizes[p++];
    MMKT_CHECK(p < parts.size(), "index row ", r, " beyond the collection");
    images.push_back(parts[p]->images({offset}).to(torch::kFloat32));
  }
  return torch::cat(images);
}

}  // namespace mmkt::query
