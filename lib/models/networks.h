// The concrete encoders and decoders behind make_feature_encoder / make_decoder (modality.h):
// image MLP and conv networks with Bernoulli, Gaussian or Laplace pixel likelihoods, text
// encoders (a masked bidirectional GRU, or a dilated convolution over tokens) and
// autoregressive text decoders (a GRU, or a causal dilated convolution) with greedy and beam
// decoding, and MLPs for labels and attribute vectors.
//
// Every network is device-agnostic: new tensors take their options from inputs or parameters.
// Submodule names ("layers", "conv", "fc", "embedding", "gru", "init", "out", "conv0"...) are
// checkpoint keys; renaming one breaks old checkpoints.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "mmkt/models/modality.h"

namespace mmkt::models {

// Pixel likelihood of an image decoder. The decoder emits one real per pixel, `o`.
//   bernoulli: o are logits; log p = -BCEWithLogits(o, x) (x may be continuous in [0,1]).
//   gaussian:  mean m = sigmoid(o), sigma s; log p = -log(s) - 0.5 log(2 pi) - (x-m)^2/2s^2.
//   laplace:   mean m = sigmoid(o), scale b; log p = -log(2b) - |x-m|/b.
// The scale is fixed (likelihood_scale > 0) or learned (likelihood_scale = 0): one scalar
// parameter log s per decoder ("log_scale"), as the sigma-VAE of Rybkin, Daniilidis and Levine
// (2021) learns it. A learned scale weighs reconstruction against the KL by how well the images
// are reconstructed, so continuous photos neither drown the latent (collapse) nor get blurred by
// a guessed scale. All normalising constants are included: sums are log-likelihoods in nats.
enum class ImageLikelihood { kBernoulli, kGaussian, kLaplace };

// A learned scale starts at 0.1 and stays within [e^-6, e^2] (log s is clamped).
constexpr double kInitialLearnedScale = 0.1;
constexpr double kMinLogScale = -6.0, kMaxLogScale = 2.0;

// Parses "bernoulli" | "gaussian" | "laplace"; throws InputError naming `modality` otherwise.
ImageLikelihood parse_image_likelihood(const std::string& name, const std::string& modality);

// log p(target | output) per item, summed over every dimension but the first: [B]. A defined
// `log_scale` (scalar tensor) is a learned log s and replaces `scale`.
torch::Tensor image_log_likelihood(const torch::Tensor& output, const torch::Tensor& target,
                                   ImageLikelihood likelihood, double scale,
                                   const torch::Tensor& log_scale = {});

// Linear+ReLU for each width in `widths`, starting from `in_features`. Empty `widths` gives
// an identity. Shared by the MLP encoders and decoders.
torch::nn::Sequential make_relu_mlp(std::int64_t in_features,
                                    const std::vector<std::int64_t>& widths);

// ---- Images -----------------------------------------------------------------------------

// [B,C,H,W] -> flatten -> Linear+ReLU per config.hidden (JMVAE: 784-512-512).
class ImageMlpEncoderImpl : public FeatureEncoderImpl {
 public:
  explicit ImageMlpEncoderImpl(const ModalityConfig& config);
  torch::Tensor forward(const ModalityInput& input) override;
  std::int64_t out_features() const override { return out_features_; }

 private:
  std::string name_;
  std::vector<std::int64_t> shape_;
  std::int64_t out_features_ = 0;
  torch::nn::Sequential layers_{nullptr};
};

// The number of stride-2 conv layers for an H x W image: how often both halve evenly, at most 4
// (64x64 and 32x32: 4; 28x28: 2, down to 7x7, the usual MNIST conv VAE). H and W must be
// divisible by 4.
int conv_stride2_layers(std::int64_t height, std::int64_t width);

// [B,C,H,W] -> n x (Conv2d k4 s2 p1 + ReLU), channels c,2c,..,(2^(n-1))c with n =
// conv_stride2_layers(H, W) -> flatten -> Linear+ReLU to hidden.back().
class ImageConvEncoderImpl : public FeatureEncoderImpl {
 public:
  explicit ImageConvEncoderImpl(const ModalityConfig& config);
  torch::Tensor forward(const ModalityInput& input) override;
  std::int64_t out_features() const override { return out_features_; }

 private:
  std::string name_;
  std::vector<std::int64_t> shape_;
  std::int64_t out_features_ = 0;
  torch::nn::Sequential conv_{nullptr};
  torch::nn::Linear fc_{nullptr};
};

// Common part of image decoders: a network emitting `output(z)` [B,C,H,W] and the pixel
// likelihood on top of it.
class ImageDecoderImpl : public DecoderImpl {
 public:
  ImageDecoderImpl(const ModalityConfig& config, ImageLikelihood likelihood);
  // Raw per-pixel outputs (logits for Bernoulli, pre-sigmoid means otherwise), [B,C,H,W].
  virtual torch::Tensor output(const torch::Tensor& z) = 0;
  torch::Tensor log_likelihood(const torch::Tensor& z, const ModalityInput& target) override;
  // Pixel means in [0,1]: sigmoid(output(z)) for every likelihood.
  torch::Tensor mean(const torch::Tensor& z) override;
  ImageLikelihood likelihood() const { return likelihood_; }

 protected:
  std::string name_;
  std::vector<std::int64_t> shape_;  // {C,H,W}
  ImageLikelihood likelihood_;
  double scale_;
  torch::Tensor log_scale_;  // defined when the scale is learned (likelihood_scale 0)
};

// z -> Linear+ReLU per reversed config.hidden -> Linear to C*H*W -> [B,C,H,W].
class ImageMlpDecoderImpl : public ImageDecoderImpl {
 public:
  ImageMlpDecoderImpl(const ModalityConfig& config, std::int64_t latent_dim,
                      ImageLikelihood likelihood);
  torch::Tensor output(const torch::Tensor& z) override;

 private:
  torch::nn::Sequential layers_{nullptr};
  torch::nn::Linear out_{nullptr};
};

// Mirror of ImageConvEncoder (n layers): z -> Linear+ReLU to hidden.back() -> Linear+ReLU to
// (2^(n-1))c x (H/2^n) x (W/2^n) -> n-1 x (ConvTranspose2d k4 s2 p1 + ReLU) halving the channels
// down to c -> ConvTranspose2d to C.
class ImageConvDecoderImpl : public ImageDecoderImpl {
 public:
  ImageConvDecoderImpl(const ModalityConfig& config, std::int64_t latent_dim,
                       ImageLikelihood likelihood);
  torch::Tensor output(const torch::Tensor& z) override;

 private:
  std::int64_t base_channels_ = 0;  // (2^(n-1))c
  std::int64_t base_h_ = 0, base_w_ = 0;
  torch::nn::Sequential fc_{nullptr};
  torch::nn::Sequential deconv_{nullptr};
};

// ---- Text -------------------------------------------------------------------------------

// Lengths of right-padded id rows: `lengths` when defined, else the count of non-pad ids.
torch::Tensor sequence_lengths(const ModalityInput& input);

// ids [B,L] -> Embedding(V,E,padding_idx 0) -> a forward GRU over the ids and a second GRU over
// each sequence reversed within its length -> both states after the last real token ->
// Linear+ReLU to hidden.back(). Padding never reaches those states.
class TextGruEncoderImpl : public FeatureEncoderImpl {
 public:
  explicit TextGruEncoderImpl(const ModalityConfig& config);
  torch::Tensor forward(const ModalityInput& input) override;
  std::int64_t out_features() const override { return out_features_; }

 private:
  std::string name_;
  std::int64_t vocab_size_ = 0;
  std::int64_t out_features_ = 0;
  torch::nn::Embedding embedding_{nullptr};
  // Two unidirectional GRUs instead of one bidirectional GRU over a packed sequence: LibTorch
  // 1.13's packed-sequence backward on CPU was ~15x slower than this (0.7 s vs 0.05 s for a
  // batch of 100 captions). The backward GRU reads each sequence reversed within its length.
  torch::nn::GRU gru_forward_{nullptr};
  torch::nn::GRU gru_backward_{nullptr};
  torch::nn::Linear fc_{nullptr};
};

// Text convolution taps: each position's features next to those `dilation` positions before
// and after it (zeros beyond the row's ends), [B,T,C] -> [B,T,3C]; causal: the two before it
// instead. A Linear over the taps is a width-3 Conv1d computed as one GEMM over all B*T
// positions (forward and backward), which is what makes the conv text networks fast on CPU.
torch::Tensor text_conv_taps(const torch::Tensor& x, std::int64_t dilation, bool causal);

// ids [B,L] -> Embedding(V,E,padding_idx 0) -> a width-3 convolution (E -> C, C = rnn_hidden)
// + ReLU -> a residual width-3 convolution of dilation 2 (C -> C) + ReLU, padded positions
// zeroed after each layer -> mean and max over the real positions [2C] -> Linear+ReLU to
// hidden.back(). Each layer is a Linear over text_conv_taps. Every position sees 7 tokens
// around it; no recurrence, so a batch is a few large GEMMs. Padding never changes the output.
class TextConvEncoderImpl : public FeatureEncoderImpl {
 public:
  explicit TextConvEncoderImpl(const ModalityConfig& config);
  torch::Tensor forward(const ModalityInput& input) override;
  std::int64_t out_features() const override { return out_features_; }

 private:
  std::string name_;
  std::int64_t vocab_size_ = 0;
  std::int64_t out_features_ = 0;
  torch::nn::Embedding embedding_{nullptr};
  torch::nn::Linear conv0_{nullptr}, conv1_{nullptr};
  torch::nn::Linear fc_{nullptr};
};

// An autoregressive categorical decoder p(w|z) = prod_t p(w_t | w_<t, z). Sequences are
// BOS ... EOS right-padded with 0; generated sequences have the same format, are at most
// max_length ids long (BOS and EOS included), and never contain pad or BOS after position 0.
// Greedy decoding and beam search are shared; a concrete decoder defines one step over its
// own per-row state.
class TextDecoderImpl : public DecoderImpl {
 public:
  explicit TextDecoderImpl(const ModalityConfig& config);
  // Teacher forcing: sum over t in [1, length) of log p(w_t | w_<t, z), every position at once;
  // [B].
  torch::Tensor log_likelihood(const torch::Tensor& z, const ModalityInput& target) override;
  // Greedy decoding, [B,L'] int64.
  torch::Tensor mean(const torch::Tensor& z) override;
  torch::Tensor greedy(const torch::Tensor& z) { return mean(z); }
  // Beam search; returns the best hypothesis per row, [B,L'] int64. Hypotheses are ranked by
  // sum of log-probs / lp(n) with the GNMT penalty lp(n) = ((5 + n) / 6)^length_penalty,
  // n = generated tokens (EOS included, BOS not); 0 ranks by raw log-probability.
  // beam_width 1 equals greedy decoding.
  torch::Tensor beam_search(const torch::Tensor& z, std::int64_t beam_width,
                            double length_penalty = 0.0);

  // log p(target | z) as decoding computes it, one step() per token (no gradient): equals
  // log_likelihood, which runs teacher forcing over all positions at once. [B].
  torch::Tensor log_likelihood_stepwise(const torch::Tensor& z, const ModalityInput& target);

  std::int64_t vocab_size() const { return vocab_size_; }
  std::int64_t max_length() const { return max_length_; }

 protected:
  // The decoding state of rows z [N,D] before BOS is read.
  virtual torch::Tensor start_state(const torch::Tensor& z) = 0;
  // One token: the previous ids [N], z [N,D] and the state -> (log-probs [N,V], next state).
  virtual std::tuple<torch::Tensor, torch::Tensor> step(const torch::Tensor& prev,
                                                        const torch::Tensor& z,
                                                        const torch::Tensor& state) = 0;
  // The state of the rows `rows` [N'] (beam search reorders its hypotheses).
  virtual torch::Tensor select_rows(const torch::Tensor& state, const torch::Tensor& rows) = 0;
  // Teacher forcing's hidden features [B,T,H]: position t has read inputs[:, :t+1] (ids, BOS
  // first) and predicts id t+1; row b's positions from lengths[b] - 1 on are never read.
  virtual torch::Tensor position_features(const torch::Tensor& inputs, const torch::Tensor& lengths,
                                          const torch::Tensor& z) = 0;
  // The vocabulary layer: hidden features [N,H] -> logits [N,V].
  virtual torch::Tensor vocabulary(const torch::Tensor& hidden) = 0;

  std::string name_;
  std::int64_t vocab_size_ = 0;
  std::int64_t max_length_ = 0;
};

// h_0 = tanh(Linear(z)); input at step t = [embedding(w_{t-1}), z]; a GRU; logits = Linear(h_t).
// State: the GRU's hidden state [1,N,H].
class TextGruDecoderImpl : public TextDecoderImpl {
 public:
  TextGruDecoderImpl(const ModalityConfig& config, std::int64_t latent_dim);

 protected:
  torch::Tensor start_state(const torch::Tensor& z) override;
  std::tuple<torch::Tensor, torch::Tensor> step(const torch::Tensor& prev, const torch::Tensor& z,
                                                const torch::Tensor& h) override;
  torch::Tensor select_rows(const torch::Tensor& h, const torch::Tensor& rows) override;
  torch::Tensor position_features(const torch::Tensor& inputs, const torch::Tensor& lengths,
                                  const torch::Tensor& z) override;
  torch::Tensor vocabulary(const torch::Tensor& hidden) override { return out_->forward(hidden); }

 private:
  torch::nn::Embedding embedding_{nullptr};
  torch::nn::Linear init_{nullptr};
  torch::nn::GRU gru_{nullptr};
  torch::nn::Linear out_{nullptr};
};

// A causal convolution decoder (the teacher-forced pass runs over all positions at once):
// position t reads embedding(w_t) (w_0 = BOS) -> causal width-3 convolution (E -> C,
// C = rnn_hidden) + Linear(z) + ReLU -> two residual causal width-3 convolutions of dilation 2
// and 4 (C -> C) + ReLU -> logits of w_{t+1} = Linear(C -> V). Each position sees the 15 ids up
// to it (Oord et al. 2016's dilated causal convolutions, WaveNet) and z. State while decoding:
// the ids read so far [N,t]; each step recomputes the last 15 positions.
class TextConvDecoderImpl : public TextDecoderImpl {
 public:
  TextConvDecoderImpl(const ModalityConfig& config, std::int64_t latent_dim);

  static constexpr std::int64_t kReceptiveField = 15;  // 1 + 2 * (1 + 2 + 4)

 protected:
  torch::Tensor start_state(const torch::Tensor& z) override;
  std::tuple<torch::Tensor, torch::Tensor> step(const torch::Tensor& prev, const torch::Tensor& z,
                                                const torch::Tensor& ids) override;
  torch::Tensor select_rows(const torch::Tensor& ids, const torch::Tensor& rows) override;
  torch::Tensor position_features(const torch::Tensor& inputs, const torch::Tensor& lengths,
                                  const torch::Tensor& z) override;
  torch::Tensor vocabulary(const torch::Tensor& hidden) override { return out_->forward(hidden); }

 private:
  // Hidden features of every position of ids [N,T] under z [N,D]: [N,T,C].
  torch::Tensor features(const torch::Tensor& ids, const torch::Tensor& z);

  torch::nn::Embedding embedding_{nullptr};
  torch::nn::Linear latent_{nullptr};
  torch::nn::Linear conv0_{nullptr}, conv1_{nullptr}, conv2_{nullptr};
  torch::nn::Linear out_{nullptr};
};

// ---- Labels and attributes ------------------------------------------------------------

// Class index [B] -> one-hot(classes) -> Linear+ReLU per hidden.
class LabelEncoderImpl : public FeatureEncoderImpl {
 public:
  explicit LabelEncoderImpl(const ModalityConfig& config);
  torch::Tensor forward(const ModalityInput& input) override;
  std::int64_t out_features() const override { return out_features_; }

 private:
  std::string name_;
  std::int64_t classes_ = 0;
  std::int64_t out_features_ = 0;
  torch::nn::Sequential layers_{nullptr};
};

// z -> Linear+ReLU per reversed hidden -> Linear to classes logits; categorical likelihood;
// mean = softmax probabilities [B,classes].
class LabelDecoderImpl : public DecoderImpl {
 public:
  LabelDecoderImpl(const ModalityConfig& config, std::int64_t latent_dim);
  torch::Tensor logits(const torch::Tensor& z);
  torch::Tensor log_likelihood(const torch::Tensor& z, const ModalityInput& target) override;
  torch::Tensor mean(const torch::Tensor& z) override;

 private:
  std::string name_;
  std::int64_t classes_ = 0;
  torch::nn::Sequential layers_{nullptr};
  torch::nn::Linear out_{nullptr};
};

// 0/1 vector [B,A] -> Linear+ReLU per hidden.
class AttributeEncoderImpl : public FeatureEncoderImpl {
 public:
  explicit AttributeEncoderImpl(const ModalityConfig& config);
  torch::Tensor forward(const ModalityInput& input) override;
  std::int64_t out_features() const override { return out_features_; }

 private:
  std::string name_;
  std::int64_t count_ = 0;
  std::int64_t out_features_ = 0;
  torch::nn::Sequential layers_{nullptr};
};

// z -> Linear+ReLU per reversed hidden -> Linear to A logits; Bernoulli likelihood summed over
// attributes; mean = sigmoid probabilities [B,A].
class AttributeDecoderImpl : public DecoderImpl {
 public:
  AttributeDecoderImpl(const ModalityConfig& config, std::int64_t latent_dim);
  torch::Tensor logits(const torch::Tensor& z);
  torch::Tensor log_likelihood(const torch::Tensor& z, const ModalityInput& target) override;
  torch::Tensor mean(const torch::Tensor& z) override;

 private:
  std::string name_;
  std::int64_t count_ = 0;
  torch::nn::Sequential layers_{nullptr};
  torch::nn::Linear out_{nullptr};
};

}  // namespace mmkt::models
