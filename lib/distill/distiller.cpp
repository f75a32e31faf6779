#include "mmkt/distill/distiller.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/core/progress.h"
#include "mmkt/core/random.h"
#include "mmkt/core/runtime.h"
#include "mmkt/core/strings.h"
#include "mmkt/distill/losses.h"

namespace mmkt::distill {

const std::vector<std::string>& distill_terms() {
  static const std::vector<std::string> terms = {"ce",  "kd",  "gd",    "hint",
                                                 "pkt", "vid", "bayes", "mse"};
  return terms;
}

namespace {

MethodWeights preset(const std::string& name) {
  if (name == "baseline") return {{"ce", 1.0}};
  if (name == "kd") return {{"kd", 0.9}, {"ce", 0.1}};
  if (name == "gd") return {{"gd", 0.9}, {"ce", 0.1}};
  if (name == "hint" || name == "pkt" || name == "vid" || name == "bayes" || name == "mse")
    return {{name, 1.0}};
  fail_input(
      "distillation method '", name,
      "' (expected baseline, kd, gd, hint, pkt, vid, bayes, mse, a sum such as pkt+bayes, or "
      "weights such as pkt=1,bayes=0.1)");
}

}  // namespace

MethodWeights parse_method(const std::string& method) {
  MMKT_CHECK_INPUT(!method.empty(), "empty distillation method");
  MethodWeights w;
  if (method.find('=') != std::string::npos) {
    for (const auto& item : split(method, ',')) {
      const auto eq = item.find('=');
      MMKT_CHECK_INPUT(eq != std::string::npos, "distillation weights '", method, "': '", item,
                       "' is not TERM=WEIGHT");
      const auto term = item.substr(0, eq);
      MMKT_CHECK_INPUT(
          std::find(distill_terms().begin(), distill_terms().end(), term) != distill_terms().end(),
          "distillation weights '", method, "': unknown term '", term,
          "' (expected ce, kd, gd, hint, pkt, vid, bayes, mse)");
      double v = 0;
      std::size_t used = 0;
      try {
        v = std::stod(item.substr(eq + 1), &used);
      } catch (const std::exception&) {
        used = 0;
      }
      MMKT_CHECK_INPUT(used > 0 && used == item.size() - eq - 1 && std::isfinite(v) && v > 0,
                       "distillation weights '", method, "': the weight of '", term,
                       "' must be a positive number");
      w[term] += v;
    }
  } else {
    for (const auto& name : split(method, '+')) {
      for (const auto& [term, v] : preset(name)) w[term] += v;
    }
  }
  return w;
}

bool uses_teacher(const MethodWeights& weights) {
  for (const auto& [term, v] : weights) {
    if (term != "ce" && v > 0) return true;
  }
  return false;
}

DistillHeadsImpl::DistillHeadsImpl(std::int64_t latent_dim, std::int64_t teacher_features) {
  projection = register_module("projection", torch::nn::Linear(latent_dim, teacher_features));
  const std::int64_t hidden = std::max<std::int64_t>(2 * latent_dim, 128);
  regressor = register_module(
      "regressor", torch::nn::Sequential(torch::nn::Linear(latent_dim, hidden), torch::nn::ReLU(),
                                         torch::nn::Linear(hidden, teacher_features)));
  // RepDistiller's init_pred_var = 5: softplus(alpha) + 1e-5 = 5 at the start.
  alpha = register_parameter("alpha",
                             torch::full({teacher_features}, std::log(std::exp(5.0 - 1e-5) - 1.0)));
}

StepLoss distill_loss(Student& student, DistillHeads& heads, const TransferSet& t,
                      const torch::Tensor& rows, const MethodWeights& weights,
                      const TrainOptions& o, const torch::Device& device) {
  const auto x = select_rows(t.input, rows).to(device);
  const auto q = student->encode(x);
  const auto& target = o.target == "unimodal" ? t.unimodal : t.joint;
  auto on = [&](const torch::Tensor& all) { return all.index_select(0, rows).to(device); };
  StepLoss out;
  out.loss = torch::zeros({}, q.mu.options());
  for (const auto& [term, weight] : weights) {
    torch::Tensor value;
    if (term == "ce") {
      value = torch::nn::functional::cross_entropy(student->logits(q.mu), on(t.labels));
    } else if (term == "kd") {
      value = hinton_kd(student->logits(q.mu), on(t.logits_unimodal), o.temperature);
    } else if (term == "gd") {
      value = hinton_kd(student->logits(q.mu), on(t.logits_joint), o.temperature);
    } else if (term == "hint") {
      value = hint_loss(heads->projection->forward(q.mu), on(t.features));
    } else if (term == "pkt") {
      value = pkt_loss(q.mu, on(target.mu));
    } else if (term == "vid") {
      value = vid_loss(heads->regressor->forward(q.mu), heads->alpha, on(t.features));
    } else if (term == "mse") {
      value = latent_mse(q.mu, on(target.mu));
    } else if (term == "bayes") {
      value = bayesian_kl(q, models::Gaussian{on(target.mu), on(target.logvar)});
    } else {
      fail_input("unknown distillation term '", term, "'");
    }
    out.loss = out.loss + weight * value;
    out.terms[term] = value.item<double>();
  }
  out.terms["loss"] = out.loss.item<double>();
  return out;
}

nlohmann::json train_student(Student& student, const TransferSet& t, const MethodWeights& weights,
                             const TrainOptions& o, const torch::Device& device) {
  MMKT_CHECK_INPUT(t.size() > 0, "the transfer set is empty");
  MMKT_CHECK_INPUT(o.target == "joint" || o.target == "unimodal", "distillation target '", o.target,
                   "' (expected joint or unimodal)");
  MMKT_CHECK_INPUT(o.epochs > 0 && o.batch_size > 1,
                   "distillation needs epochs > 0 and batch size > 1");
  MMKT_CHECK_INPUT(!weights.empty(), "no distillation term");
  DistillHeads heads(student->spec().latent_dim, t.features.size(1));
  student->to(device);
  heads->to(device);
  student->train();
  std::vector<torch::Tensor> params = student->parameters();
  for (const auto& p : heads->parameters()) params.push_back(p);
  torch::optim::Adam optimizer(params, torch::optim::AdamOptions(o.lr));

  if (!o.log_path.empty()) std::filesystem::remove(o.log_path);  // this run's epochs only
  const std::int64_t n = t.size();
  const std::int64_t steps_per_epoch =
      n / o.batch_size;  // drop the last partial batch (PKT needs pairs)
  MMKT_CHECK_INPUT(steps_per_epoch > 0, "the transfer set (", n,
                   " items) is smaller than a batch (", o.batch_size, ")");
  LoopProgress progress("distill epoch", o.epochs, steps_per_epoch, o.progress_seconds, "items/s");
  std::int64_t step = 0;
  nlohmann::json final_terms;
  for (std::int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
    SplitMix rng(derive_seed(o.seed, "distill-shuffle-" + std::to_string(epoch)));
    rng.shuffle(order);
    const auto order_t = torch::tensor(order, torch::kInt64);
    std::map<std::string, double> sums;
    progress.start_epoch(epoch);
    for (std::int64_t k = 0; k < steps_per_epoch; ++k) {
      const auto rows = order_t.narrow(0, k * o.batch_size, o.batch_size);
      optimizer.zero_grad();
      auto s = distill_loss(student, heads, t, rows, weights, o, device);
      check_finite_loss(
          s.terms["loss"],
          "distillation epoch " + std::to_string(epoch + 1) + " step " + std::to_string(k + 1), "",
          "lower --lr");
      s.loss.backward();
      optimizer.step();
      ++step;
      for (const auto& [name, v] : s.terms) sums[name] += v;
      std::ostringstream details;
      details << std::setprecision(5) << "loss " << sums["loss"] / static_cast<double>(k + 1);
      progress.step(k, (k + 1) * o.batch_size, details.str());
    }
    nlohmann::json row{{"epoch", epoch + 1}, {"step", step}};
    for (const auto& [name, v] : sums) row[name] = v / static_cast<double>(steps_per_epoch);
    row["seconds"] = progress.seconds();
    if (!o.log_path.empty()) append_jsonl(o.log_path, row);
    final_terms = row;
  }
  student->eval();
  const double seconds = progress.seconds();
  return {{"epochs", o.epochs},
          {"steps", step},
          {"batch_size", o.batch_size},
          {"seconds", seconds},
          {"items_per_second", static_cast<double>(step * o.batch_size) / seconds},
          {"final", final_terms}};
}

}  // namespace mmkt::distill
