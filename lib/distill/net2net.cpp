#include "mmkt/distill/net2net.h"

#include <ATen/CPUGeneratorImpl.h>

#include <map>
#include <string>

#include "mmkt/core/error.h"

namespace mmkt::distill {
namespace {

void check_at_least(std::int64_t large, std::int64_t small, const std::string& what) {
  MMKT_CHECK_INPUT(large >= small, "cannot grow: the larger student's ", what, " (", large,
                   ") is smaller than the trained one's (", small, ")");
}

// A GRU weight or bias [3H, ...]: each gate block's rows are the hidden units.
torch::Tensor widen_gates(const torch::Tensor& t, const Widening& hidden) {
  std::vector<torch::Tensor> blocks;
  for (const auto& b : t.chunk(3, 0)) blocks.push_back(widen_units(b, 0, hidden));
  return torch::cat(blocks, 0);
}

}  // namespace

ParameterMap parameter_map(torch::nn::Module& m) {
  ParameterMap out;
  for (const auto& p : m.named_parameters()) out[p.key()] = p.value();
  return out;
}

torch::Tensor parameter_at(const ParameterMap& params, const std::string& name) {
  const auto it = params.find(name);
  MMKT_CHECK(it != params.end(), "growth: no parameter '", name, "'");
  return it->second.detach().cpu();
}

Widening Widening::identity(std::int64_t n) {
  Widening w;
  w.from = w.to = n;
  for (std::int64_t i = 0; i < n; ++i) w.source.push_back(i);
  w.share = torch::ones({n});
  return w;
}

Widening make_widening(std::int64_t from, std::int64_t to, torch::Generator& generator) {
  MMKT_CHECK(from > 0 && to >= from, "make_widening: ", from, " -> ", to);
  Widening w;
  w.from = from;
  w.to = to;
  for (std::int64_t i = 0; i < from; ++i) w.source.push_back(i);
  if (to > from) {
    const auto drawn = torch::randint(from, {to - from}, generator, torch::kLong);
    for (std::int64_t i = 0; i < to - from; ++i) w.source.push_back(drawn[i].item<std::int64_t>());
  }
  const auto raw = torch::rand({to}, generator, torch::kFloat64) * 0.75 + 0.25;
  auto total = torch::zeros({from}, torch::kFloat64);
  const auto index = torch::tensor(w.source, torch::kLong);
  total.index_add_(0, index, raw);
  w.share = (raw / total.index_select(0, index)).to(torch::kFloat32);
  return w;
}

torch::Tensor widen_units(const torch::Tensor& t, std::int64_t dim, const Widening& w) {
  MMKT_CHECK(t.size(dim) == w.from, "widen_units: dimension ", dim, " has ", t.size(dim),
             " units, the widening starts from ", w.from);
  return t.index_select(dim, torch::tensor(w.source, torch::kLong).to(t.device()));
}

torch::Tensor widen_inputs(const torch::Tensor& t, std::int64_t dim, const Widening& w) {
  auto shape = std::vector<std::int64_t>(static_cast<std::size_t>(t.dim()), 1);
  shape[static_cast<std::size_t>(dim)] = w.to;
  return widen_units(t, dim, w) * w.share.to(t.dtype()).to(t.device()).view(shape);
}

Student grow_student(Student& small, const StudentSpec& large_spec, std::uint64_t seed) {
  const auto& s = small->spec();
  const auto& l = large_spec;
  MMKT_CHECK_INPUT(s.modality.encoder == l.modality.encoder, "cannot grow a ", s.modality.encoder,
                   " student into a ", l.modality.encoder, " one");
  MMKT_CHECK_INPUT(s.latent_dim == l.latent_dim && s.classes == l.classes,
                   "cannot grow: latent size and class count must stay (", s.latent_dim, ", ",
                   s.classes, " vs ", l.latent_dim, ", ", l.classes, ")");
  auto generator = at::detail::createCPUGenerator(seed);
  const auto from = parameter_map(*small);
  const auto small_at = [&from](const std::string& name) { return parameter_at(from, name); };
  Student large(large_spec);
  std::map<std::string, torch::Tensor> to;  // the large student's values, by name
  Widening top = Widening::identity(1);     // the layer the Gaussian head reads

  const auto& enc = s.modality.encoder;
  if (enc == "mlp") {
    const auto& sw = s.modality.hidden;
    const auto& lw = l.modality.hidden;
    MMKT_CHECK_INPUT(lw.size() >= sw.size(), "cannot grow: the larger student has ", lw.size(),
                     " layers, the trained one ", sw.size());
    // Deepen: identity layers of the last width after the trained ones.
    std::vector<torch::Tensor> weights, biases;
    for (std::size_t i = 0; i < sw.size(); ++i) {
      weights.push_back(small_at("encoder.layers." + std::to_string(2 * i) + ".weight"));
      biases.push_back(small_at("encoder.layers." + std::to_string(2 * i) + ".bias"));
    }
    for (std::size_t i = sw.size(); i < lw.size(); ++i) {
      weights.push_back(torch::eye(sw.back()));
      biases.push_back(torch::zeros({sw.back()}));
    }
    Widening in = Widening::identity(weights[0].size(1));
    for (std::size_t i = 0; i < lw.size(); ++i) {
      const auto width = weights[i].size(0);
      check_at_least(lw[i], width, "layer " + std::to_string(i + 1) + " width");
      const auto out = make_widening(width, lw[i], generator);
      const auto name = "encoder.layers." + std::to_string(2 * i);
      to[name + ".weight"] = widen_inputs(widen_units(weights[i], 0, out), 1, in);
      to[name + ".bias"] = widen_units(biases[i], 0, out);
      in = out;
    }
    top = in;
  } else if (enc == "conv") {
    const auto c = s.modality.channels, lc = l.modality.channels;
    check_at_least(lc, c, "channels");
    Widening in = Widening::identity(s.modality.shape[0]);
    for (int i = 0; i < 4; ++i) {
      const auto out = make_widening(c << i, lc << i, generator);
      const auto name = "encoder.conv." + std::to_string(2 * i);
      to[name + ".weight"] = widen_inputs(widen_units(small_at(name + ".weight"), 0, out), 1, in);
      to[name + ".bias"] = widen_units(small_at(name + ".bias"), 0, out);
      in = out;
    }
    // fc reads the flattened [8c, H/16, W/16] maps: its columns are (channel, position).
    const auto fc = small_at("encoder.fc.weight");
    const auto width = fc.size(0);
    check_at_least(l.modality.hidden.back(), width, "top layer width");
    const auto fc_out = make_widening(width, l.modality.hidden.back(), generator);
    const auto maps = fc.view({width, in.from, -1});
    to["encoder.fc.weight"] =
        widen_inputs(widen_units(maps, 0, fc_out), 1, in).reshape({fc_out.to, -1});
    to["encoder.fc.bias"] = widen_units(small_at("encoder.fc.bias"), 0, fc_out);
    top = fc_out;
  } else if (enc == "gru") {
    const auto e = s.modality.embedding_dim, h = s.modality.rnn_hidden;
    check_at_least(l.modality.embedding_dim, e, "embedding size");
    check_at_least(l.modality.rnn_hidden, h, "GRU width");
    const auto emb = make_widening(e, l.modality.embedding_dim, generator);
    const auto hid = make_widening(h, l.modality.rnn_hidden, generator);
    to["encoder.embedding.weight"] = widen_units(small_at("encoder.embedding.weight"), 1, emb);
    for (const auto* gru : {"encoder.gru_forward.", "encoder.gru_backward."}) {
      const std::string g = gru;
      to[g + "weight_ih_l0"] = widen_inputs(widen_gates(small_at(g + "weight_ih_l0"), hid), 1, emb);
      to[g + "weight_hh_l0"] = widen_inputs(widen_gates(small_at(g + "weight_hh_l0"), hid), 1, hid);
      to[g + "bias_ih_l0"] = widen_gates(small_at(g + "bias_ih_l0"), hid);
      to[g + "bias_hh_l0"] = widen_gates(small_at(g + "bias_hh_l0"), hid);
    }
    // fc reads [h_forward, h_backward]: two copies of the hidden layer.
    const auto fc = small_at("encoder.fc.weight");
    const auto width = fc.size(0);
    check_at_least(l.modality.hidden.back(), width, "top layer width");
    const auto fc_out = make_widening(width, l.modality.hidden.back(), generator);
    to["encoder.fc.weight"] = widen_inputs(widen_units(fc.view({width, 2, h}), 0, fc_out), 2, hid)
                                  .reshape({fc_out.to, -1});
    to["encoder.fc.bias"] = widen_units(small_at("encoder.fc.bias"), 0, fc_out);
    top = fc_out;
  } else {
    fail_input("cannot grow a '", enc, "' student");
  }
  to["gaussian.weight"] = widen_inputs(small_at("gaussian.weight"), 1, top);
  to["gaussian.bias"] = small_at("gaussian.bias");
  if (s.classes > 0) {
    to["class_head.weight"] = small_at("class_head.weight");
    to["class_head.bias"] = small_at("class_head.bias");
  }

  torch::NoGradGuard no_grad;
  for (auto& p : large->named_parameters()) {
    const auto it = to.find(p.key());
    MMKT_CHECK(it != to.end(), "grow_student: no grown value for '", p.key(), "'");
    MMKT_CHECK(it->second.sizes() == p.value().sizes(), "grow_student: '", p.key(), "' grew to ",
               it->second.sizes(), ", the larger student has ", p.value().sizes());
    p.value().copy_(it->second);
  }
  const auto device = small->parameters().front().device();
  large->to(device);
  return large;
}

}  // namespace mmkt::distill
