#include "mmkt/models/conv_transpose.h"

#include <atomic>

namespace mmkt::models {
namespace {

std::atomic<bool> g_enabled{true};

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// y = conv^T(x; W) as the input gradient of conv(.; W) (see the header).
class ConvTransposeByConvKernels
    : public torch::autograd::Function<ConvTransposeByConvKernels> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, std::vector<std::int64_t> stride,
                               std::vector<std::int64_t> padding) {
    // The output size of conv^T: (in - 1) * stride - 2 * padding + kernel.
    const std::vector<std::int64_t> out_shape = {
        x.size(0), weight.size(1),
        (x.size(2) - 1) * stride[0] - 2 * padding[0] + weight.size(2),
        (x.size(3) - 1) * stride[1] - 2 * padding[1] + weight.size(3)};
    // The convolution's "input" only lends its shape to the input gradient: a broadcast scalar
    // allocates nothing.
    const auto shape_only = torch::zeros({1}, x.options()).expand(out_shape);
    const std::vector<std::int64_t> dilation = {1, 1}, output_padding = {0, 0};
    const auto xc = x.contiguous();  // saved as it is used: the backward needs no second copy
    auto y = std::get<0>(at::convolution_backward(xc, shape_only, weight,
                                                  c10::nullopt, stride, padding, dilation,
                                                  /*transposed=*/false, output_padding,
                                                  /*groups=*/1, {true, false, false}));
    ctx->save_for_backward({xc, weight});
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& weight = saved[1];
    const auto stride = ctx->saved_data["stride"].toIntVector();
    const auto padding = ctx->saved_data["padding"].toIntVector();
    const auto grad_y = grads[0].contiguous();
    const std::vector<std::int64_t> dilation = {1, 1}, output_padding = {0, 0};
    torch::Tensor grad_x, grad_w;
    if (ctx->needs_input_grad(0)) {
      grad_x = at::convolution(grad_y, weight, c10::nullopt, stride, padding, dilation, false,
                               output_padding, 1);
    }
    if (ctx->needs_input_grad(1)) {
      // conv(grad_y; W) has output x's shape; its weight gradient for output gradient x.
      grad_w = std::get<1>(at::convolution_backward(x, grad_y, weight, c10::nullopt,
                                                    stride, padding, dilation, false,
                                                    output_padding, 1, {false, true, false}));
    }
    return {grad_x, grad_w, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

void set_fast_conv_transpose_enabled(bool enabled) { g_enabled = enabled; }
bool fast_conv_transpose_enabled() { return g_enabled; }

torch::Tensor conv_transpose2d(torch::nn::ConvTranspose2d& module, const torch::Tensor& x) {
  const auto& options = module->options;
  const bool supported = g_enabled && x.device().is_cpu() && x.scalar_type() == torch::kFloat &&
                         module->weight.scalar_type() == torch::kFloat && x.dim() == 4 &&
                         options.groups() == 1 && (*options.dilation())[0] == 1 &&
                         (*options.dilation())[1] == 1 && (*options.output_padding())[0] == 0 &&
                         (*options.output_padding())[1] == 0 &&
                         c10::get_if<torch::ExpandingArray<2>>(&options.padding()) != nullptr &&
                         c10::get_if<torch::enumtype::kZeros>(&options.padding_mode()) != nullptr;
  if (!supported) return module->forward(x);
  const auto& padding = c10::get<torch::ExpandingArray<2>>(options.padding());
  const std::vector<std::int64_t> stride = {(*options.stride())[0], (*options.stride())[1]};
  const std::vector<std::int64_t> pad = {(*padding)[0], (*padding)[1]};
  auto y = ConvTransposeByConvKernels::apply(x, module->weight, stride, pad);
  // The bias outside the node (autograd sums its gradient): an undefined tensor cannot be an
  // argument of a custom autograd function.
  return module->bias.defined() ? y + module->bias.view({1, -1, 1, 1}) : y;
}

}  // namespace mmkt::models
