// The transfer set: what a student learns from. For every training item, the student's input
// (one modality) and the teacher's outputs on that item, computed once without gradients:
//   unimodal  q_t(z | the student's modality)            (what the teacher sees of the input)
//   joint     q_t(z | every modality, text included)    (privileged information, Lopez-Paz 2016)
//   features  the teacher's encoder features of the student's modality (hint and VID targets)
//   logits    class scores of a softmax regression fitted on the teacher's posterior means of
//             these items (the teacher has no class head), for the unimodal and joint views
// A trained student can stand in for the teacher (the heavy-auxiliary route): then joint =
// unimodal = the auxiliary's posterior and features are the auxiliary's features.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "mmkt/distill/student.h"
#include "mmkt/models/gaussian.h"
#include "mmkt/models/multimodal_vae.h"
#include "mmkt/run/run.h"

namespace mmkt::distill {

struct TransferSet {
  models::ModalityInput input;  // [N,...] on the CPU
  torch::Tensor labels;         // [N] int64
  torch::Tensor features;       // [N,F]
  models::Gaussian unimodal, joint;
  torch::Tensor logits_unimodal, logits_joint;  // [N,C]
  std::int64_t classes = 0;
  std::string source;  // "teacher", "teacher (data-free)", "auxiliary mlp:256"
  std::int64_t size() const { return labels.size(0); }
};

// Rows of a modality input, trimmed to the longest kept sequence for text.
models::ModalityInput select_rows(const models::ModalityInput& input, const torch::Tensor& rows);
// Concatenates batch inputs (text right-padded with 0 to the longest batch).
models::ModalityInput concat_inputs(const std::vector<models::ModalityInput>& parts);

// Inputs of one modality and the labels of (the first `max_items` of) a dataset, in test-time
// batches (no shuffling). `binarize` draws one fixed binarization of the images when the run
// binarizes dynamically (the transfer set: students then train on the kind of images the
// fixed-binarized test set holds); otherwise images are as the dataset gives them.
struct InputBatches {
  std::vector<models::ModalityInput> batches;  // on the CPU
  std::vector<models::Inputs> all;             // every modality of the model (when requested)
  torch::Tensor labels;
};
InputBatches collect_inputs(LoadedRun& run, const data::DatasetPtr& dataset,
                            const std::string& modality, std::int64_t max_items,
                            bool all_modalities, bool binarize = false);

// From a trained multimodal teacher on (the first `max_items` of) its own training split.
TransferSet transfer_from_teacher(LoadedRun& run, const std::string& modality,
                                  std::int64_t max_items, const torch::Device& device);
// From the teacher on inputs of one modality alone (no privileged view: joint = unimodal), e.g.
// inputs reconstructed without the dataset (data-free distillation).
TransferSet transfer_from_inputs(models::MultimodalVae& teacher, const std::string& modality,
                                 const models::ModalityInput& input, const torch::Tensor& labels,
                                 std::int64_t classes, const torch::Device& device);
// From a trained student acting as the teacher (the heavy-auxiliary route).
TransferSet transfer_from_student(Student& auxiliary, const models::ModalityInput& input,
                                  const torch::Tensor& labels, std::int64_t classes,
                                  const torch::Device& device);

}  // namespace mmkt::distill
