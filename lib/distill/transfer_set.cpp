#include "mmkt/distill/transfer_set.h"

#include <algorithm>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/core/runtime.h"
#include "mmkt/data/batcher.h"
#include "mmkt/eval/linear.h"

namespace mmkt::distill {

models::ModalityInput select_rows(const models::ModalityInput& input, const torch::Tensor& rows) {
  models::ModalityInput out;
  const auto idx = rows.to(input.data.device());
  out.data = input.data.index_select(0, idx);
  if (input.lengths.defined()) {
    out.lengths = input.lengths.index_select(0, idx);
    const auto longest = out.lengths.max().item<std::int64_t>();
    out.data = out.data.narrow(1, 0, std::min(longest, out.data.size(1))).contiguous();
  }
  return out;
}

models::ModalityInput concat_inputs(const std::vector<models::ModalityInput>& parts) {
  MMKT_CHECK(!parts.empty(), "concat_inputs: no parts");
  models::ModalityInput out;
  std::vector<torch::Tensor> data, lengths;
  if (parts.front().lengths.defined()) {
    std::int64_t longest = 0;
    for (const auto& p : parts) longest = std::max(longest, p.data.size(1));
    for (const auto& p : parts) {
      data.push_back(torch::constant_pad_nd(p.data, {0, longest - p.data.size(1)}, 0));
      lengths.push_back(p.lengths);
    }
    out.lengths = torch::cat(lengths);
  } else {
    for (const auto& p : parts) data.push_back(p.data);
  }
  out.data = torch::cat(data);
  return out;
}

InputBatches collect_inputs(LoadedRun& run, const data::DatasetPtr& dataset,
                            const std::string& modality, std::int64_t max_items,
                            bool all_modalities, bool binarize) {
  MMKT_CHECK_INPUT(dataset != nullptr && dataset->size() > 0, "the dataset is empty");
  MMKT_CHECK_INPUT(run.model->has_modality(modality), "the teacher has no modality '", modality,
                   "'");
  std::vector<models::ModalityConfig> wanted;
  for (const auto& m : run.modalities) {
    if (all_modalities || m.name == modality) wanted.push_back(m);
  }
  const bool text = std::any_of(wanted.begin(), wanted.end(), [](const auto& m) {
    return m.kind == models::ModalityKind::kText;
  });
  auto o = batcher_options(run, binarize ? BatchPurpose::kTransferSet : BatchPurpose::kEvaluation);
  if (!text) o.tokenizer = nullptr;
  data::Batcher batcher(data::head(dataset, max_items), o);
  batcher.start_epoch(0);
  InputBatches out;
  std::vector<torch::Tensor> labels;
  while (auto batch = batcher.next()) {
    auto inputs = inputs_from_batch(*batch, wanted, torch::kCPU);
    out.batches.push_back(inputs.at(modality));
    if (all_modalities) out.all.push_back(std::move(inputs));
    labels.push_back(batch->labels);
  }
  out.labels = torch::cat(labels);
  return out;
}

namespace {

// Teacher class scores: a softmax regression on the posterior means (L-BFGS, linear.h).
torch::Tensor class_logits(const torch::Tensor& mu, const torch::Tensor& labels,
                           std::int64_t classes) {
  const auto clf = eval::fit_softmax(mu, labels, classes);
  return clf.logits(mu);
}

models::Gaussian cat_gaussians(const std::vector<models::Gaussian>& parts) {
  std::vector<torch::Tensor> mu, logvar;
  for (const auto& g : parts) {
    mu.push_back(g.mu);
    logvar.push_back(g.logvar);
  }
  return {torch::cat(mu), torch::cat(logvar)};
}

std::int64_t num_classes_of(const torch::Tensor& labels, std::int64_t classes) {
  return std::max(classes, labels.max().item<std::int64_t>() + 1);
}

}  // namespace

TransferSet transfer_from_teacher(LoadedRun& run, const std::string& modality,
                                  std::int64_t max_items, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  run.model->eval();
  auto inputs = collect_inputs(run, run.data.train, modality, max_items, /*all_modalities=*/true,
                               /*binarize=*/true);
  std::vector<models::Gaussian> unimodal, joint;
  std::vector<torch::Tensor> features;
  for (const auto& batch : inputs.all) {
    models::Inputs on_device;
    for (const auto& [name, in] : batch) on_device[name] = in.to(device);
    const auto& x = on_device.at(modality);
    features.push_back(run.model->unimodal_features(modality, x).cpu());
    const auto q = run.model->encode(modality, x);
    unimodal.push_back({q.mu.cpu(), q.logvar.cpu()});
    const auto j = run.model->encode_joint(on_device);
    joint.push_back({j.mu.cpu(), j.logvar.cpu()});
  }
  TransferSet t;
  t.input = concat_inputs(inputs.batches);
  t.labels = inputs.labels;
  t.features = torch::cat(features);
  t.unimodal = cat_gaussians(unimodal);
  t.joint = cat_gaussians(joint);
  std::int64_t classes = 0;
  if (run.data.class_attributes)
    classes = static_cast<std::int64_t>(run.data.class_attributes->class_names.size());
  t.classes = num_classes_of(t.labels, classes);
  t.logits_unimodal = class_logits(t.unimodal.mu, t.labels, t.classes);
  t.logits_joint = class_logits(t.joint.mu, t.labels, t.classes);
  t.source = "teacher";
  log::info("transfer set: ", t.size(), " training items, teacher features ", t.features.size(1),
            ", latent ", t.joint.mu.size(1), ", ", t.classes, " classes");
  return t;
}

namespace {

// A transfer set from a unimodal source (no privileged view: joint = unimodal). `run` maps a
// batch of inputs to (features, posterior).
template <typename Source>
TransferSet unimodal_transfer(const models::ModalityInput& input, const torch::Tensor& labels,
                              std::int64_t classes, const torch::Device& device, Source run) {
  torch::NoGradGuard no_grad;
  std::vector<models::Gaussian> posterior;
  std::vector<torch::Tensor> features;
  const auto n = labels.size(0);
  for (std::int64_t start = 0; start < n; start += 500) {
    const auto rows = torch::arange(start, std::min(n, start + 500), torch::kInt64);
    const auto [h, q] = run(select_rows(input, rows).to(device));
    features.push_back(h.cpu());
    posterior.push_back({q.mu.cpu(), q.logvar.cpu()});
  }
  TransferSet t;
  t.input = input;
  t.labels = labels;
  t.features = torch::cat(features);
  t.unimodal = cat_gaussians(posterior);
  t.joint = t.unimodal;
  t.classes = num_classes_of(labels, classes);
  t.logits_unimodal = class_logits(t.unimodal.mu, labels, t.classes);
  t.logits_joint = t.logits_unimodal;
  return t;
}

}  // namespace

TransferSet transfer_from_inputs(models::MultimodalVae& teacher, const std::string& modality,
                                 const models::ModalityInput& input, const torch::Tensor& labels,
                                 std::int64_t classes, const torch::Device& device) {
  teacher->eval();
  auto t = unimodal_transfer(input, labels, classes, device, [&](const models::ModalityInput& x) {
    return std::make_pair(teacher->unimodal_features(modality, x), teacher->encode(modality, x));
  });
  t.source = "teacher (" + modality + " only)";
  return t;
}

TransferSet transfer_from_student(Student& auxiliary, const models::ModalityInput& input,
                                  const torch::Tensor& labels, std::int64_t classes,
                                  const torch::Device& device) {
  auxiliary->eval();
  auto t = unimodal_transfer(input, labels, classes, device, [&](const models::ModalityInput& x) {
    auto h = auxiliary->features(x);
    auto q = auxiliary->head(h);
    return std::make_pair(h, q);
  });
  t.source = "auxiliary " + auxiliary->spec().text;
  return t;
}

}  // namespace mmkt::distill
