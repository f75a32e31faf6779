#include "mmkt/models/fused_gru.h"

#include <atomic>
#include <cstring>

#include <ATen/Parallel.h>

#include "mmkt/core/error.h"
#include "mmkt/models/gru_kernels.h"

namespace mmkt::models {
namespace {

std::atomic<bool> g_fused_enabled{true};

// Rows per parallel chunk of the gate loops: a step has B x H gates (12,800 for a batch of 100
// and H = 128), a few microseconds of work per row.
constexpr std::int64_t kRowGrain = 16;

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The packed layout of PackedSequence: rows sorted by length, longest first (stable, so the
// result is deterministic), step t holds the first active[t] of them (those with length > t),
// and step t's rows sit at packed rows offset[t] .. offset[t] + active[t].
struct Packing {
  std::int64_t batch = 0, steps = 0, total = 0;
  std::vector<std::int64_t> perm;    // sorted position i -> original row
  std::vector<std::int64_t> length;  // sorted position i -> its length
  std::vector<std::int64_t> active, offset;
  torch::Tensor perm_tensor, inverse_tensor;  // int64 [B]: sorted -> original, original -> sorted
  torch::Tensor rows;                         // int64 [N]: packed row -> b * T + t

  Packing(const torch::Tensor& lengths, std::int64_t steps_)
      : batch(lengths.size(0)), steps(steps_) {
    const auto lengths_cpu = lengths.to(torch::kCPU, torch::kLong).contiguous();
    perm_tensor = std::get<1>(lengths_cpu.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
    const auto* len = lengths_cpu.data_ptr<std::int64_t>();
    const auto* p = perm_tensor.data_ptr<std::int64_t>();
    perm.assign(p, p + batch);
    for (const auto b : perm) length.push_back(len[b]);
    inverse_tensor = torch::empty_like(perm_tensor);
    auto* inv = inverse_tensor.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < batch; ++i) inv[perm[i]] = i;
    for (std::int64_t t = 0; t < steps; ++t) {
      std::int64_t n = 0;
      while (n < batch && length[n] > t) ++n;
      offset.push_back(total);
      active.push_back(n);
      total += n;
    }
    rows = torch::empty({total}, torch::kLong);
    auto* r = rows.data_ptr<std::int64_t>();
    for (std::int64_t t = 0; t < steps; ++t) {
      for (std::int64_t i = 0; i < active[t]; ++i) r[offset[t] + i] = perm[i] * steps + t;
    }
  }
};

float* row_ptr(torch::Tensor& t, std::int64_t row) { return t.data_ptr<float>() + row * t.size(1); }
const float* row_ptr(const torch::Tensor& t, std::int64_t row) {
  return t.data_ptr<float>() + row * t.size(1);
}

// Inputs: x [B,T,I], h0 [B,H], w_ih [3H,I], w_hh [3H,H], b_ih [3H], b_hh [3H], lengths [B].
// Outputs: output [B,T,H], last [B,H].
class FusedGruFunction : public torch::autograd::Function<FusedGruFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& h0, const torch::Tensor& w_ih,
                               const torch::Tensor& w_hh, const torch::Tensor& b_ih,
                               const torch::Tensor& b_hh, const torch::Tensor& lengths) {
    const auto batch = x.size(0), steps = x.size(1), inputs = x.size(2), hidden = w_hh.size(1);
    const Packing pk(lengths, steps);
    const auto n_total = pk.total;
    // The input projection of every real position in one GEMM: [N,3H] (padding is skipped).
    const auto x_packed = x.reshape({batch * steps, inputs}).index_select(0, pk.rows);
    const auto gi = torch::linear(x_packed, w_ih, b_ih);
    const auto h0_sorted = h0.index_select(0, pk.perm_tensor);
    // h_{t-1} and h_t of every packed row, and the gates for the backward pass.
    auto h_prev = torch::empty({n_total, hidden}, x.options());
    auto h_out = torch::empty({n_total, hidden}, x.options());
    auto saved = torch::empty({n_total, 4 * hidden}, x.options());
    auto gh = torch::empty({batch, 3 * hidden}, x.options());
    const auto w_hh_t = w_hh.t();
    for (std::int64_t t = 0; t < steps; ++t) {
      const auto n = pk.active[t], off = pk.offset[t];
      if (n == 0) break;  // sorted: no row is active later either
      // Step t's active rows are a prefix of step t-1's, so h_{t-1} is a prefix of that block.
      const float* prev = t == 0 ? h0_sorted.data_ptr<float>() : row_ptr(h_out, pk.offset[t - 1]);
      std::memcpy(row_ptr(h_prev, off), prev, sizeof(float) * n * hidden);
      auto gh_n = gh.narrow(0, 0, n);
      torch::addmm_out(gh_n, b_hh, h_prev.narrow(0, off, n), w_hh_t);
      const float* gi_p = row_ptr(gi, off);
      const float* gh_p = gh_n.data_ptr<float>();
      const float* hp = row_ptr(h_prev, off);
      float* ho = row_ptr(h_out, off);
      float* sp = row_ptr(saved, off);
      at::parallel_for(0, n, kRowGrain, [&](std::int64_t begin, std::int64_t end) {
        gru_kernels::forward_rows(gi_p, gh_p, hp, ho, sp, begin, end, hidden);
      });
    }
    // output [B,T,H] with zeros at padding; last: row i's state at step length-1 (h0 if 0).
    auto output = torch::zeros({batch * steps, hidden}, x.options());
    output.index_copy_(0, pk.rows, h_out);
    auto last_sorted = torch::empty({batch, hidden}, x.options());
    for (std::int64_t i = 0; i < batch; ++i) {
      const auto len = pk.length[i];
      const float* src = len == 0 ? row_ptr(h0_sorted, i) : row_ptr(h_out, pk.offset[len - 1] + i);
      std::memcpy(row_ptr(last_sorted, i), src, sizeof(float) * hidden);
    }
    auto last = last_sorted.index_select(0, pk.inverse_tensor);

    ctx->save_for_backward({x_packed, w_ih, w_hh});
    ctx->saved_data["h_prev"] = h_prev;
    ctx->saved_data["saved"] = saved;
    ctx->saved_data["perm"] = pk.perm_tensor;
    ctx->saved_data["inverse"] = pk.inverse_tensor;
    ctx->saved_data["rows"] = pk.rows;
    ctx->saved_data["active"] = pk.active;
    ctx->saved_data["offset"] = pk.offset;
    ctx->saved_data["x_sizes"] = x.sizes().vec();
    return {output.view({batch, steps, hidden}), last};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved_vars = ctx->get_saved_variables();
    const auto& x_packed = saved_vars[0];
    const auto& w_ih = saved_vars[1];
    const auto& w_hh = saved_vars[2];
    const auto h_prev = ctx->saved_data["h_prev"].toTensor();
    const auto saved = ctx->saved_data["saved"].toTensor();
    const auto perm = ctx->saved_data["perm"].toTensor();
    const auto inverse = ctx->saved_data["inverse"].toTensor();
    const auto rows = ctx->saved_data["rows"].toTensor();
    const auto active = ctx->saved_data["active"].toIntVector();
    const auto offset = ctx->saved_data["offset"].toIntVector();
    const auto x_sizes = ctx->saved_data["x_sizes"].toIntVector();
    const auto batch = x_sizes[0], steps = x_sizes[1], inputs = x_sizes[2];
    const auto hidden = w_hh.size(1);
    const auto n_total = x_packed.size(0);
    const auto options = x_packed.options();

    // dL/dh carried backwards over the sorted rows, starting from dL/dlast.
    auto dh = grads[1].defined() ? grads[1].index_select(0, perm).contiguous()
                                 : torch::zeros({batch, hidden}, options);
    torch::Tensor d_out;  // dL/doutput at the packed rows (padding never reaches the loss)
    if (grads[0].defined()) {
      d_out = grads[0].reshape({batch * steps, hidden}).index_select(0, rows);
    }
    auto dgi = torch::empty({n_total, 3 * hidden}, options);
    auto dgh = torch::empty({n_total, 3 * hidden}, options);
    for (std::int64_t t = steps - 1; t >= 0; --t) {
      const auto n = active[t], off = offset[t];
      if (n == 0) continue;
      auto dh_n = dh.narrow(0, 0, n);
      if (d_out.defined()) dh_n.add_(d_out.narrow(0, off, n));
      float* dh_p = dh_n.data_ptr<float>();
      const float* hp = row_ptr(h_prev, off);
      const float* sp = row_ptr(saved, off);
      float* dgi_p = row_ptr(dgi, off);
      float* dgh_p = row_ptr(dgh, off);
      at::parallel_for(0, n, kRowGrain, [&](std::int64_t begin, std::int64_t end) {
        gru_kernels::backward_rows(dh_p, hp, sp, dgi_p, dgh_p, begin, end, hidden);
      });
      dh_n.addmm_(dgh.narrow(0, off, n), w_hh);  // + (dL/dgh) W_h
    }
    // Weight gradients over every packed row at once.
    const auto d_w_hh = dgh.t().mm(h_prev);
    const auto d_b_hh = dgh.sum(0);
    const auto d_w_ih = dgi.t().mm(x_packed);
    const auto d_b_ih = dgi.sum(0);
    const auto d_x_packed = dgi.mm(w_ih);  // [N,I]
    auto d_x = torch::zeros({batch * steps, inputs}, options);
    d_x.index_copy_(0, rows, d_x_packed);
    const auto d_h0 = dh.index_select(0, inverse);
    return {
        d_x.view({batch, steps, inputs}), d_h0, d_w_ih, d_w_hh, d_b_ih, d_b_hh, torch::Tensor()};
  }
};

torch::Tensor positions_before(const torch::Tensor& lengths, std::int64_t steps,
                               const torch::TensorOptions& options) {
  const auto pos = torch::arange(steps, lengths.options()).unsqueeze(0);
  return (pos < lengths.unsqueeze(1)).to(options).unsqueeze(2);  // [B,T,1]
}

}  // namespace

void set_fused_gru_enabled(bool enabled) { g_fused_enabled = enabled; }
bool fused_gru_enabled() { return g_fused_enabled; }

GruSequence gru_sequence(torch::nn::GRU& gru, const torch::Tensor& x, const torch::Tensor& lengths,
                         const torch::Tensor& h0) {
  const auto& opt = gru->options;
  MMKT_CHECK(opt.num_layers() == 1 && !opt.bidirectional() && opt.bias(),
             "gru_sequence: a one-layer unidirectional GRU with biases");
  MMKT_CHECK(x.dim() == 3 && x.size(2) == opt.input_size(), "gru_sequence: x must be [B,T,",
             opt.input_size(), "], got ", x.sizes());
  MMKT_CHECK(lengths.dim() == 1 && lengths.size(0) == x.size(0), "gru_sequence: lengths must be [",
             x.size(0), "], got ", lengths.sizes());
  const auto batch = x.size(0), steps = x.size(1), hidden = opt.hidden_size();
  const auto state0 = h0.defined() ? h0 : torch::zeros({batch, hidden}, x.options());
  MMKT_CHECK(state0.dim() == 2 && state0.size(0) == batch && state0.size(1) == hidden,
             "gru_sequence: h0 must be [", batch, ",", hidden, "], got ", state0.sizes());
  const auto lengths_long = lengths.to(torch::kLong);
  if (batch > 0) {
    MMKT_CHECK(lengths_long.min().item<std::int64_t>() >= 0 &&
                   lengths_long.max().item<std::int64_t>() <= steps,
               "gru_sequence: lengths must lie in [0, ", steps, "]");
  }
  const auto params = gru->named_parameters();
  const auto& w_ih = params["weight_ih_l0"];
  const auto& w_hh = params["weight_hh_l0"];
  const auto& b_ih = params["bias_ih_l0"];
  const auto& b_hh = params["bias_hh_l0"];
  const bool fusable = g_fused_enabled && batch > 0 && steps > 0 && x.device().is_cpu() &&
                       x.scalar_type() == torch::kFloat32 && w_hh.scalar_type() == torch::kFloat32;
  if (fusable) {
    const auto out = FusedGruFunction::apply(x.contiguous(), state0.contiguous(), w_ih, w_hh, b_ih,
                                             b_hh, lengths_long);
    return {out[0], out[1]};
  }
  // The reference path: the module over every position, then the same masking and last states.
  if (steps == 0) return {torch::zeros({batch, 0, hidden}, x.options()), state0};
  const auto input = opt.batch_first() ? x : x.transpose(0, 1);
  auto out = std::get<0>(gru->forward(input, state0.unsqueeze(0)));
  if (!opt.batch_first()) out = out.transpose(0, 1);
  const auto mask = positions_before(lengths_long.to(x.device()), steps, out.options());
  // Row b's last state: output at length-1, or h0 when the length is 0.
  const auto index =
      (lengths_long.to(x.device()) - 1).clamp_min(0).view({batch, 1, 1}).expand({batch, 1, hidden});
  const auto gathered = out.gather(1, index).squeeze(1);
  const auto has_steps = (lengths_long.to(x.device()) > 0).unsqueeze(1);
  return {out * mask, torch::where(has_steps, gathered, state0)};
}

}  // namespace mmkt::models
