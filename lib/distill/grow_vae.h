// Antidistillation for a whole multimodal VAE: a trained small JMVAE / MVAE / MMVAE grows into
// a wider one computing the same posteriors and likelihoods (Net2WiderNet, distill/net2net.h),
// so that training the wide model starts where the small one ended (`train.init_from`).
//
// What grows: every MLP of the model, i.e. the hidden widths of MLP-family modalities (image
// "mlp" encoders and decoders, labels, attributes) in the unimodal encoders, the joint
// encoder's per-modality branches and the decoders, and the joint head's hidden widths
// (model.joint_hidden). Each hidden layer's units are copied (source) and every consumer's
// input columns scaled by the copies' shares, including the blocks of the joint head's
// concatenated input and the Gaussian heads. Everything else (latent size, modality set,
// conv and text networks, learned likelihood scales) must be the same in both models and is
// copied as it is; the layer count of every MLP must match (no deepening here).
#pragma once

#include <cstdint>

#include "mmkt/models/multimodal_vae.h"

namespace mmkt::distill {

// A model of `large_config` computing what `small` computes (every encoder's Gaussian, the
// joint posterior, every decoder's likelihood) up to float rounding. InputError, naming the
// parameter, when `large_config` cannot hold `small` (another type, latent size or modality
// set; a narrower or shallower MLP; a non-MLP network of another size). `seed` draws the
// copies and their shares. The new model is on the CPU.
models::MultimodalVae grow_multimodal_vae(models::MultimodalVae& small,
                                          const models::ModelConfig& large_config,
                                          std::uint64_t seed);

}  // namespace mmkt::distill
