// A search index: the posterior means q(z|m) of every item of a collection, built once and
// saved with the run, so that a query costs one encoder pass plus one matrix-vector product
// and a top-k.
//   collections: "test" (the run's test split) or "all" (every training item of every class,
//   then the test split: 70k items for Fashion-MNIST)
//   files: <run>/index/<collection>_<modality>.pt (means, labels) and .json (what was indexed,
//   the checkpoint it came from, captions for text indexes); rebuilt when the checkpoint
//   changed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mmkt/data/dataset.h"
#include "mmkt/run/run.h"

namespace mmkt::query {

struct SearchIndex {
  std::string modality, collection, checkpoint;
  torch::Tensor mu;                      // [N,D] float32
  torch::Tensor unit;                    // [N,D] rows of mu / ||mu|| (cosine)
  torch::Tensor sq_norm;                 // [N] ||mu||^2 (Euclidean)
  torch::Tensor labels;                  // [N] int64
  std::vector<std::int64_t> part_sizes;  // items from each dataset of the collection, in order
  std::vector<std::string> captions;     // text indexes: the caption of each item
  std::int64_t size() const { return mu.size(0); }
};

// The datasets of a collection, in index order.
std::vector<data::DatasetPtr> collection_datasets(const LoadedRun& run,
                                                  const std::string& collection);
// "<file name>:<size>:<mtime>" of the checkpoint load_run reads (best.pt, else checkpoint.pt).
std::string checkpoint_fingerprint(const std::string& run_dir);

// Posterior means of every item of `collection` for `modality`. `run_dir` names the checkpoint
// whose fingerprint the index records; "" for a run that exists only in memory (benchmarks).
SearchIndex build_index(LoadedRun& run, const std::string& run_dir, const std::string& modality,
                        const std::string& collection, const torch::Device& device);
void save_index(const std::string& path_stem, const SearchIndex& index);
// InputError naming the file when it is missing, truncated or inconsistent.
SearchIndex load_index(const std::string& path_stem);
// Loads <run>/index/<collection>_<modality> when it exists and matches the run's checkpoint,
// otherwise builds and saves it. `built` tells which happened.
SearchIndex open_index(LoadedRun& run, const std::string& run_dir, const std::string& modality,
                       const std::string& collection, const torch::Device& device,
                       bool* built = nullptr);

struct Hit {
  std::int64_t item = 0;  // row of the index
  double score = 0;       // cosine similarity, or minus the Euclidean distance
  std::int64_t label = -1;
};
// The top `k` items for one query mean [D] (or [1,D]); score = "cosine" | "euclidean".
std::vector<Hit> search(const SearchIndex& index, const torch::Tensor& query, std::int64_t k,
                        const std::string& score);

// Images of index rows (from the collection's datasets), [K,C,H,W] float.
torch::Tensor index_images(const LoadedRun& run, const SearchIndex& index,
                           const std::vector<std::int64_t>& rows);

}  // namespace mmkt::query
