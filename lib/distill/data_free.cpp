#include "mmkt/distill/data_free.h"

#include <ATen/CPUGeneratorImpl.h>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/core/runtime.h"
#include "mmkt/io/files.h"

namespace mmkt::distill {

ActivationStats activation_stats(const std::string& modality, const torch::Tensor& features,
                                 const torch::Tensor& labels) {
  MMKT_CHECK_INPUT(
      features.dim() == 2 && features.size(0) == labels.size(0) && features.size(0) > 0,
      "activation statistics need features [N,F] and labels [N] with N > 0");
  const auto [classes, inverse, counts] =
      torch::_unique2(labels, /*sorted=*/true, /*return_inverse=*/true,
                      /*return_counts=*/true);
  (void)inverse;
  ActivationStats s;
  s.modality = modality;
  s.classes = classes;
  s.counts = counts;
  std::vector<torch::Tensor> means, stds;
  for (std::int64_t c = 0; c < classes.size(0); ++c) {
    const auto rows = features.index({labels == classes[c]});
    means.push_back(rows.mean(0));
    stds.push_back(rows.size(0) > 1 ? rows.std(0) : torch::zeros_like(rows[0]));
  }
  s.mean = torch::stack(means).to(torch::kFloat32);
  s.stddev = torch::stack(stds).to(torch::kFloat32);
  return s;
}

void save_activation_stats(const std::string& path, const ActivationStats& s) {
  torch::serialize::OutputArchive a;
  a.write("format", torch::tensor(std::vector<std::int64_t>{1}));
  a.write("modality",
          torch::tensor(std::vector<std::int64_t>(s.modality.begin(), s.modality.end())));
  a.write("classes", s.classes);
  a.write("mean", s.mean);
  a.write("stddev", s.stddev);
  a.write("counts", s.counts);
  std::ostringstream bytes;
  a.save_to(bytes);
  io::write_file_atomic(path, bytes.str());
}

ActivationStats load_activation_stats(const std::string& path) {
  MMKT_CHECK_INPUT(io::file_exists(path), path, ": activation statistics file does not exist");
  torch::serialize::InputArchive a;
  ActivationStats s;
  torch::Tensor format, modality;
  try {
    a.load_from(path);
    a.read("format", format);
    a.read("modality", modality);
    a.read("classes", s.classes);
    a.read("mean", s.mean);
    a.read("stddev", s.stddev);
    a.read("counts", s.counts);
  } catch (const c10::Error& e) {
    fail_input(path, ": not a readable activation statistics file (truncated or corrupt)");
  }
  MMKT_CHECK_INPUT(format.numel() == 1 && format.item<std::int64_t>() == 1, path,
                   ": activation statistics of an unknown format version");
  const auto c = s.classes.numel();
  MMKT_CHECK_INPUT(s.mean.dim() == 2 && s.mean.size(0) == c && s.stddev.sizes() == s.mean.sizes() &&
                       s.counts.numel() == c && c > 0,
                   path, ": inconsistent activation statistics (", c, " classes, mean ",
                   s.mean.sizes(), ", stddev ", s.stddev.sizes(), ")");
  for (std::int64_t i = 0; i < modality.numel(); ++i) {
    s.modality.push_back(static_cast<char>(modality[i].item<std::int64_t>()));
  }
  return s;
}

Reconstruction reconstruct_inputs(models::MultimodalVae& teacher, const ActivationStats& stats,
                                  const std::vector<std::int64_t>& shape,
                                  const ReconstructionOptions& o, const torch::Device& device) {
  MMKT_CHECK_INPUT(shape.size() == 3, "data-free reconstruction needs an image shape {C,H,W}");
  MMKT_CHECK_INPUT(o.items > 0 && o.batch_size > 0 && o.steps > 0,
                   "data-free reconstruction needs items, "
                   "batch size and steps > 0");
  teacher->eval();
  // Only the inputs are optimised: the teacher's parameters never receive gradients (restored
  // on every exit path).
  struct FrozenParameters {
    std::vector<torch::Tensor> params;
    std::vector<bool> required;
    explicit FrozenParameters(std::vector<torch::Tensor> p) : params(std::move(p)) {
      for (auto& t : params) {
        required.push_back(t.requires_grad());
        t.set_requires_grad(false);
      }
    }
    ~FrozenParameters() {
      for (std::size_t i = 0; i < params.size(); ++i) params[i].set_requires_grad(required[i]);
    }
  } frozen(teacher->parameters());
  auto gen = at::detail::createCPUGenerator(derive_seed(o.seed, "data-free-reconstruction"));
  const auto c = stats.classes.size(0);
  std::vector<torch::Tensor> images, labels;
  double first = 0, last = 0;
  std::int64_t batches = 0;
  for (std::int64_t start = 0; start < o.items; start += o.batch_size) {
    const auto n = std::min(o.batch_size, o.items - start);
    const auto pick = torch::randint(c, {n}, gen, torch::kInt64);
    const auto target = (stats.mean.index_select(0, pick) +
                         stats.stddev.index_select(0, pick) *
                             torch::randn({n, stats.mean.size(1)}, gen, torch::kFloat32))
                            .clamp_min(0.0)  // the features are ReLU outputs
                            .to(device);
    auto v = torch::randn({n, shape[0], shape[1], shape[2]}, gen, torch::kFloat32)
                 .to(device)
                 .set_requires_grad(true);
    torch::optim::Adam optimizer({v}, torch::optim::AdamOptions(o.lr));
    double loss_value = 0;
    for (std::int64_t step = 0; step < o.steps; ++step) {
      optimizer.zero_grad();
      const auto f =
          teacher->unimodal_features(stats.modality, models::ModalityInput{torch::sigmoid(v), {}});
      const auto loss = (f - target).pow(2).mean();
      loss.backward();
      optimizer.step();
      loss_value = loss.item<double>();
      if (step == 0) first += loss_value;
    }
    last += loss_value;
    ++batches;
    images.push_back(torch::sigmoid(v.detach()).cpu());
    labels.push_back(stats.classes.index_select(0, pick));
    log::info("data-free: reconstructed ", start + n, "/", o.items, " images, feature loss ",
              loss_value);
  }
  Reconstruction r;
  r.images = torch::cat(images);
  r.labels = torch::cat(labels);
  r.initial_loss = first / static_cast<double>(batches);
  r.final_loss = last / static_cast<double>(batches);
  return r;
}

}  // namespace mmkt::distill
