// Distillation losses, in the exact forms of their reference implementations (formulas
// and sources at each function below). Every loss returns a scalar averaged over the batch; the
// teacher's side is expected to be detached (the functions do not detach it, so tests can check
// gradients).
#pragma once

#include <torch/torch.h>

#include "mmkt/models/gaussian.h"

namespace mmkt::distill {

// Hinton, Vinyals & Dean 2015: T^2 * KL(softmax(t/T) || softmax(s/T)), summed over classes and
// averaged over the batch. The T^2 factor keeps the soft term's gradients on the scale of the
// hard-label term's when T changes (d/ds of the KL is (p_s - p_t)/T per logit).
// Generalized distillation (Lopez-Paz et al. 2016) is the same loss with a teacher that saw
// privileged information (here the text): only where the teacher logits come from differs.
torch::Tensor hinton_kd(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                        double temperature);

// PKT (Passalis & Tefas 2018, RepDistiller's PKT.cosine_similarity_loss): rows normalised as
// x / (||x|| + 1e-7); K = (X X^T + 1) / 2; P = K / rowsum(K) for teacher and student;
// loss = mean over i,j of P_t log((P_t + 1e-7) / (P_s + 1e-7)).
torch::Tensor pkt_loss(const torch::Tensor& student, const torch::Tensor& teacher);

// Hint / TinyBERT hidden loss: MSE(W h_s, h_t), mean over elements; `projected` is W h_s.
torch::Tensor hint_loss(const torch::Tensor& projected, const torch::Tensor& teacher);

// VID (Ahn et al. 2019): -log N(t | mu(s), diag sigma^2) with sigma^2 = softplus(alpha) + 1e-5
// per dimension, the full Gaussian density (0.5 log 2 pi included) summed over dimensions and
// averaged over the batch. mean [B,F], teacher [B,F], alpha [F].
torch::Tensor vid_loss(const torch::Tensor& mean, const torch::Tensor& alpha,
                       const torch::Tensor& teacher);

// Feature mimicry on the shared latent (CLIP-KD's feature distillation, Yang et al. 2024, which
// found it beats CRD and most alternatives for cross-modal students): ||mu_s - mu_t||^2 summed
// over latent dimensions and averaged over the batch. The student's latent is the teacher's
// space, so no projection is learned (unlike hint).
torch::Tensor latent_mse(const torch::Tensor& student_mu, const torch::Tensor& teacher_mu);

// Bayesian distillation (Grabovoy & Strijov 2021): the teacher's posterior replaces the N(0,I)
// prior of the student's posterior: KL(q_s(z|x) || q_t(z|x,w)), summed over latent dimensions
// and averaged over the batch.
torch::Tensor bayesian_kl(const models::Gaussian& student, const models::Gaussian& teacher);

}  // namespace mmkt::distill
