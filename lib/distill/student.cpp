#include "mmkt/distill/student.h"

#include <sstream>

#include "mmkt/core/error.h"
#include "mmkt/core/strings.h"
#include "mmkt/io/checkpoint.h"
#include "mmkt/io/files.h"
#include "mmkt/run/config.h"

namespace mmkt::distill {

namespace {

std::int64_t positive(const std::string& text, const std::string& spec) {
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  MMKT_CHECK_INPUT(used == text.size() && !text.empty() && v > 0, "student spec '", spec, "': '",
                   text, "' is not a positive integer");
  return v;
}

}  // namespace

StudentSpec parse_student_spec(const std::string& spec, const models::ModalityConfig& teacher,
                               std::int64_t latent_dim, std::int64_t classes) {
  const auto parts = split(spec, ':');
  MMKT_CHECK_INPUT(parts.size() >= 2, "student spec '", spec,
                   "' (expected mlp:W1,W2 | conv:C:W | gru:E:H:W)");
  StudentSpec s;
  s.text = spec;
  s.modality = teacher;
  s.latent_dim = latent_dim;
  s.classes = classes;
  const auto& kind = parts[0];
  if (kind == "mlp") {
    MMKT_CHECK_INPUT(teacher.kind == models::ModalityKind::kImage && parts.size() == 2,
                     "student spec '", spec,
                     "': mlp students take one list of widths and an image modality");
    s.modality.encoder = "mlp";
    s.modality.hidden.clear();
    for (const auto& w : split(parts[1], ',')) s.modality.hidden.push_back(positive(w, spec));
  } else if (kind == "conv") {
    MMKT_CHECK_INPUT(teacher.kind == models::ModalityKind::kImage && parts.size() == 3,
                     "student spec '", spec,
                     "': conv students are conv:CHANNELS:WIDTH on an image modality");
    MMKT_CHECK_INPUT(
        teacher.shape.size() == 3 && teacher.shape[1] % 4 == 0 && teacher.shape[2] % 4 == 0,
        "student spec '", spec, "': conv students need images whose sides divide by 4");
    s.modality.encoder = "conv";
    s.modality.channels = positive(parts[1], spec);
    s.modality.hidden = {positive(parts[2], spec)};
  } else if (kind == "gru") {
    MMKT_CHECK_INPUT(teacher.kind == models::ModalityKind::kText && parts.size() == 4,
                     "student spec '", spec,
                     "': gru students are gru:EMBEDDING:RNN:WIDTH on a text modality");
    s.modality.encoder = "gru";
    s.modality.embedding_dim = positive(parts[1], spec);
    s.modality.rnn_hidden = positive(parts[2], spec);
    s.modality.hidden = {positive(parts[3], spec)};
  } else {
    fail_input("student spec '", spec, "': unknown network '", kind,
               "' (expected mlp, conv or gru)");
  }
  return s;
}

nlohmann::json student_spec_to_json(const StudentSpec& spec) {
  return {{"spec", spec.text},
          {"modality", modality_to_json(spec.modality)},
          {"latent_dim", spec.latent_dim},
          {"classes", spec.classes}};
}

StudentSpec student_spec_from_json(const nlohmann::json& j, const std::string& source) {
  try {
    StudentSpec s;
    s.text = j.at("spec").get<std::string>();
    s.modality = modality_from_json(j.at("modality"), source);
    s.latent_dim = j.at("latent_dim").get<std::int64_t>();
    s.classes = j.at("classes").get<std::int64_t>();
    MMKT_CHECK_INPUT(s.latent_dim > 0 && s.classes >= 0, source,
                     ": latent_dim must be > 0 and classes >= 0");
    return s;
  } catch (const nlohmann::json::exception& e) {
    fail_input(source, ": not a student description: ", e.what());
  }
}

StudentImpl::StudentImpl(const StudentSpec& spec) : spec_(spec) {
  encoder_ = register_module("encoder", models::make_feature_encoder(spec.modality));
  gaussian_ =
      register_module("gaussian", torch::nn::Linear(encoder_->out_features(), 2 * spec.latent_dim));
  if (spec.classes > 0)
    class_head_ = register_module("class_head", torch::nn::Linear(spec.latent_dim, spec.classes));
}

torch::Tensor StudentImpl::features(const models::ModalityInput& input) {
  return encoder_->forward(input);
}

models::Gaussian StudentImpl::head(const torch::Tensor& features) {
  return models::gaussian_from_params(gaussian_->forward(features));
}

torch::Tensor StudentImpl::logits(const torch::Tensor& mu) {
  MMKT_CHECK_INPUT(!class_head_.is_empty(), "this student has no class head (classes = 0)");
  return class_head_->forward(mu);
}

std::int64_t count_parameters(const torch::nn::Module& module) {
  std::int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

std::int64_t StudentImpl::parameter_count() { return count_parameters(*this); }

void save_student(const std::string& dir, Student& student) {
  io::write_file_atomic(dir + "/student.json",
                        student_spec_to_json(student->spec()).dump(2) + "\n");
  io::save_checkpoint(dir + "/student.pt", *student, nullptr, {});
}

Student load_student(const std::string& dir, const torch::Device& device) {
  const std::string path = dir + "/student.json";
  MMKT_CHECK_INPUT(io::file_exists(path), path, ": no student description (is ", dir,
                   " a distill output?)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(io::read_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    fail_input(path, ": malformed JSON: ", e.what());
  }
  Student student(student_spec_from_json(j, path));
  io::load_checkpoint(dir + "/student.pt", *student, nullptr, /*restore_rng=*/false);
  student->to(device);
  student->eval();
  return student;
}

}  // namespace mmkt::distill
