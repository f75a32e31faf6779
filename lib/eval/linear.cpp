#include "mmkt/eval/linear.h"

#include "mmkt/core/error.h"

namespace mmkt::eval {

torch::Tensor LinearClassifier::logits(const torch::Tensor& x) const {
  const auto xs = (x.to(torch::kFloat32).to(weight.device()) - mean) / scale;
  return torch::addmm(bias, xs, weight.t());
}

torch::Tensor LinearClassifier::probabilities(const torch::Tensor& x) const {
  const auto l = logits(x);
  return kind == "softmax" ? torch::softmax(l, 1) : torch::sigmoid(l);
}

torch::Tensor LinearClassifier::predict(const torch::Tensor& x) const {
  MMKT_CHECK(kind == "softmax", "predict() needs a softmax classifier");
  return logits(x).argmax(1);
}

namespace {

LinearClassifier fit(const torch::Tensor& x, std::int64_t outputs, const std::string& kind,
                     const std::function<torch::Tensor(const torch::Tensor&)>& loss_of_logits,
                     const LinearFitOptions& o) {
  torch::NoGradGuard outer;
  MMKT_CHECK_INPUT(x.dim() == 2 && x.size(0) > 0,
                   "a linear classifier needs features [N,D] with N > 0, got ", x.sizes());
  LinearClassifier c;
  c.kind = kind;
  const auto xf = x.to(torch::kFloat32);
  c.mean = xf.mean(0);
  // Constant features keep scale 1 (no division by zero).
  c.scale = xf.std(0, /*unbiased=*/false);
  c.scale = torch::where(c.scale > 1e-8, c.scale, torch::ones_like(c.scale));
  const auto xs = (xf - c.mean) / c.scale;
  auto w = torch::zeros({outputs, x.size(1)}, xf.options()).requires_grad_(true);
  auto b = torch::zeros({outputs}, xf.options()).requires_grad_(true);
  torch::optim::LBFGS opt({w, b}, torch::optim::LBFGSOptions(1.0)
                                      .max_iter(o.iterations)
                                      .tolerance_grad(1e-6)
                                      .tolerance_change(1e-9)
                                      .history_size(20)
                                      .line_search_fn("strong_wolfe"));
  auto closure = [&] {
    torch::AutoGradMode grad(true);
    opt.zero_grad();
    auto loss = loss_of_logits(torch::addmm(b, xs, w.t())) + 0.5 * o.l2 * w.pow(2).sum();
    loss.backward();
    return loss;
  };
  {
    torch::AutoGradMode grad(true);
    opt.step(closure);
  }
  c.weight = w.detach();
  c.bias = b.detach();
  return c;
}

}  // namespace

LinearClassifier fit_softmax(const torch::Tensor& x, const torch::Tensor& labels,
                             std::int64_t classes, const LinearFitOptions& o) {
  MMKT_CHECK_INPUT(labels.dim() == 1 && labels.size(0) == x.size(0), "fit_softmax: ", x.size(0),
                   " feature rows but labels of shape ", labels.sizes());
  const auto y = labels.to(torch::kInt64);
  MMKT_CHECK_INPUT(
      y.numel() > 0 && y.min().item<std::int64_t>() >= 0 && y.max().item<std::int64_t>() < classes,
      "fit_softmax: labels must lie in [0, ", classes, ")");
  return fit(
      x, classes, "softmax",
      [&](const torch::Tensor& l) { return torch::nn::functional::cross_entropy(l, y); }, o);
}

LinearClassifier fit_sigmoid(const torch::Tensor& x, const torch::Tensor& targets,
                             const LinearFitOptions& o) {
  MMKT_CHECK_INPUT(targets.dim() == 2 && targets.size(0) == x.size(0), "fit_sigmoid: ", x.size(0),
                   " feature rows but targets of shape ", targets.sizes());
  const auto t = targets.to(torch::kFloat32);
  // Sum over targets, mean over rows: each target is its own logistic regression.
  return fit(
      x, targets.size(1), "sigmoid",
      [&](const torch::Tensor& l) {
        return torch::nn::functional::binary_cross_entropy_with_logits(
                   l, t,
                   torch::nn::functional::BinaryCrossEntropyWithLogitsFuncOptions().reduction(
                       torch::kNone))
            .sum(1)
            .mean();
      },
      o);
}

double accuracy(const torch::Tensor& predicted, const torch::Tensor& truth) {
  MMKT_CHECK(predicted.numel() == truth.numel() && truth.numel() > 0,
             "accuracy: ", predicted.numel(), " predictions for ", truth.numel(), " labels");
  return predicted.to(torch::kInt64)
      .cpu()
      .eq(truth.to(torch::kInt64).cpu())
      .to(torch::kFloat64)
      .mean()
      .item<double>();
}

}  // namespace mmkt::eval
