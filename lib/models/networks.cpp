#include "mmkt/models/networks.h"

#include <cmath>
#include <limits>

#include "mmkt/core/error.h"
#include "mmkt/models/conv_transpose.h"
#include "mmkt/models/fused_gru.h"
#include "mmkt/models/gru_inference.h"
#include "mmkt/text/tokenizer.h"

namespace mmkt::models {
namespace {

constexpr double kLog2Pi = 1.8378770664093453;  // log(2 pi)
constexpr std::int64_t kPad = text::Tokenizer::kPadId;
constexpr std::int64_t kBos = text::Tokenizer::kBosId;
constexpr std::int64_t kEos = text::Tokenizer::kEosId;

std::string where(const std::string& name) { return "modality '" + name + "'"; }

void check_hidden(const ModalityConfig& config) {
  MMKT_CHECK_INPUT(!config.hidden.empty(), where(config.name),
                   ": 'hidden' must list at least one width");
  for (auto w : config.hidden) {
    MMKT_CHECK_INPUT(w > 0, where(config.name), ": hidden widths must be positive, got ", w);
  }
}

void check_image_shape(const ModalityConfig& config) {
  MMKT_CHECK_INPUT(config.shape.size() == 3, where(config.name),
                   ": image 'shape' must be {C,H,W}, got ", config.shape.size(), " values");
  for (auto s : config.shape) {
    MMKT_CHECK_INPUT(s > 0, where(config.name), ": image shape entries must be positive, got ", s);
  }
}

void check_conv_shape(const ModalityConfig& config) {
  check_image_shape(config);
  MMKT_CHECK_INPUT(config.shape[1] % 4 == 0 && config.shape[2] % 4 == 0, where(config.name),
                   ": conv networks need H and W divisible by 4 (at least 2 stride-2 layers), got ",
                   config.shape[1], "x", config.shape[2], "; use the mlp encoder/decoder");
  MMKT_CHECK_INPUT(config.channels > 0, where(config.name), ": 'channels' must be positive, got ",
                   config.channels);
}

}  // namespace

int conv_stride2_layers(std::int64_t height, std::int64_t width) {
  int layers = 0;
  while (layers < 4 && height % 2 == 0 && width % 2 == 0) {
    height /= 2;
    width /= 2;
    ++layers;
  }
  return layers;
}

namespace {

void check_latent(const ModalityConfig& config, std::int64_t latent_dim) {
  MMKT_CHECK_INPUT(latent_dim > 0, where(config.name), ": latent dimension must be positive, got ",
                   latent_dim);
}

std::int64_t product(const std::vector<std::int64_t>& v) {
  std::int64_t p = 1;
  for (auto x : v) p *= x;
  return p;
}

// Shape check of an image batch against {C,H,W}.
void check_image_batch(const std::string& name, const torch::Tensor& data,
                       const std::vector<std::int64_t>& shape) {
  MMKT_CHECK_INPUT(data.defined() && data.dim() == 4 && data.size(1) == shape[0] &&
                       data.size(2) == shape[1] && data.size(3) == shape[2],
                   where(name), ": expected images [B,", shape[0], ",", shape[1], ",", shape[2],
                   "], got ", data.defined() ? data.sizes() : torch::IntArrayRef{});
}

void check_batch(const std::string& name, const torch::Tensor& z, const torch::Tensor& data) {
  MMKT_CHECK_INPUT(z.dim() == 2, where(name), ": z must be [B,D], got ", z.sizes());
  MMKT_CHECK_INPUT(z.size(0) == data.size(0), where(name), ": z has ", z.size(0),
                   " rows but the target has ", data.size(0));
}

// Range check of integer ids in [0, limit).
void check_ids(const std::string& name, const torch::Tensor& ids, std::int64_t limit,
               const char* what) {
  if (ids.numel() == 0) return;
  const auto lo = ids.min().item<std::int64_t>();
  const auto hi = ids.max().item<std::int64_t>();
  MMKT_CHECK_INPUT(lo >= 0 && hi < limit, where(name), ": ", what, " must lie in [0, ", limit,
                   "), got values in [", lo, ", ", hi, "]");
}

torch::Dtype param_dtype(torch::nn::Module& module) {
  for (const auto& p : module.parameters()) return p.scalar_type();
  return torch::kFloat32;
}

// log_softmax rows with the ids that may never be generated (pad, BOS) set to -inf.
torch::Tensor mask_unreachable(torch::Tensor logp) {
  logp = logp.clone();
  const auto inf = std::numeric_limits<double>::infinity();
  logp.select(-1, kPad).fill_(-inf);
  logp.select(-1, kBos).fill_(-inf);
  return logp;
}

// Drops trailing columns that are pad in every row.
torch::Tensor trim_padding(const torch::Tensor& ids) {
  if (ids.size(0) == 0) return ids;
  const auto longest = (ids != kPad).sum(1).max().item<std::int64_t>();
  return ids.slice(1, 0, std::max<std::int64_t>(longest, 1));
}

}  // namespace

ImageLikelihood parse_image_likelihood(const std::string& name, const std::string& modality) {
  if (name == "bernoulli") return ImageLikelihood::kBernoulli;
  if (name == "gaussian") return ImageLikelihood::kGaussian;
  if (name == "laplace") return ImageLikelihood::kLaplace;
  fail_input(where(modality), ": unknown likelihood '", name,
             "' for kind image (expected bernoulli, gaussian or laplace)");
}

torch::Tensor image_log_likelihood(const torch::Tensor& output, const torch::Tensor& target,
                                   ImageLikelihood likelihood, double scale,
                                   const torch::Tensor& log_scale) {
  const auto x = target.to(output.scalar_type());
  torch::Tensor per_pixel;
  if (likelihood == ImageLikelihood::kBernoulli) {
    per_pixel = -torch::binary_cross_entropy_with_logits(output, x, {}, {}, at::Reduction::None);
    return per_pixel.flatten(1).sum(1);
  }
  const auto diff = x - torch::sigmoid(output);
  if (log_scale.defined()) {  // learned: log s is a parameter
    const auto ls = log_scale.clamp(kMinLogScale, kMaxLogScale);
    if (likelihood == ImageLikelihood::kGaussian) {
      per_pixel = -0.5 * diff * diff * torch::exp(-2.0 * ls) - ls - 0.5 * kLog2Pi;
    } else {
      per_pixel = -diff.abs() * torch::exp(-ls) - ls - std::log(2.0);
    }
  } else if (likelihood == ImageLikelihood::kGaussian) {
    per_pixel = -0.5 * diff * diff / (scale * scale) - (std::log(scale) + 0.5 * kLog2Pi);
  } else {
    per_pixel = -diff.abs() / scale - std::log(2.0 * scale);
  }
  return per_pixel.flatten(1).sum(1);
}

torch::nn::Sequential make_relu_mlp(std::int64_t in_features,
                                    const std::vector<std::int64_t>& widths) {
  torch::nn::Sequential seq;
  for (auto w : widths) {
    seq->push_back(torch::nn::Linear(in_features, w));
    seq->push_back(torch::nn::ReLU());
    in_features = w;
  }
  return seq;
}

// ---- Images -----------------------------------------------------------------------------

ImageMlpEncoderImpl::ImageMlpEncoderImpl(const ModalityConfig& config)
    : name_(config.name), shape_(config.shape) {
  check_image_shape(config);
  check_hidden(config);
  out_features_ = config.hidden.back();
  layers_ = register_module("layers", make_relu_mlp(product(shape_), config.hidden));
}

torch::Tensor ImageMlpEncoderImpl::forward(const ModalityInput& input) {
  check_image_batch(name_, input.data, shape_);
  return layers_->forward(input.data.to(param_dtype(*this)).flatten(1));
}

ImageConvEncoderImpl::ImageConvEncoderImpl(const ModalityConfig& config)
    : name_(config.name), shape_(config.shape) {
  check_conv_shape(config);
  check_hidden(config);
  out_features_ = config.hidden.back();
  const auto c = config.channels;
  const auto layers = conv_stride2_layers(shape_[1], shape_[2]);
  torch::nn::Sequential conv;
  std::int64_t in = shape_[0];
  for (int i = 0; i < layers; ++i) {
    const std::int64_t out = c << i;  // c, 2c, 4c, 8c
    conv->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 4).stride(2).padding(1)));
    conv->push_back(torch::nn::ReLU());
    in = out;
  }
  conv_ = register_module("conv", conv);
  const std::int64_t reduce = std::int64_t{1} << layers;
  fc_ = register_module(
      "fc", torch::nn::Linear(in * (shape_[1] / reduce) * (shape_[2] / reduce), out_features_));
}

torch::Tensor ImageConvEncoderImpl::forward(const ModalityInput& input) {
  check_image_batch(name_, input.data, shape_);
  const auto h = conv_->forward(input.data.to(fc_->weight.scalar_type()));
  return torch::relu(fc_->forward(h.flatten(1)));
}

ImageDecoderImpl::ImageDecoderImpl(const ModalityConfig& config, ImageLikelihood likelihood)
    : name_(config.name),
      shape_(config.shape),
      likelihood_(likelihood),
      scale_(config.likelihood_scale) {
  check_image_shape(config);
  check_hidden(config);
  if (likelihood != ImageLikelihood::kBernoulli) {
    MMKT_CHECK_INPUT(scale_ >= 0.0 && std::isfinite(scale_), where(name_),
                     ": 'likelihood_scale' must be positive (or 0: learned), got ", scale_);
    if (scale_ == 0.0) {
      log_scale_ = register_parameter("log_scale", torch::full({}, std::log(kInitialLearnedScale)));
    }
  }
}

torch::Tensor ImageDecoderImpl::log_likelihood(const torch::Tensor& z,
                                               const ModalityInput& target) {
  check_image_batch(name_, target.data, shape_);
  check_batch(name_, z, target.data);
  return image_log_likelihood(output(z), target.data, likelihood_, scale_, log_scale_);
}

torch::Tensor ImageDecoderImpl::mean(const torch::Tensor& z) { return torch::sigmoid(output(z)); }

ImageMlpDecoderImpl::ImageMlpDecoderImpl(const ModalityConfig& config, std::int64_t latent_dim,
                                         ImageLikelihood likelihood)
    : ImageDecoderImpl(config, likelihood) {
  check_latent(config, latent_dim);
  const std::vector<std::int64_t> widths(config.hidden.rbegin(), config.hidden.rend());
  layers_ = register_module("layers", make_relu_mlp(latent_dim, widths));
  out_ = register_module("out", torch::nn::Linear(widths.back(), product(shape_)));
}

torch::Tensor ImageMlpDecoderImpl::output(const torch::Tensor& z) {
  const auto flat = out_->forward(layers_->forward(z));
  return flat.view({z.size(0), shape_[0], shape_[1], shape_[2]});
}

ImageConvDecoderImpl::ImageConvDecoderImpl(const ModalityConfig& config, std::int64_t latent_dim,
                                           ImageLikelihood likelihood)
    : ImageDecoderImpl(config, likelihood) {
  check_conv_shape(config);
  check_latent(config, latent_dim);
  const auto c = config.channels;
  const auto layers = conv_stride2_layers(shape_[1], shape_[2]);
  const std::int64_t reduce = std::int64_t{1} << layers;
  base_channels_ = c << (layers - 1);
  base_h_ = shape_[1] / reduce;
  base_w_ = shape_[2] / reduce;
  torch::nn::Sequential fc;
  fc->push_back(torch::nn::Linear(latent_dim, config.hidden.back()));
  fc->push_back(torch::nn::ReLU());
  fc->push_back(torch::nn::Linear(config.hidden.back(), base_channels_ * base_h_ * base_w_));
  fc->push_back(torch::nn::ReLU());
  fc_ = register_module("fc", fc);
  torch::nn::Sequential deconv;
  std::int64_t in = base_channels_;
  std::vector<std::int64_t> outs;  // 4c, 2c, c (as many as the encoder has above c), then C
  for (int i = layers - 2; i >= 0; --i) outs.push_back(c << i);
  outs.push_back(shape_[0]);
  for (std::size_t i = 0; i < outs.size(); ++i) {
    deconv->push_back(torch::nn::ConvTranspose2d(
        torch::nn::ConvTranspose2dOptions(in, outs[i], 4).stride(2).padding(1)));
    if (i + 1 < outs.size()) deconv->push_back(torch::nn::ReLU());
    in = outs[i];
  }
  deconv_ = register_module("deconv", deconv);
}

torch::Tensor ImageConvDecoderImpl::output(const torch::Tensor& z) {
  auto h = fc_->forward(z).view({z.size(0), base_channels_, base_h_, base_w_});
  // Layer by layer instead of deconv_->forward: the transposed convolutions run on the
  // ordinary convolution's kernels (models/conv_transpose.h), 2-7x faster on the CPU.
  for (auto& layer : *deconv_) {
    if (auto deconv = std::dynamic_pointer_cast<torch::nn::ConvTranspose2dImpl>(layer.ptr())) {
      torch::nn::ConvTranspose2d module(deconv);
      h = conv_transpose2d(module, h);
    } else {
      h = layer.forward(h);
    }
  }
  return h;
}

// ---- Text -------------------------------------------------------------------------------

torch::Tensor sequence_lengths(const ModalityInput& input) {
  if (input.lengths.defined()) return input.lengths.to(torch::kLong);
  return (input.data != kPad).sum(1);
}

namespace {
// Validates ids [B,L] and lengths; returns lengths (int64, on the ids' device).
torch::Tensor checked_text(const std::string& name, const ModalityInput& input,
                           std::int64_t vocab_size, std::int64_t min_length) {
  const auto& ids = input.data;
  MMKT_CHECK_INPUT(ids.defined() && ids.dim() == 2, where(name), ": expected token ids [B,L], got ",
                   ids.defined() ? ids.sizes() : torch::IntArrayRef{});
  MMKT_CHECK_INPUT(!ids.is_floating_point(), where(name), ": token ids must be integers, got ",
                   ids.scalar_type());
  check_ids(name, ids, vocab_size, "token ids");
  auto lengths = sequence_lengths(input).to(ids.device());
  MMKT_CHECK_INPUT(lengths.dim() == 1 && lengths.size(0) == ids.size(0), where(name),
                   ": lengths must be [", ids.size(0), "], got ", lengths.sizes());
  if (lengths.numel() > 0) {
    const auto lo = lengths.min().item<std::int64_t>();
    const auto hi = lengths.max().item<std::int64_t>();
    MMKT_CHECK_INPUT(lo >= min_length && hi <= ids.size(1), where(name), ": lengths must lie in [",
                     min_length, ", ", ids.size(1), "], got values in [", lo, ", ", hi, "]");
  }
  return lengths;
}
}  // namespace

// Batches up to this size take the inference fast path of the text encoder.
constexpr std::int64_t kFastInferenceMaxBatch = 8;

TextGruEncoderImpl::TextGruEncoderImpl(const ModalityConfig& config)
    : name_(config.name), vocab_size_(config.vocab_size) {
  check_hidden(config);
  MMKT_CHECK_INPUT(vocab_size_ >= 5, where(name_), ": 'vocab_size' must be at least 5, got ",
                   vocab_size_);
  MMKT_CHECK_INPUT(config.embedding_dim > 0 && config.rnn_hidden > 0, where(name_),
                   ": 'embedding_dim' and 'rnn_hidden' must be positive");
  out_features_ = config.hidden.back();
  embedding_ = register_module(
      "embedding",
      torch::nn::Embedding(
          torch::nn::EmbeddingOptions(vocab_size_, config.embedding_dim).padding_idx(kPad)));
  const auto gru_options =
      torch::nn::GRUOptions(config.embedding_dim, config.rnn_hidden).batch_first(true);
  gru_forward_ = register_module("gru_forward", torch::nn::GRU(gru_options));
  gru_backward_ = register_module("gru_backward", torch::nn::GRU(gru_options));
  fc_ = register_module("fc", torch::nn::Linear(2 * config.rnn_hidden, out_features_));
}

torch::Tensor TextGruEncoderImpl::forward(const ModalityInput& input) {
  const auto lengths = checked_text(name_, input, vocab_size_, 1);
  const auto ids = input.data.to(torch::kLong);
  const auto batch = ids.size(0);
  const auto steps = ids.size(1);
  if (!torch::GradMode::is_enabled() && batch <= kFastInferenceMaxBatch && ids.device().is_cpu() &&
      fc_->weight.scalar_type() == torch::kFloat32) {
    // A query: per-sequence recurrences without libtorch's per-token dispatch (same result).
    const auto embedded = embedding_->forward(ids);
    std::vector<torch::Tensor> states;
    const auto lengths_cpu = lengths.to(torch::kLong).contiguous();
    const auto* len_of = lengths_cpu.data_ptr<std::int64_t>();
    for (std::int64_t b = 0; b < batch; ++b) {
      states.push_back(
          torch::cat({gru_last_state_inference(gru_forward_, embedded[b], len_of[b], false),
                      gru_last_state_inference(gru_backward_, embedded[b], len_of[b], true)}));
    }
    return torch::relu(fc_->forward(torch::stack(states)));
  }
  // Each sequence reversed within its length (position t reads id len-1-t), padding after.
  const auto pos = torch::arange(steps, lengths.options()).unsqueeze(0);  // [1,L]
  const auto len = lengths.unsqueeze(1);                                  // [B,1]
  const auto reversed = ids.gather(1, (len - 1 - pos).clamp_min(0)).masked_fill(pos >= len, kPad);
  // The state after the last real token: it has read only real tokens, whatever the padding.
  const auto h_f = gru_sequence(gru_forward_, embedding_->forward(ids), lengths).last;
  const auto h_b = gru_sequence(gru_backward_, embedding_->forward(reversed), lengths).last;
  return torch::relu(fc_->forward(torch::cat({h_f, h_b}, 1)));
}

TextDecoderImpl::TextDecoderImpl(const ModalityConfig& config)
    : name_(config.name), vocab_size_(config.vocab_size), max_length_(config.max_length) {
  MMKT_CHECK_INPUT(vocab_size_ >= 5, where(name_), ": 'vocab_size' must be at least 5, got ",
                   vocab_size_);
  MMKT_CHECK_INPUT(config.embedding_dim > 0 && config.rnn_hidden > 0, where(name_),
                   ": 'embedding_dim' and 'rnn_hidden' must be positive");
  MMKT_CHECK_INPUT(max_length_ >= 2, where(name_), ": 'max_length' must be at least 2, got ",
                   max_length_);
}

torch::Tensor TextDecoderImpl::mean(const torch::Tensor& z) {
  MMKT_CHECK_INPUT(z.dim() == 2, where(name_), ": z must be [B,D], got ", z.sizes());
  torch::NoGradGuard no_grad;
  const auto n = z.size(0);
  const auto id_options = z.options().dtype(torch::kLong);
  auto prev = torch::full({n}, kBos, id_options);
  std::vector<torch::Tensor> tokens = {prev};
  if (n == 0) return torch::stack(tokens, 1);
  auto finished = torch::zeros({n}, id_options.dtype(torch::kBool));
  auto state = start_state(z);
  for (std::int64_t t = 1; t < max_length_; ++t) {
    auto [logp, next_state] = step(prev, z, state);
    state = next_state;
    auto next = mask_unreachable(logp).argmax(1);
    next = next.masked_fill(finished, kPad);
    tokens.push_back(next);
    finished = finished | (next == kEos);
    prev = next;
    if (finished.all().item<bool>()) break;
  }
  return trim_padding(torch::stack(tokens, 1));
}

torch::Tensor TextDecoderImpl::log_likelihood_stepwise(const torch::Tensor& z,
                                                       const ModalityInput& target) {
  torch::NoGradGuard no_grad;
  const auto lengths = checked_text(name_, target, vocab_size_, 1);
  const auto ids = target.data.to(torch::kLong);
  check_batch(name_, z, ids);
  auto total = torch::zeros({ids.size(0)}, z.options());
  if (ids.size(0) == 0) return total;
  auto state = start_state(z);
  const auto longest = lengths.max().item<std::int64_t>();
  for (std::int64_t t = 1; t < longest; ++t) {
    auto [logp, next_state] = step(ids.select(1, t - 1), z, state);
    state = next_state;
    const auto picked = logp.gather(1, ids.select(1, t).unsqueeze(1)).squeeze(1);
    total += picked * (lengths > t).to(picked.scalar_type());
  }
  return total;
}

torch::Tensor TextDecoderImpl::beam_search(const torch::Tensor& z, std::int64_t beam_width,
                                           double length_penalty) {
  MMKT_CHECK_INPUT(z.dim() == 2, where(name_), ": z must be [B,D], got ", z.sizes());
  MMKT_CHECK_INPUT(beam_width >= 1, where(name_), ": beam width must be at least 1, got ",
                   beam_width);
  torch::NoGradGuard no_grad;
  const auto batch = z.size(0);
  const auto width = beam_width;
  const auto vocab = vocab_size_;
  const auto id_options = z.options().dtype(torch::kLong);
  const auto inf = std::numeric_limits<double>::infinity();
  if (batch == 0) return torch::zeros({0, 1}, id_options);

  const auto zr = z.repeat_interleave(width, 0);  // row b*W + w
  auto state = start_state(zr);
  // Only beam 0 is alive at the start, so the first expansion does not repeat hypotheses.
  auto scores = torch::full({batch, width}, -inf, z.options());
  scores.select(1, 0).fill_(0.0);
  auto finished = torch::zeros({batch, width}, id_options.dtype(torch::kBool));
  auto generated = torch::zeros({batch, width}, id_options);  // tokens after BOS, EOS included
  auto history = torch::full({batch, width, 1}, kBos, id_options);
  auto prev = torch::full({batch * width}, kBos, id_options);
  // A finished hypothesis extends only by pad, at no cost.
  auto finished_row = torch::full({vocab}, -inf, z.options());
  finished_row[kPad] = 0.0;
  const auto row_offset = (torch::arange(batch, id_options) * width).unsqueeze(1);

  for (std::int64_t t = 1; t < max_length_; ++t) {
    auto [logp, next_state] = step(prev, zr, state);
    auto candidates = mask_unreachable(logp).view({batch, width, vocab});
    candidates = torch::where(finished.unsqueeze(2), finished_row.view({1, 1, vocab}), candidates);
    const auto total = (scores.unsqueeze(2) + candidates).view({batch, width * vocab});
    auto [top, index] = total.topk(width, 1);
    const auto beam = index.div(vocab, "floor");
    const auto token = index.remainder(vocab);
    scores = top;
    const auto was_finished = finished.gather(1, beam);
    generated = generated.gather(1, beam) + (~was_finished).to(torch::kLong);
    history =
        torch::cat({history.gather(1, beam.unsqueeze(2).expand({batch, width, history.size(2)})),
                    token.unsqueeze(2)},
                   2);
    finished = was_finished | (token == kEos);
    state = select_rows(next_state, (row_offset + beam).view(-1));
    prev = token.view(-1);
    // Dead hypotheses (score -inf, when fewer than W continuations exist) count as done.
    if ((finished | torch::isinf(scores)).all().item<bool>()) break;
  }

  auto ranked = scores;
  if (length_penalty != 0.0) {
    const auto lp = ((generated.to(scores.scalar_type()) + 5.0) / 6.0).pow(length_penalty);
    ranked = scores / lp;
  }
  const auto best = ranked.argmax(1);  // [B]
  const auto chosen =
      history.gather(1, best.view({batch, 1, 1}).expand({batch, 1, history.size(2)})).squeeze(1);
  return trim_padding(chosen);
}

torch::Tensor TextDecoderImpl::log_likelihood(const torch::Tensor& z, const ModalityInput& target) {
  const auto lengths = checked_text(name_, target, vocab_size_, 1);
  const auto ids = target.data.to(torch::kLong);
  check_batch(name_, z, ids);
  const auto batch = ids.size(0);
  const auto longest = batch == 0 ? 0 : lengths.max().item<std::int64_t>();
  const auto steps = longest - 1;  // predictions of ids 1..longest-1
  if (steps <= 0) return torch::zeros({batch}, z.options());
  const auto out = position_features(ids.slice(1, 0, steps), lengths, z);  // [B,T,H]
  const auto targets = ids.slice(1, 1, steps + 1);
  // Position t predicts id t+1, which is real when t + 1 < length: row b has length-1 of them.
  const auto mask =
      torch::arange(steps, lengths.options()).unsqueeze(0) < (lengths - 1).unsqueeze(1);
  // The vocabulary layer and softmax only at real positions (padding would be masked anyway).
  const auto real = mask.flatten().nonzero().squeeze(1);  // positions b*T+t, row-major
  const auto hidden = out.reshape({batch * steps, out.size(2)}).index_select(0, real);
  const auto logp = torch::log_softmax(vocabulary(hidden), -1);  // [N,V]
  const auto picked =
      logp.gather(1, targets.reshape({batch * steps}).index_select(0, real).unsqueeze(1));
  return torch::zeros({batch}, logp.options())
      .index_add(0, torch::div(real, steps, "floor"), picked.squeeze(1));
}

TextGruDecoderImpl::TextGruDecoderImpl(const ModalityConfig& config, std::int64_t latent_dim)
    : TextDecoderImpl(config) {
  check_latent(config, latent_dim);
  embedding_ = register_module(
      "embedding",
      torch::nn::Embedding(
          torch::nn::EmbeddingOptions(vocab_size_, config.embedding_dim).padding_idx(kPad)));
  init_ = register_module("init", torch::nn::Linear(latent_dim, config.rnn_hidden));
  gru_ = register_module(
      "gru",
      torch::nn::GRU(torch::nn::GRUOptions(config.embedding_dim + latent_dim, config.rnn_hidden)
                         .batch_first(true)));
  out_ = register_module("out", torch::nn::Linear(config.rnn_hidden, vocab_size_));
}

torch::Tensor TextGruDecoderImpl::start_state(const torch::Tensor& z) {
  return torch::tanh(init_->forward(z)).unsqueeze(0);
}

std::tuple<torch::Tensor, torch::Tensor> TextGruDecoderImpl::step(const torch::Tensor& prev,
                                                                  const torch::Tensor& z,
                                                                  const torch::Tensor& h) {
  const auto x = torch::cat({embedding_->forward(prev), z}, 1).unsqueeze(1);
  auto [out, h_next] = gru_->forward(x, h);
  return {torch::log_softmax(out_->forward(out.squeeze(1)), -1), h_next};
}

torch::Tensor TextGruDecoderImpl::select_rows(const torch::Tensor& h, const torch::Tensor& rows) {
  return h.index_select(1, rows);
}

torch::Tensor TextGruDecoderImpl::position_features(const torch::Tensor& inputs,
                                                    const torch::Tensor& lengths,
                                                    const torch::Tensor& z) {
  const auto batch = inputs.size(0), steps = inputs.size(1);
  const auto x = torch::cat(
      {embedding_->forward(inputs), z.unsqueeze(1).expand({batch, steps, z.size(1)})}, 2);
  // Row b runs length-1 steps.
  return gru_sequence(gru_, x, lengths - 1, start_state(z).squeeze(0)).output;
}

// ---- Convolutions over tokens -----------------------------------------------------------

torch::Tensor text_conv_taps(const torch::Tensor& x, std::int64_t dilation, bool causal) {
  const auto steps = x.size(1);
  // x shifted right by s positions (position t reads t - s; zeros where t - s < 0), s >= 0.
  const auto before = [&](std::int64_t s) {
    return torch::constant_pad_nd(x, {0, 0, s, 0}).slice(1, 0, steps);
  };
  if (causal) return torch::cat({before(2 * dilation), before(dilation), x}, 2);
  const auto after = torch::constant_pad_nd(x, {0, 0, 0, dilation}).slice(1, dilation);
  return torch::cat({before(dilation), x, after}, 2);
}

TextConvEncoderImpl::TextConvEncoderImpl(const ModalityConfig& config)
    : name_(config.name), vocab_size_(config.vocab_size) {
  check_hidden(config);
  MMKT_CHECK_INPUT(vocab_size_ >= 5, where(name_), ": 'vocab_size' must be at least 5, got ",
                   vocab_size_);
  MMKT_CHECK_INPUT(config.embedding_dim > 0 && config.rnn_hidden > 0, where(name_),
                   ": 'embedding_dim' and 'rnn_hidden' must be positive");
  out_features_ = config.hidden.back();
  const auto e = config.embedding_dim, c = config.rnn_hidden;
  embedding_ = register_module(
      "embedding",
      torch::nn::Embedding(torch::nn::EmbeddingOptions(vocab_size_, e).padding_idx(kPad)));
  conv0_ = register_module("conv0", torch::nn::Linear(3 * e, c));
  conv1_ = register_module("conv1", torch::nn::Linear(3 * c, c));
  fc_ = register_module("fc", torch::nn::Linear(2 * c, out_features_));
}

torch::Tensor TextConvEncoderImpl::forward(const ModalityInput& input) {
  const auto lengths = checked_text(name_, input, vocab_size_, 1);
  const auto ids = input.data.to(torch::kLong);
  // Only the real positions [0, longest) are computed; later padding columns change nothing.
  const auto longest = ids.size(0) == 0 ? 1 : lengths.max().item<std::int64_t>();
  const auto x = embedding_->forward(ids.slice(1, 0, longest));  // [B,T,E], pads are zero
  const auto real = (torch::arange(longest, lengths.options()).unsqueeze(0) < lengths.unsqueeze(1))
                        .unsqueeze(2)
                        .to(x.scalar_type());  // [B,T,1]
  // Padded positions are zeroed after each layer, so a real position near the end reads zeros
  // past it, as if the row had no padding.
  auto h = torch::relu(conv0_->forward(text_conv_taps(x, 1, false))) * real;
  h = (h + torch::relu(conv1_->forward(text_conv_taps(h, 2, false)))) * real;
  const auto mean = h.sum(1) / lengths.unsqueeze(1).to(h.scalar_type());
  const auto max = std::get<0>(h.max(1));  // ReLU features: the zeroed pads never win
  return torch::relu(fc_->forward(torch::cat({mean, max}, 1)));
}

TextConvDecoderImpl::TextConvDecoderImpl(const ModalityConfig& config, std::int64_t latent_dim)
    : TextDecoderImpl(config) {
  check_latent(config, latent_dim);
  const auto e = config.embedding_dim, c = config.rnn_hidden;
  embedding_ = register_module(
      "embedding",
      torch::nn::Embedding(torch::nn::EmbeddingOptions(vocab_size_, e).padding_idx(kPad)));
  latent_ = register_module("latent", torch::nn::Linear(latent_dim, c));
  conv0_ = register_module("conv0", torch::nn::Linear(3 * e, c));
  conv1_ = register_module("conv1", torch::nn::Linear(3 * c, c));
  conv2_ = register_module("conv2", torch::nn::Linear(3 * c, c));
  out_ = register_module("out", torch::nn::Linear(c, vocab_size_));
}

torch::Tensor TextConvDecoderImpl::features(const torch::Tensor& ids, const torch::Tensor& z) {
  const auto x = embedding_->forward(ids);
  auto h =
      torch::relu(conv0_->forward(text_conv_taps(x, 1, true)) + latent_->forward(z).unsqueeze(1));
  h = h + torch::relu(conv1_->forward(text_conv_taps(h, 2, true)));
  return h + torch::relu(conv2_->forward(text_conv_taps(h, 4, true)));
}

torch::Tensor TextConvDecoderImpl::position_features(const torch::Tensor& inputs,
                                                     const torch::Tensor&, const torch::Tensor& z) {
  // Causal: position t reads ids <= t only, so what follows a row's end never reaches it.
  return features(inputs, z);
}

torch::Tensor TextConvDecoderImpl::start_state(const torch::Tensor& z) {
  return torch::zeros({z.size(0), 0}, z.options().dtype(torch::kLong));
}

std::tuple<torch::Tensor, torch::Tensor> TextConvDecoderImpl::step(const torch::Tensor& prev,
                                                                   const torch::Tensor& z,
                                                                   const torch::Tensor& ids) {
  const auto read = torch::cat({ids, prev.unsqueeze(1)}, 1);  // [N,t+1]
  // The last position depends on the last kReceptiveField ids only: every value it reads lies
  // in that window, so the window's own zero padding never reaches it.
  const auto t = read.size(1);
  const auto window = read.slice(1, std::max<std::int64_t>(0, t - kReceptiveField), t);
  const auto h = features(window, z).select(1, window.size(1) - 1);
  return {torch::log_softmax(out_->forward(h), -1), read};
}

torch::Tensor TextConvDecoderImpl::select_rows(const torch::Tensor& ids,
                                               const torch::Tensor& rows) {
  return ids.index_select(0, rows);
}

// ---- Labels and attributes ------------------------------------------------------------

LabelEncoderImpl::LabelEncoderImpl(const ModalityConfig& config)
    : name_(config.name), classes_(config.classes) {
  check_hidden(config);
  MMKT_CHECK_INPUT(classes_ > 0, where(name_), ": 'classes' must be positive, got ", classes_);
  out_features_ = config.hidden.back();
  layers_ = register_module("layers", make_relu_mlp(classes_, config.hidden));
}

torch::Tensor LabelEncoderImpl::forward(const ModalityInput& input) {
  MMKT_CHECK_INPUT(input.data.defined() && input.data.dim() == 1 && !input.data.is_floating_point(),
                   where(name_), ": expected integer class indices [B]");
  check_ids(name_, input.data, classes_, "class indices");
  const auto onehot = torch::one_hot(input.data.to(torch::kLong), classes_).to(param_dtype(*this));
  return layers_->forward(onehot);
}

LabelDecoderImpl::LabelDecoderImpl(const ModalityConfig& config, std::int64_t latent_dim)
    : name_(config.name), classes_(config.classes) {
  check_hidden(config);
  check_latent(config, latent_dim);
  MMKT_CHECK_INPUT(classes_ > 0, where(name_), ": 'classes' must be positive, got ", classes_);
  const std::vector<std::int64_t> widths(config.hidden.rbegin(), config.hidden.rend());
  layers_ = register_module("layers", make_relu_mlp(latent_dim, widths));
  out_ = register_module("out", torch::nn::Linear(widths.back(), classes_));
}

torch::Tensor LabelDecoderImpl::logits(const torch::Tensor& z) {
  return out_->forward(layers_->forward(z));
}

torch::Tensor LabelDecoderImpl::log_likelihood(const torch::Tensor& z,
                                               const ModalityInput& target) {
  MMKT_CHECK_INPUT(
      target.data.defined() && target.data.dim() == 1 && !target.data.is_floating_point(),
      where(name_), ": expected integer class indices [B]");
  check_batch(name_, z, target.data);
  check_ids(name_, target.data, classes_, "class indices");
  const auto logp = torch::log_softmax(logits(z), -1);
  return logp.gather(1, target.data.to(torch::kLong).unsqueeze(1)).squeeze(1);
}

torch::Tensor LabelDecoderImpl::mean(const torch::Tensor& z) {
  return torch::softmax(logits(z), -1);
}

AttributeEncoderImpl::AttributeEncoderImpl(const ModalityConfig& config)
    : name_(config.name), count_(config.classes) {
  check_hidden(config);
  MMKT_CHECK_INPUT(count_ > 0, where(name_),
                   ": 'classes' (the attribute count) must be positive, got ", count_);
  out_features_ = config.hidden.back();
  layers_ = register_module("layers", make_relu_mlp(count_, config.hidden));
}

torch::Tensor AttributeEncoderImpl::forward(const ModalityInput& input) {
  MMKT_CHECK_INPUT(input.data.defined() && input.data.dim() == 2 && input.data.size(1) == count_,
                   where(name_), ": expected attributes [B,", count_, "], got ",
                   input.data.defined() ? input.data.sizes() : torch::IntArrayRef{});
  return layers_->forward(input.data.to(param_dtype(*this)));
}

AttributeDecoderImpl::AttributeDecoderImpl(const ModalityConfig& config, std::int64_t latent_dim)
    : name_(config.name), count_(config.classes) {
  check_hidden(config);
  check_latent(config, latent_dim);
  MMKT_CHECK_INPUT(count_ > 0, where(name_),
                   ": 'classes' (the attribute count) must be positive, got ", count_);
  const std::vector<std::int64_t> widths(config.hidden.rbegin(), config.hidden.rend());
  layers_ = register_module("layers", make_relu_mlp(latent_dim, widths));
  out_ = register_module("out", torch::nn::Linear(widths.back(), count_));
}

torch::Tensor AttributeDecoderImpl::logits(const torch::Tensor& z) {
  return out_->forward(layers_->forward(z));
}

torch::Tensor AttributeDecoderImpl::log_likelihood(const torch::Tensor& z,
                                                   const ModalityInput& target) {
  MMKT_CHECK_INPUT(target.data.defined() && target.data.dim() == 2 && target.data.size(1) == count_,
                   where(name_), ": expected attributes [B,", count_, "], got ",
                   target.data.defined() ? target.data.sizes() : torch::IntArrayRef{});
  check_batch(name_, z, target.data);
  const auto out = logits(z);
  return -torch::binary_cross_entropy_with_logits(out, target.data.to(out.scalar_type()), {}, {},
                                                  at::Reduction::None)
              .sum(1);
}

torch::Tensor AttributeDecoderImpl::mean(const torch::Tensor& z) {
  return torch::sigmoid(logits(z));
}

}  // namespace mmkt::models
