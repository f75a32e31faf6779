// Antidistillation: a trained small student seeds a larger one by function-preserving growth
// (Net2Net: Chen, Goodfellow and Shlens, "Net2Net: Accelerating Learning via Knowledge
// Transfer", ICLR 2016), so that the larger network starts where the small one ended and
// computes the same outputs.
//
// Net2WiderNet. A layer of n units grows to n' >= n: unit j of the wide layer copies unit
// source(j) (source(j) = j for j < n, a uniformly drawn unit otherwise), with its incoming
// weights and bias. Every consumer of the layer takes, for input j, the original weight of
// source(j) times share(j), where the shares of one unit's copies sum to 1. The copies compute
// identical activations, so every consumer's input is unchanged. The paper divides equally
// (share 1/count); equal shares keep copies identical forever under gradient descent, so
// here the shares are random positive fractions that sum to 1 (the outgoing weights then
// differ, and so do the copies' gradients): the function is still preserved exactly.
//
// Net2DeeperNet. A new hidden layer after a ReLU layer starts as the identity (W = I, b = 0):
// ReLU(I h) = h for h >= 0. It is then widened like any other layer.
//
// What grows (distill/student.h specs):
//   mlp:W1,..,Wk  -> mlp:V1,..,VK   K >= k, Vi >= Wi; layers k+1..K are identity layers of
//                                   width Wk, widened to Vi >= Wk
//   conv:C:W      -> conv:C':W'     C' >= C (every conv layer's channels c, 2c, 4c, 8c grow by
//                                   the same factor), W' >= W
//   gru:E:H:W     -> gru:E':H':W'   the embedding, both GRUs' hidden units (all three gates of a
//                                   unit copied together; the recurrent weights are the
//                                   consumer of the hidden layer) and the top layer
// The latent dimension and the class head stay as they are.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "mmkt/distill/student.h"

namespace mmkt::distill {

// A module's parameters by name (read from a trained model, written into a grown one), and one
// of them detached on the CPU (an internal Error when absent).
using ParameterMap = std::map<std::string, torch::Tensor>;
ParameterMap parameter_map(torch::nn::Module& m);
torch::Tensor parameter_at(const ParameterMap& params, const std::string& name);

// How one layer of `from` units becomes `to` units.
struct Widening {
  std::vector<std::int64_t> source;  // [to]: the unit each wide unit copies
  torch::Tensor share;               // [to] float: its share of the unit's outgoing weights
  std::int64_t from = 0, to = 0;
  static Widening identity(std::int64_t n);
};

// Copies 0..from-1, then units drawn uniformly; shares drawn uniformly in [0.25, 1] and
// normalised per original unit (a unit without copies keeps share 1).
Widening make_widening(std::int64_t from, std::int64_t to, torch::Generator& generator);

// `t` with dimension `dim` as the widened layer's units: index_select by source (the layer's
// own weights, biases, embeddings) or, for a consumer's inputs, also scaled by share.
torch::Tensor widen_units(const torch::Tensor& t, std::int64_t dim, const Widening& w);
torch::Tensor widen_inputs(const torch::Tensor& t, std::int64_t dim, const Widening& w);

// A student of `large` spec computing what `small` computes (features aside: they are the
// widened layer's units): encode()'s mean and log-variance and the class logits equal the small
// student's up to float rounding. InputError when `large` cannot hold `small` (another family,
// a narrower layer, fewer layers, another latent size or class count). `seed` draws the copies
// and their shares.
Student grow_student(Student& small, const StudentSpec& large, std::uint64_t seed);

}  // namespace mmkt::distill
