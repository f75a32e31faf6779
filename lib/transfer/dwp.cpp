#include "mmkt/transfer/dwp.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <map>
#include <sstream>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/core/progress.h"
#include "mmkt/core/random.h"
#include "mmkt/data/labelled_images.h"
#include "mmkt/data/shapes.h"
#include "mmkt/distill/losses.h"
#include "mmkt/io/files.h"
#include "mmkt/io/json_config.h"
#include "mmkt/transfer/experiment.h"
#include "mmkt/transfer/kernel_vae.h"

namespace mmkt::transfer {

using nlohmann::json;

ConvNetImpl::ConvNetImpl(const ConvNetSpec& spec) : spec_(spec) {
  MMKT_CHECK_INPUT(!spec.channels.empty() && spec.kernel > 0 && spec.kernel % 2 == 1 &&
                       spec.image_shape.size() == 3 && spec.classes > 1,
                   "conv net: needs channels, an odd kernel size, an image shape {C,H,W} and "
                   ">= 2 classes");
  std::int64_t in = spec.image_shape[0], h = spec.image_shape[1], w = spec.image_shape[2];
  for (std::size_t l = 0; l < spec.channels.size(); ++l) {
    MMKT_CHECK_INPUT(spec.channels[l] > 0 && h >= 2 && w >= 2,
                     "conv net: too many pooling layers for ", spec.image_shape[1], "x",
                     spec.image_shape[2], " images");
    // torch's own Conv2d initialisation (Kaiming-uniform, a = sqrt 5).
    torch::nn::Conv2d init(torch::nn::Conv2dOptions(in, spec.channels[l], spec.kernel));
    weights_.push_back(
        register_parameter("conv" + std::to_string(l) + "_weight", init->weight.detach().clone()));
    biases_.push_back(
        register_parameter("conv" + std::to_string(l) + "_bias", init->bias.detach().clone()));
    in = spec.channels[l];
    h /= 2;
    w /= 2;
  }
  classifier_ = register_module("classifier", torch::nn::Linear(in * h * w, spec.classes));
}

torch::Tensor ConvNetImpl::forward(const torch::Tensor& x,
                                   const std::vector<torch::Tensor>& conv_weights) {
  auto h = x;
  for (std::size_t l = 0; l < weights_.size(); ++l) {
    const auto& w = conv_weights.empty() ? weights_[l] : conv_weights[l];
    h = torch::max_pool2d(torch::relu(torch::conv2d(h, w, biases_[l], 1, spec_.kernel / 2)), 2);
  }
  return classifier_->forward(h.flatten(1));
}

torch::Tensor dwp_kl_bound(KernelVaeImpl& vae, const torch::Tensor& sampled_weight,
                           const torch::Tensor& log_sigma) {
  // H[N(m, s^2)] = sum (log s + 1/2 log(2 pi e)).
  const double half_log_2pie = 0.5 * std::log(2.0 * M_PI * std::exp(1.0));
  const auto entropy = (log_sigma + half_log_2pie).sum();
  const auto elbo = vae.elbo(kernel_rows(sampled_weight), true).elbo.sum();
  return -entropy - elbo;
}

torch::Tensor normal_kl(const torch::Tensor& mean, const torch::Tensor& log_sigma) {
  // KL(N(m, s^2) || N(0, 1)) = sum (s^2 + m^2 - 1) / 2 - log s.
  return (0.5 * ((2 * log_sigma).exp() + mean.square() - 1) - log_sigma).sum();
}

json dwp_options_to_json(const DwpOptions& o) {
  return {{"source_dataset", o.source_dataset},
          {"dataset", o.dataset},
          {"channels", o.channels},
          {"teacher_channels", o.teacher_channels},
          {"kernel", o.kernel},
          {"source_networks", o.source_networks},
          {"source_steps", o.source_steps},
          {"teacher_steps", o.teacher_steps},
          {"vae_latent", o.vae_latent},
          {"vae_hidden", o.vae_hidden},
          {"vae_steps", o.vae_steps},
          {"per_class", o.per_class},
          {"validation_per_class", o.validation_per_class},
          {"test_items", o.test_items},
          {"curve_items", o.curve_items},
          {"seeds", o.seeds},
          {"steps", o.steps},
          {"batch_size", o.batch_size},
          {"eval_every", o.eval_every},
          {"lr", o.lr},
          {"kd_temperature", o.kd_temperature},
          {"kd_weight", o.kd_weight},
          {"kl_weights", o.kl_weights},
          {"methods", o.methods},
          {"shapes_image_size", o.shapes_image_size},
          {"shapes_train_items", o.shapes_train_items}};
}

namespace {

const std::vector<std::string>& all_methods() {
  static const std::vector<std::string> m = {"random",  "dwp-init",    "dwp-prior",
                                             "distill", "dwp-distill", "vi-normal"};
  return m;
}

}  // namespace

DwpOptions dwp_options_from_json(const json& user, const std::string& source) {
  DwpOptions o;
  const json j = io::merge_strict(dwp_options_to_json(o), user, source);
  o.source_dataset = read_option<std::string>(j, "source_dataset", source);
  o.dataset = read_option<std::string>(j, "dataset", source);
  o.channels = read_option<std::vector<std::int64_t>>(j, "channels", source);
  o.teacher_channels = read_option<std::vector<std::int64_t>>(j, "teacher_channels", source);
  o.kernel = read_option<std::int64_t>(j, "kernel", source);
  o.source_networks = read_option<std::int64_t>(j, "source_networks", source);
  o.source_steps = read_option<std::int64_t>(j, "source_steps", source);
  o.teacher_steps = read_option<std::int64_t>(j, "teacher_steps", source);
  o.vae_latent = read_option<std::int64_t>(j, "vae_latent", source);
  o.vae_hidden = read_option<std::int64_t>(j, "vae_hidden", source);
  o.vae_steps = read_option<std::int64_t>(j, "vae_steps", source);
  o.per_class = read_option<std::vector<std::int64_t>>(j, "per_class", source);
  o.validation_per_class = read_option<std::int64_t>(j, "validation_per_class", source);
  o.test_items = read_option<std::int64_t>(j, "test_items", source);
  o.curve_items = read_option<std::int64_t>(j, "curve_items", source);
  o.seeds = read_option<std::vector<std::uint64_t>>(j, "seeds", source);
  o.steps = read_option<std::int64_t>(j, "steps", source);
  o.batch_size = read_option<std::int64_t>(j, "batch_size", source);
  o.eval_every = read_option<std::int64_t>(j, "eval_every", source);
  o.lr = read_option<double>(j, "lr", source);
  o.kd_temperature = read_option<double>(j, "kd_temperature", source);
  o.kd_weight = read_option<double>(j, "kd_weight", source);
  o.methods = read_option<std::vector<std::string>>(j, "methods", source);
  o.kl_weights = read_option<std::vector<double>>(j, "kl_weights", source);
  o.shapes_image_size = read_option<std::int64_t>(j, "shapes_image_size", source);
  o.shapes_train_items = read_option<std::int64_t>(j, "shapes_train_items", source);
  MMKT_CHECK_INPUT(!o.kl_weights.empty(), source, ": kl_weights: at least one beta");
  for (double b : o.kl_weights) {
    MMKT_CHECK_INPUT(std::isfinite(b) && b > 0, source, ": kl_weights must be positive, got ", b);
  }
  for (const auto& d : {o.source_dataset, o.dataset}) {
    MMKT_CHECK_INPUT(d == "mnist" || d == "fashion-mnist" || shapes_dataset_level(d) > 0, source,
                     ": dataset '", d, "' (expected mnist, fashion-mnist or shapes:1 .. shapes:5)");
  }
  MMKT_CHECK_INPUT(o.shapes_image_size >= 16 && o.shapes_train_items > 0, source,
                   ": shapes_image_size must be >= 16 and shapes_train_items > 0");
  MMKT_CHECK_INPUT((shapes_dataset_level(o.source_dataset) > 0) == (shapes_dataset_level(o.dataset) > 0),
                   source, ": source_dataset '", o.source_dataset, "' and dataset '", o.dataset,
                   "' must both be shapes levels or both 28x28 grey IDX datasets (the prior's "
                   "networks share the students' input shape)");
  MMKT_CHECK_INPUT(o.channels.size() == o.teacher_channels.size() && !o.channels.empty(), source,
                   ": channels and teacher_channels need the same number of layers");
  for (const auto v : {o.kernel, o.source_networks, o.source_steps, o.teacher_steps, o.vae_latent,
                       o.vae_hidden, o.vae_steps, o.validation_per_class, o.test_items,
                       o.curve_items, o.steps, o.batch_size, o.eval_every}) {
    MMKT_CHECK_INPUT(v > 0, source, ": every count and size must be positive, got ", v);
  }
  MMKT_CHECK_INPUT(o.kernel % 2 == 1, source, ": kernel must be odd (same padding)");
  MMKT_CHECK_INPUT(!o.per_class.empty() && !o.seeds.empty(), source,
                   ": per_class and seeds must not be empty");
  for (auto n : o.per_class) MMKT_CHECK_INPUT(n > 0, source, ": per_class entries must be > 0");
  MMKT_CHECK_INPUT(o.curve_items <= o.test_items, source, ": curve_items > test_items");
  MMKT_CHECK_INPUT(std::isfinite(o.lr) && o.lr > 0 && o.kd_temperature > 0 && o.kd_weight >= 0,
                   source, ": lr and kd_temperature must be positive, kd_weight >= 0");
  for (const auto& m : o.methods) {
    MMKT_CHECK_INPUT(
        std::find(all_methods().begin(), all_methods().end(), m) != all_methods().end(), source,
        ": unknown method '", m,
        "' (expected random, dwp-init, dwp-prior, distill, dwp-distill or vi-normal)");
  }
  return o;
}

namespace {

struct Images {
  torch::Tensor x, y;  // [N,1,H,W] float in [0,1], [N] int64
  std::int64_t size() const { return y.size(0); }
  Images rows(const std::vector<std::int64_t>& r) const {
    const auto idx = torch::tensor(r, torch::kInt64);
    return {x.index_select(0, idx), y.index_select(0, idx)};
  }
};

// Shapes as a classification task (labels: shapes_shape_labels). The training and test splits are disjoint draws (seeds 0 and 1) of all combinations.
Images load_shapes(int level, const std::string& split, std::int64_t items, std::int64_t size) {
  data::ShapesOptions so;
  so.level = level;
  so.size = items;
  so.seed = split == "train" ? 0 : 1;
  so.image_size = static_cast<int>(size);
  const data::ShapesDataset d(so);
  auto x = torch::empty({items, 3, size, size});
  for (std::int64_t i = 0; i < items; ++i) x[i].copy_(d.get(i).image);
  return {x, shapes_shape_labels(d)};
}

Images load_split(const std::string& dataset, const std::string& split, const DwpOptions& o) {
  if (const int level = shapes_dataset_level(dataset); level > 0) {
    return load_shapes(level, split, split == "train" ? o.shapes_train_items : o.test_items,
                       o.shapes_image_size);
  }
  data::LabelledImagesOptions lo;
  lo.dataset = dataset;
  lo.split = split;
  lo.attributes_file = "none";
  data::LabelledImageDataset d(lo);
  return {d.raw_images().to(torch::kFloat32).div(255.0), d.all_labels()};
}

double accuracy(ConvNet& net, const Images& data, std::int64_t limit, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  net->eval();
  const std::int64_t n = std::min(limit, data.size());
  std::int64_t right = 0;
  for (std::int64_t at = 0; at < n; at += 1000) {
    const auto k = std::min<std::int64_t>(1000, n - at);
    const auto p = net->forward(data.x.narrow(0, at, k).to(device)).argmax(1).cpu();
    right += p.eq(data.y.narrow(0, at, k)).sum().item<std::int64_t>();
  }
  net->train();
  return static_cast<double>(right) / static_cast<double>(n);
}

torch::Tensor logits_of(ConvNet& net, const Images& data, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  net->eval();
  std::vector<torch::Tensor> parts;
  for (std::int64_t at = 0; at < data.size(); at += 1000) {
    const auto k = std::min<std::int64_t>(1000, data.size() - at);
    parts.push_back(net->forward(data.x.narrow(0, at, k).to(device)).cpu());
  }
  net->train();
  return torch::cat(parts);
}

// Plain cross-entropy training (the prior's source networks and the teacher).
void train_plain(ConvNet& net, const Images& data, std::int64_t steps, std::int64_t batch,
                 double lr, std::uint64_t seed, const std::string& what, double period,
                 const torch::Device& device) {
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(lr));
  SplitMix rng(seed);
  LoopProgress progress(what, 1, steps, period, "items/s");
  progress.start_epoch(0);
  double sum = 0;
  for (std::int64_t s = 0; s < steps; ++s) {
    std::vector<std::int64_t> rows(static_cast<std::size_t>(batch));
    for (auto& r : rows) r = static_cast<std::int64_t>(rng.below(data.size()));
    const auto b = data.rows(rows);
    opt.zero_grad();
    const auto loss =
        torch::nn::functional::cross_entropy(net->forward(b.x.to(device)), b.y.to(device));
    loss.backward();
    opt.step();
    sum += loss.item<double>();
    std::ostringstream d;
    d << std::setprecision(4) << "loss " << sum / static_cast<double>(s + 1);
    progress.step(s, (s + 1) * batch, d.str());
  }
}

// One kernel VAE per conv layer, fitted to that layer's kernels in `nets`.
std::vector<KernelVae> fit_priors(const std::vector<ConvNet>& nets, const DwpOptions& o,
                                  std::uint64_t seed, json& report, const std::string& name) {
  std::vector<KernelVae> vaes;
  for (std::size_t l = 0; l < o.channels.size(); ++l) {
    std::vector<torch::Tensor> rows;
    for (const auto& n : nets) rows.push_back(kernel_rows(n->conv_weights()[l].detach().cpu()));
    const auto kernels = torch::cat(rows);
    torch::manual_seed(derive_seed(seed, name + "-vae-" + std::to_string(l)));
    KernelVae vae(o.kernel, o.vae_latent, o.vae_hidden);
    KernelVaeTraining t;
    t.steps = o.vae_steps;
    t.seed = derive_seed(seed, name + "-vae-batches-" + std::to_string(l));
    auto stats = train_kernel_vae(vae, kernels, t);
    stats["layer"] = l;
    stats["prior"] = name;
    stats["kernel_std"] = kernels.std().item<double>();
    log::info("dwp: ", name, " prior, layer ", l, ": ", kernels.size(0),
              " kernels, ELBO per kernel ", stats["train_elbo"].get<double>());
    report.push_back(stats);
    for (auto& p : vae->parameters()) p.requires_grad_(false);
    vaes.push_back(vae);
  }
  return vaes;
}

struct StudentPlan {
  std::string method;
  std::vector<KernelVae>* prior = nullptr;  // init from it (and VI with it when vi; VI under
                                            // N(0, I) when vi without a prior)
  bool vi = false;
  bool kd = false;
  double kl_weight = 1.0;
};

struct Outcome {
  double best_validation = -1, test = 0;
  std::int64_t best_step = 0;
  std::vector<std::pair<std::int64_t, double>> curve;  // (step, accuracy on curve items)
};

Outcome train_student(const StudentPlan& plan, const Images& train, const Images& validation,
                      const Images& test, const torch::Tensor& teacher_logits, const DwpOptions& o,
                      std::uint64_t seed, const std::string& what, const torch::Device& device) {
  ConvNetSpec spec;
  spec.channels = o.channels;
  spec.kernel = o.kernel;
  spec.image_shape = {train.x.size(1), train.x.size(2), train.x.size(3)};
  spec.classes = train.y.max().item<std::int64_t>() + 1;
  torch::manual_seed(derive_seed(seed, "dwp-student-init"));
  ConvNet net(spec);
  std::vector<torch::Tensor> log_sigma;
  if (plan.prior != nullptr) {
    torch::NoGradGuard no_grad;
    torch::manual_seed(derive_seed(seed, "dwp-student-prior-init"));
    auto weights = net->conv_weights();
    for (std::size_t l = 0; l < weights.size(); ++l) {
      auto& vae = (*plan.prior)[l];
      const auto rows = weights[l].size(0) * weights[l].size(1);
      weights[l].copy_(vae->sample(rows).view(weights[l].sizes()));
    }
  }
  std::vector<torch::Tensor> params = net->parameters();
  if (plan.vi) {
    for (const auto& w : net->conv_weights()) {
      // s = 0.0067 at the start: e^-5, the posterior begins nearly at its mean.
      log_sigma.push_back(torch::full_like(w, -5.0).requires_grad_(true));
      params.push_back(log_sigma.back());
    }
  }
  net->to(device);
  torch::optim::Adam opt(params, torch::optim::AdamOptions(o.lr));
  SplitMix rng(derive_seed(seed, "dwp-batches-" + plan.method));
  const double n = static_cast<double>(train.size());
  Outcome out;
  std::vector<torch::Tensor> best;
  auto judge = [&](std::int64_t step) {
    const double v = accuracy(net, validation, validation.size(), device);
    out.curve.emplace_back(step, accuracy(net, test, o.curve_items, device));
    if (v > out.best_validation) {
      out.best_validation = v;
      out.best_step = step;
      best.clear();
      for (const auto& p : net->parameters()) best.push_back(p.detach().clone());
    }
  };
  judge(0);
  LoopProgress progress(what, 1, o.steps, o.progress_seconds, "items/s");
  progress.start_epoch(0);
  double sum = 0;
  for (std::int64_t s = 0; s < o.steps; ++s) {
    std::vector<std::int64_t> rows(static_cast<std::size_t>(o.batch_size));
    for (auto& r : rows) r = static_cast<std::int64_t>(rng.below(train.size()));
    const auto idx = torch::tensor(rows, torch::kInt64);
    const auto x = train.x.index_select(0, idx).to(device);
    const auto y = train.y.index_select(0, idx).to(device);
    opt.zero_grad();
    torch::Tensor logits, kl = torch::zeros({}, x.options());
    if (plan.vi) {
      std::vector<torch::Tensor> sampled;
      const auto means = net->conv_weights();
      for (std::size_t l = 0; l < means.size(); ++l) {
        sampled.push_back(means[l] + log_sigma[l].exp() * torch::randn_like(means[l]));
        kl = kl + (plan.prior != nullptr
                       ? dwp_kl_bound(*(*plan.prior)[l], sampled.back(), log_sigma[l])
                       : normal_kl(means[l], log_sigma[l]));
      }
      logits = net->forward(x, sampled);
    } else {
      logits = net->forward(x);
    }
    auto loss = torch::nn::functional::cross_entropy(logits, y) + plan.kl_weight * kl / n;
    if (plan.kd) {
      loss = loss + o.kd_weight * distill::hinton_kd(logits,
                                                     teacher_logits.index_select(0, idx).to(device),
                                                     o.kd_temperature);
    }
    const double value = loss.item<double>();
    check_finite_loss(value, what + " step " + std::to_string(s + 1), "", "lower lr");
    loss.backward();
    opt.step();
    sum += value;
    std::ostringstream d;
    d << std::setprecision(4) << "loss " << sum / static_cast<double>(s + 1);
    progress.step(s, (s + 1) * o.batch_size, d.str());
    if ((s + 1) % o.eval_every == 0 || s + 1 == o.steps) judge(s + 1);
  }
  {
    torch::NoGradGuard no_grad;
    auto p = net->parameters();
    for (std::size_t i = 0; i < p.size(); ++i) p[i].copy_(best[i]);
  }
  out.test = accuracy(net, test, test.size(), device);
  return out;
}

}  // namespace

json run_dwp(const DwpOptions& o, const Runtime& rt) {
  MMKT_CHECK_INPUT(!o.out_dir.empty(), "dwp: no output folder");
  std::filesystem::create_directories(o.out_dir);
  io::write_json_file(o.out_dir + "/config.json", dwp_options_to_json(o));
  const auto started = std::chrono::steady_clock::now();
  const Images source = load_split(o.source_dataset, "train", o);
  const Images train_all = load_split(o.dataset, "train", o);
  const Images test_all = load_split(o.dataset, "test", o);
  const std::int64_t classes = train_all.y.max().item<std::int64_t>() + 1;
  MMKT_CHECK_INPUT(o.test_items <= test_all.size(), "dwp: test_items ", o.test_items, " > ",
                   test_all.size());
  std::vector<std::int64_t> test_rows(static_cast<std::size_t>(o.test_items));
  for (std::int64_t i = 0; i < o.test_items; ++i) test_rows[static_cast<std::size_t>(i)] = i;
  const Images test = test_all.rows(test_rows);
  ConvNetSpec spec;
  spec.channels = o.channels;
  spec.kernel = o.kernel;
  spec.image_shape = {train_all.x.size(1), train_all.x.size(2), train_all.x.size(3)};
  spec.classes = classes;
  json priors = json::array(), networks = json::array();
  const std::uint64_t prior_seed = o.seeds.front();

  // The prior's source networks: the student's architecture, trained on the source task.
  std::vector<ConvNet> source_nets;
  for (std::int64_t k = 0; k < o.source_networks; ++k) {
    torch::manual_seed(derive_seed(prior_seed, "dwp-source-net-" + std::to_string(k)));
    ConvNet net(spec);
    net->to(rt.device);
    train_plain(net, source, o.source_steps, 128, o.lr,
                derive_seed(prior_seed, "dwp-source-batches-" + std::to_string(k)),
                "dwp source network " + std::to_string(k + 1), o.progress_seconds, rt.device);
    networks.push_back({{"network", "source " + std::to_string(k + 1)},
                        {"dataset", o.source_dataset},
                        {"channels", o.channels}});
    source_nets.push_back(net);
  }
  auto source_prior = fit_priors(source_nets, o, prior_seed, priors, "source");

  // The teacher: wider, trained on the target's whole training split.
  ConvNetSpec teacher_spec = spec;
  teacher_spec.channels = o.teacher_channels;
  torch::manual_seed(derive_seed(prior_seed, "dwp-teacher"));
  ConvNet teacher(teacher_spec);
  teacher->to(rt.device);
  const bool need_teacher = contains(o.methods, "distill") || contains(o.methods, "dwp-distill");
  std::vector<KernelVae> teacher_prior;
  if (need_teacher) {
    train_plain(teacher, train_all, o.teacher_steps, 128, o.lr,
                derive_seed(prior_seed, "dwp-teacher-batches"), "dwp teacher", o.progress_seconds,
                rt.device);
    const double acc = accuracy(teacher, test, test.size(), rt.device);
    log::info("dwp: teacher test accuracy ", acc);
    networks.push_back({{"network", "teacher"},
                        {"dataset", o.dataset},
                        {"channels", o.teacher_channels},
                        {"test_accuracy", acc}});
    teacher_prior = fit_priors({teacher}, o, prior_seed, priors, "teacher");
  }

  // Per class: the seed's shuffle of the class's training items, [validation | train].
  std::vector<std::vector<std::int64_t>> by_class(static_cast<std::size_t>(classes));
  const auto* labels = train_all.y.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < train_all.size(); ++i) {
    by_class[static_cast<std::size_t>(labels[i])].push_back(i);
  }
  const std::int64_t largest = *std::max_element(o.per_class.begin(), o.per_class.end());
  for (const auto& c : by_class) {
    MMKT_CHECK_INPUT(static_cast<std::int64_t>(c.size()) >= o.validation_per_class + largest,
                     "dwp: a class has ", c.size(), " training items, the split needs ",
                     o.validation_per_class + largest);
  }
  json rows = json::array(), curves = json::array(), grid = json::array();
  for (const auto seed : o.seeds) {
    std::vector<std::int64_t> validation_rows;
    std::vector<std::vector<std::int64_t>> class_train(by_class.size());
    for (std::size_t c = 0; c < by_class.size(); ++c) {
      auto items = by_class[c];
      SplitMix rng(derive_seed(seed, "dwp-items-" + std::to_string(c)));
      rng.shuffle(items);
      validation_rows.insert(validation_rows.end(), items.begin(),
                             items.begin() + o.validation_per_class);
      class_train[c].assign(items.begin() + o.validation_per_class, items.end());
    }
    const Images validation = train_all.rows(validation_rows);
    for (const auto per_class : o.per_class) {
      std::vector<std::int64_t> train_rows;
      for (const auto& c : class_train)
        train_rows.insert(train_rows.end(), c.begin(), c.begin() + per_class);
      const Images train = train_all.rows(train_rows);
      const auto teacher_logits =
          need_teacher ? logits_of(teacher, train, rt.device) : torch::Tensor();
      const std::vector<StudentPlan> plans = {{"random", nullptr, false, false, 1.0},
                                              {"dwp-init", &source_prior, false, false, 1.0},
                                              {"dwp-prior", &source_prior, true, false, 1.0},
                                              {"distill", nullptr, false, true, 1.0},
                                              {"dwp-distill", &teacher_prior, true, true, 1.0},
                                              {"vi-normal", nullptr, true, false, 1.0}};
      for (const auto& base : plans) {
        if (!contains(o.methods, base.method)) continue;
        // Variational methods: one training per beta, the best by validation accuracy kept.
        const std::vector<double> betas = base.vi ? o.kl_weights : std::vector<double>{1.0};
        Outcome best;
        double best_beta = 0;
        for (const double beta : betas) {
          StudentPlan plan = base;
          plan.kl_weight = beta;
          std::ostringstream what;
          what << "seed " << seed << ", " << per_class << "/class: " << plan.method;
          if (plan.vi) what << " beta " << beta;
          const auto r = train_student(plan, train, validation, test, teacher_logits, o, seed,
                                       what.str(), rt.device);
          log::info(what.str(), ": test accuracy ", r.test, " (best validation ", r.best_validation,
                    " at step ", r.best_step, ")");
          if (plan.vi) {
            grid.push_back({{"seed", seed},
                            {"per_class", per_class},
                            {"method", plan.method},
                            {"kl_weight", beta},
                            {"validation", r.best_validation}});
          }
          if (r.best_validation > best.best_validation) {
            best = r;
            best_beta = beta;
          }
        }
        json row{{"seed", seed},
                 {"per_class", per_class},
                 {"method", base.method},
                 {"best_step", best.best_step},
                 {"validation", best.best_validation},
                 {"test", best.test}};
        if (base.vi) row["kl_weight"] = best_beta;
        rows.push_back(row);
        for (const auto& [step, acc] : best.curve) {
          curves.push_back({{"seed", seed},
                            {"per_class", per_class},
                            {"method", base.method},
                            {"step", step},
                            {"accuracy", acc}});
        }
      }
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  json result{{"config", dwp_options_to_json(o)},
              {"networks", networks},
              {"priors", priors},
              {"rows", rows},
              {"kl_grid", grid},
              {"curves", curves},
              {"seconds", seconds},
              {"threads", rt.threads}};
  io::write_json_file(o.out_dir + "/result.json", result);
  io::write_file_atomic(o.out_dir + "/result.md", dwp_markdown(result));
  // curves.tsv: per_class method step mean-accuracy (over seeds), for gnuplot.
  std::map<std::tuple<std::int64_t, std::string, std::int64_t>, std::vector<double>> grouped;
  for (const auto& c : curves) {
    grouped[{c["per_class"].get<std::int64_t>(), c["method"].get<std::string>(),
             c["step"].get<std::int64_t>()}]
        .push_back(c["accuracy"].get<double>());
  }
  std::ostringstream tsv;
  tsv << "# per_class\tmethod\tstep\tmean_accuracy\n";
  for (const auto& [key, v] : grouped) {
    double m = 0;
    for (double x : v) m += x;
    tsv << std::get<0>(key) << "\t" << std::get<1>(key) << "\t" << std::get<2>(key) << "\t"
        << m / static_cast<double>(v.size()) << "\n";
  }
  io::write_file_atomic(o.out_dir + "/curves.tsv", tsv.str());
  return result;
}

std::string dwp_markdown(const json& result) {
  const auto& c = result.at("config");
  std::ostringstream md;
  md << "Deep weight prior (Atanov et al. 2019) on " << c.at("dataset").get<std::string>()
     << ": conv students (channels " << c.at("channels").dump() << ", " << c.at("kernel") << "x"
     << c.at("kernel") << " kernels), " << c.at("steps") << " steps each; test accuracy on "
     << c.at("test_items") << " test items at the step of best validation accuracy ("
     << c.at("validation_per_class") << " validation items per class), mean +- std over "
     << c.at("seeds").size() << " seeds. Source prior: kernels of " << c.at("source_networks")
     << " networks trained on " << c.at("source_dataset").get<std::string>()
     << "; teacher prior: kernels of the teacher "
     << "(channels " << c.at("teacher_channels").dump() << ", trained on all of "
     << c.at("dataset").get<std::string>() << "'s training split).\n\n";
  const auto methods = c.at("methods").get<std::vector<std::string>>();
  md << "| items per class |";
  for (const auto& m : methods) md << " " << m << " |";
  md << "\n| ---: |";
  for (std::size_t i = 0; i < methods.size(); ++i) md << " ---: |";
  md << "\n";
  for (const auto& n : c.at("per_class")) {
    md << "| " << n << " |";
    for (const auto& m : methods) {
      std::vector<double> v;
      for (const auto& r : result.at("rows")) {
        if (r.at("per_class") == n && r.at("method") == m) v.push_back(r.at("test").get<double>());
      }
      md << " " << mean_std(v) << " |";
    }
    md << "\n";
  }
  if (!result.at("kl_grid").empty()) {
    md << "\nThe variational methods' beta (weight of the KL term: the DWP bound, or the "
          "closed-form KL to N(0, I) for vi-normal), chosen per seed and size by validation "
          "accuracy; the table gives each beta's mean best validation accuracy:\n\n"
          "| method | items per class |";
    const auto betas = c.at("kl_weights").get<std::vector<double>>();
    for (double b : betas) md << " beta = " << b << " |";
    md << "\n| --- | ---: |";
    for (std::size_t i = 0; i < betas.size(); ++i) md << " ---: |";
    md << "\n";
    for (const auto& m : methods) {
      for (const auto& n : c.at("per_class")) {
        bool any = false;
        std::ostringstream line;
        line << "| " << m << " | " << n << " |";
        for (double b : betas) {
          std::vector<double> v;
          for (const auto& g : result.at("kl_grid")) {
            if (g.at("method") == m && g.at("per_class") == n &&
                g.at("kl_weight").get<double>() == b) {
              v.push_back(g.at("validation").get<double>());
            }
          }
          any = any || !v.empty();
          line << " " << mean_std(v) << " |";
        }
        if (any) md << line.str() << "\n";
      }
    }
  }
  md << "\nPriors (one kernel VAE per layer; ELBO per kernel in nats on its own training "
        "kernels, z at the posterior mean):\n\n| prior | layer | kernels | kernel std | ELBO |\n"
        "| --- | ---: | ---: | ---: | ---: |\n";
  for (const auto& p : result.at("priors")) {
    md << "| " << p.at("prior").get<std::string>() << " | " << p.at("layer") << " | "
       << p.at("kernels") << " | " << std::setprecision(4) << p.at("kernel_std").get<double>()
       << " | " << std::fixed << std::setprecision(2) << p.at("train_elbo").get<double>()
       << std::defaultfloat << " |\n";
  }
  for (const auto& n : result.at("networks")) {
    if (n.contains("test_accuracy")) {
      md << "\nTeacher test accuracy: " << std::fixed << std::setprecision(3)
         << n.at("test_accuracy").get<double>() << std::defaultfloat << ".\n";
    }
  }
  md << "\nWall time: " << std::fixed << std::setprecision(0) << result.at("seconds").get<double>()
     << " s on " << result.at("threads") << " threads.\n";
  return md.str();
}

}  // namespace mmkt::transfer
