// Students: small unimodal encoders that output a diagonal Gaussian in the teacher's latent
// space, so that a student's image embedding is comparable with the teacher's text embeddings
// (and vice versa for text students), plus a class head on the posterior mean.
//
//   input -> FeatureEncoder (the same networks as the teacher's encoders, smaller) -> h [B,F]
//         -> Linear -> (mu, logvar) [B,D] -> class head Linear(D -> classes) on mu
//
// Student specs (the --student option):
//   mlp:W1,W2,...   image MLP with these hidden widths (e.g. mlp:64)
//   conv:C:W        image CNN, C channels in the first of 4 stride-2 convs, then Linear to W
//                   (images of 16k x 16k pixels, e.g. 64x64 shapes)
//   gru:E:H:W       text student: embedding E, forward/backward GRUs of width H, Linear to W
#pragma once

#include <cstdint>
#include <string>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mmkt/models/gaussian.h"
#include "mmkt/models/modality.h"

namespace mmkt::distill {

struct StudentSpec {
  std::string text;                 // the spec as given ("mlp:64")
  models::ModalityConfig modality;  // the student's encoder, sized by the spec
  std::int64_t latent_dim = 0;
  std::int64_t classes = 0;  // class head outputs (0 = none)
};

// Parses a spec for a student of `teacher_modality` (its kind, shape and vocabulary are kept;
// the network and its widths come from the spec). InputError on a malformed spec or one of
// the wrong kind (conv for a text modality, ...).
StudentSpec parse_student_spec(const std::string& spec,
                               const models::ModalityConfig& teacher_modality,
                               std::int64_t latent_dim, std::int64_t classes);

nlohmann::json student_spec_to_json(const StudentSpec& spec);
StudentSpec student_spec_from_json(const nlohmann::json& j, const std::string& source);

class StudentImpl : public torch::nn::Module {
 public:
  explicit StudentImpl(const StudentSpec& spec);
  const StudentSpec& spec() const { return spec_; }

  torch::Tensor features(const models::ModalityInput& input);  // [B,F]
  models::Gaussian head(const torch::Tensor& features);        // q_s(z|input) from features
  models::Gaussian encode(const models::ModalityInput& input) { return head(features(input)); }
  torch::Tensor logits(const torch::Tensor& mu);  // [B,classes]
  std::int64_t feature_dim() const { return encoder_->out_features(); }
  std::int64_t parameter_count();

 private:
  StudentSpec spec_;
  std::shared_ptr<models::FeatureEncoderImpl> encoder_;
  torch::nn::Linear gaussian_{nullptr};
  torch::nn::Linear class_head_{nullptr};
};
TORCH_MODULE(Student);

// Parameters of a module (all of them, trainable or not).
std::int64_t count_parameters(const torch::nn::Module& module);

// A student directory: student.json (spec) + student.pt (weights, atomic checkpoint).
void save_student(const std::string& dir, Student& student);
Student load_student(const std::string& dir, const torch::Device& device);

}  // namespace mmkt::distill
