#include "mmkt/models/modality.h"

#include "mmkt/core/error.h"
#include "mmkt/models/networks.h"

namespace mmkt::models {
namespace {

std::string where(const ModalityConfig& config) { return "modality '" + config.name + "'"; }

// Tiles `t` k times along dim 0: row i*B + b is row b (k-major), like t.repeat({k,1,...}).
torch::Tensor repeat_rows(const torch::Tensor& t, std::int64_t k) {
  if (!t.defined()) return t;
  MMKT_CHECK(t.dim() >= 1, "ModalityInput::repeat: cannot repeat a 0-d tensor");
  std::vector<std::int64_t> reps(static_cast<std::size_t>(t.dim()), 1);
  reps[0] = k;
  return t.repeat(reps);
}

// Name of the network to build: the configured one, or the kind's default when empty.
std::string or_default(const std::string& value, const char* fallback) {
  return value.empty() ? std::string(fallback) : value;
}

}  // namespace

const char* to_string(ModalityKind kind) {
  switch (kind) {
    case ModalityKind::kImage:
      return "image";
    case ModalityKind::kText:
      return "text";
    case ModalityKind::kLabel:
      return "label";
    case ModalityKind::kAttributes:
      return "attributes";
  }
  return "?";
}

std::ostream& operator<<(std::ostream& out, ModalityKind kind) { return out << to_string(kind); }

ModalityKind parse_modality_kind(const std::string& name, const std::string& where) {
  for (const auto kind : {ModalityKind::kImage, ModalityKind::kText, ModalityKind::kLabel,
                          ModalityKind::kAttributes}) {
    if (name == to_string(kind)) return kind;
  }
  fail_input(where, ": unknown kind '", name, "' (expected image, text, label or attributes)");
}

ModalityInput ModalityInput::repeat(std::int64_t k) const {
  MMKT_CHECK(k >= 1, "ModalityInput::repeat: k must be at least 1, got ", k);
  return {repeat_rows(data, k), repeat_rows(lengths, k)};
}

ModalityInput ModalityInput::to(const torch::Device& device) const {
  return {data.defined() ? data.to(device) : data,
          lengths.defined() ? lengths.to(device) : lengths};
}

torch::Tensor DecoderImpl::log_likelihood_k(const torch::Tensor& z, const ModalityInput& target) {
  MMKT_CHECK(z.dim() == 3, "log_likelihood_k: z must be [K,B,D], got ", z.sizes());
  const auto k = z.size(0);
  const auto b = z.size(1);
  MMKT_CHECK(target.data.defined() && target.data.size(0) == b, "log_likelihood_k: z has ", b,
             " items per sample but the target has ",
             target.data.defined() ? target.data.size(0) : 0);
  const auto flat = z.reshape({k * b, z.size(2)});
  return log_likelihood(flat, target.repeat(k)).view({k, b});
}

std::shared_ptr<FeatureEncoderImpl> make_feature_encoder(const ModalityConfig& config) {
  if (config.kind == models::ModalityKind::kImage) {
    const auto encoder = or_default(config.encoder, "mlp");
    MMKT_CHECK_INPUT(config.shape.size() == 3, where(config),
                     ": images need 'shape' {C,H,W} (filled from the data), got ",
                     config.shape.size(), " values");
    if (encoder == "mlp") return std::make_shared<ImageMlpEncoderImpl>(config);
    if (encoder == "conv") return std::make_shared<ImageConvEncoderImpl>(config);
    fail_input(where(config), ": unknown encoder '", encoder, "' (expected mlp or conv)");
  }
  if (config.kind == models::ModalityKind::kText) {
    const auto encoder = or_default(config.encoder, "gru");
    if (encoder == "gru") return std::make_shared<TextGruEncoderImpl>(config);
    if (encoder == "conv") return std::make_shared<TextConvEncoderImpl>(config);
    fail_input(where(config), ": unknown encoder '", encoder, "' (expected gru or conv)");
  }
  const auto encoder = or_default(config.encoder, "mlp");
  MMKT_CHECK_INPUT(encoder == "mlp", where(config), ": unknown encoder '", encoder,
                   "' (expected mlp)");
  if (config.kind == models::ModalityKind::kLabel)
    return std::make_shared<LabelEncoderImpl>(config);
  return std::make_shared<AttributeEncoderImpl>(config);
}

std::shared_ptr<DecoderImpl> make_decoder(const ModalityConfig& config, std::int64_t latent_dim) {
  MMKT_CHECK_INPUT(latent_dim > 0, where(config), ": latent dimension must be positive, got ",
                   latent_dim);
  if (config.kind == models::ModalityKind::kImage) {
    const auto decoder = or_default(config.decoder, "mlp");
    MMKT_CHECK_INPUT(decoder == "mlp" || decoder == "conv", where(config), ": unknown decoder '",
                     decoder, "' (expected mlp or conv)");
    const auto likelihood =
        parse_image_likelihood(or_default(config.likelihood, "bernoulli"), config.name);
    MMKT_CHECK_INPUT(config.shape.size() == 3, where(config),
                     ": images need 'shape' {C,H,W} (filled from the data), got ",
                     config.shape.size(), " values");
    if (decoder == "mlp")
      return std::make_shared<ImageMlpDecoderImpl>(config, latent_dim, likelihood);
    return std::make_shared<ImageConvDecoderImpl>(config, latent_dim, likelihood);
  }
  const bool text = config.kind == models::ModalityKind::kText;
  const auto decoder = or_default(config.decoder, text ? "gru" : "mlp");
  if (text) {
    MMKT_CHECK_INPUT(decoder == "gru" || decoder == "conv", where(config), ": unknown decoder '",
                     decoder, "' (expected gru or conv)");
  } else {
    MMKT_CHECK_INPUT(decoder == "mlp", where(config), ": unknown decoder '", decoder,
                     "' (expected mlp)");
  }
  const char* expected =
      config.kind == models::ModalityKind::kAttributes ? "bernoulli" : "categorical";
  const auto likelihood = or_default(config.likelihood, expected);
  MMKT_CHECK_INPUT(likelihood == expected, where(config), ": unknown likelihood '", likelihood,
                   "' for kind ", config.kind, " (expected ", expected, ")");
  if (text && decoder == "conv") return std::make_shared<TextConvDecoderImpl>(config, latent_dim);
  if (text) return std::make_shared<TextGruDecoderImpl>(config, latent_dim);
  if (config.kind == models::ModalityKind::kLabel)
    return std::make_shared<LabelDecoderImpl>(config, latent_dim);
  return std::make_shared<AttributeDecoderImpl>(config, latent_dim);
}

}  // namespace mmkt::models
