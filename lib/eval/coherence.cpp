#include "mmkt/eval/coherence.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <iomanip>
#include <map>
#include <sstream>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/core/progress.h"
#include "mmkt/core/runtime.h"
#include "mmkt/data/batcher.h"
#include "mmkt/data/shapes.h"
#include "mmkt/io/checkpoint.h"
#include "mmkt/io/files.h"
#include "mmkt/run/datasets.h"
#include "mmkt/run/run_data.h"

namespace mmkt::eval {

EvaluationSchema evaluation_schema(const LoadedRun& run) {
  EvaluationSchema s;
  if (dataset_entry(run.config.data.dataset).factor_labels) {
    s.kind = "shapes";
    s.shapes_level = run.config.data.shapes_level;
    for (int f = 0; f < s.shapes_level; ++f) {
      s.groups.push_back(data::shapes_factor_names()[static_cast<std::size_t>(f)]);
      s.value_names.push_back(data::shapes_factor_values(f));
      s.values.push_back(static_cast<std::int64_t>(s.value_names.back().size()));
    }
    return s;
  }
  s.kind = "class";
  s.groups = {"class"};
  const auto& info = run.data.test->info();
  MMKT_CHECK_INPUT(!info.class_names.empty(), info.name,
                   ": coherence needs class labels (the dataset has no class names)");
  s.value_names = {info.class_names};
  s.values = {static_cast<std::int64_t>(info.class_names.size())};
  if (run.data.class_attributes)
    s.class_name_variants = run.data.class_attributes->class_name_variants;
  return s;
}

torch::Tensor targets_from_labels(const EvaluationSchema& schema, const torch::Tensor& labels) {
  const auto l = labels.to(torch::kInt64).cpu().contiguous();
  if (schema.kind == "class") return l.unsqueeze(1).clone();
  const auto g = static_cast<std::int64_t>(schema.groups.size());
  auto out = torch::empty({l.size(0), g}, torch::kInt64);
  auto acc = out.accessor<std::int64_t, 2>();
  const auto* p = l.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < l.size(0); ++i) {
    const auto f = data::shapes_factors_from_label(p[i], schema.shapes_level);
    for (std::int64_t j = 0; j < g; ++j) acc[i][j] = f.get(static_cast<int>(j));
  }
  return out;
}

namespace {

bool word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '/';
}

}  // namespace

std::int64_t class_named_in(const std::string& caption,
                            const std::vector<std::vector<std::string>>& variants) {
  // Every (variant, class), longest first, so that "t-shirt" wins over "shirt".
  std::vector<std::pair<std::string, std::int64_t>> all;
  for (std::size_t c = 0; c < variants.size(); ++c) {
    for (const auto& v : variants[c]) all.emplace_back(v, static_cast<std::int64_t>(c));
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  std::int64_t found = -1;
  std::size_t i = 0;
  while (i < caption.size()) {
    if (i > 0 && word_char(caption[i - 1])) {
      ++i;
      continue;
    }
    bool matched = false;
    for (const auto& [v, c] : all) {
      if (v.empty() || caption.compare(i, v.size(), v) != 0) continue;
      const auto end = i + v.size();
      if (end < caption.size() && word_char(caption[end])) continue;
      if (found >= 0 && found != c) return -1;  // two classes named
      found = c;
      i = end;
      matched = true;
      break;
    }
    if (!matched) ++i;
  }
  return found;
}

torch::Tensor parse_captions(const EvaluationSchema& schema,
                             const std::vector<std::string>& captions) {
  const auto n = static_cast<std::int64_t>(captions.size());
  const auto g = static_cast<std::int64_t>(schema.groups.size());
  auto out = torch::full({n, g}, -1, torch::kInt64);
  auto acc = out.accessor<std::int64_t, 2>();
  for (std::int64_t i = 0; i < n; ++i) {
    const auto& text = captions[static_cast<std::size_t>(i)];
    if (schema.kind == "class") {
      MMKT_CHECK_INPUT(!schema.class_name_variants.empty(),
                       "coherence: no class-name variants to parse captions with");
      acc[i][0] = class_named_in(text, schema.class_name_variants);
    } else if (const auto f = data::parse_shapes_caption(text, schema.shapes_level)) {
      for (std::int64_t j = 0; j < g; ++j) acc[i][j] = f->get(static_cast<int>(j));
    }
  }
  return out;
}

ImageEvaluatorImpl::ImageEvaluatorImpl(std::vector<std::int64_t> shape,
                                       std::vector<std::int64_t> values) {
  MMKT_CHECK(shape.size() == 3, "image evaluator: image shape {C,H,W} needed");
  namespace nn = torch::nn;
  std::int64_t features = 256;
  if (shape[1] <= 32) {
    body_ = nn::Sequential(nn::Flatten(), nn::Linear(shape[0] * shape[1] * shape[2], 512),
                           nn::ReLU(), nn::Dropout(0.2), nn::Linear(512, features), nn::ReLU());
  } else {
    // Three stride-2 convolutions (kernel 4, padding 1) halve an even side each time.
    MMKT_CHECK_INPUT(shape[1] % 8 == 0 && shape[2] % 8 == 0,
                     "image evaluator: image sides must be multiples of 8, got ", shape[1], "x",
                     shape[2]);
    body_ = nn::Sequential(
        nn::Conv2d(nn::Conv2dOptions(shape[0], 32, 4).stride(2).padding(1)), nn::ReLU(),
        nn::Conv2d(nn::Conv2dOptions(32, 64, 4).stride(2).padding(1)), nn::ReLU(),
        nn::Conv2d(nn::Conv2dOptions(64, 64, 4).stride(2).padding(1)), nn::ReLU(), nn::Flatten(),
        nn::Linear(64 * (shape[1] / 8) * (shape[2] / 8), features), nn::ReLU());
  }
  register_module("body", body_);
  for (std::size_t g = 0; g < values.size(); ++g) {
    heads_.push_back(register_module("head" + std::to_string(g), nn::Linear(features, values[g])));
  }
}

std::vector<torch::Tensor> ImageEvaluatorImpl::forward(const torch::Tensor& images) {
  const auto h = body_->forward(images);
  std::vector<torch::Tensor> out;
  for (auto& head : heads_) out.push_back(head->forward(h));
  return out;
}

torch::Tensor ImageEvaluatorImpl::predict(const torch::Tensor& images) {
  std::vector<torch::Tensor> cols;
  for (const auto& l : forward(images)) cols.push_back(l.argmax(1));
  return torch::stack(cols, 1);
}

namespace {

torch::Tensor predict_dataset(ImageEvaluator& ev, const data::DatasetPtr& ds,
                              std::int64_t max_items, const torch::Device& device,
                              torch::Tensor* labels) {
  torch::NoGradGuard no_grad;
  ev->eval();
  data::BatcherOptions o;
  o.batch_size = 500;
  o.shuffle = false;
  data::Batcher b(ds, o);
  b.start_epoch(0);
  std::vector<torch::Tensor> out, ls;
  std::int64_t n = 0;
  while (auto batch = b.next()) {
    out.push_back(ev->predict(batch->images.to(device)).cpu());
    ls.push_back(batch->labels);
    n += batch->size();
    if (max_items > 0 && n >= max_items) break;
  }
  if (labels) *labels = torch::cat(ls);
  return torch::cat(out);
}

}  // namespace

ImageEvaluator image_evaluator(LoadedRun& run, const EvaluationSchema& schema,
                               const std::string& path, const EvaluatorOptions& o,
                               const torch::Device& device, nlohmann::json* report) {
  const auto shape = run.data.test->info().image_shape;
  ImageEvaluator ev(shape, schema.values);
  ev->to(device);
  // The evaluator is reused only when it was trained the same way (a sidecar JSON says how).
  const nlohmann::json recipe{{"epochs", o.epochs},
                              {"max_items", o.max_items},
                              {"binarize", run.config.data.binarize},
                              {"batch_size", o.batch_size},
                              {"lr", o.lr},
                              {"groups", schema.groups},
                              {"seed", run.config.seed}};
  const std::string recipe_path = path + ".json";
  const bool reuse = io::file_exists(path) && io::file_exists(recipe_path) &&
                     nlohmann::json::parse(io::read_file(recipe_path), nullptr, false) == recipe;
  if (reuse) {
    io::load_checkpoint(path, *ev, nullptr, false);
    log::info("image evaluator loaded from ", path);
  } else {
    torch::manual_seed(derive_seed(run.config.seed, "image-evaluator"));
    const auto ds = evaluator_training_set(run.config, o.max_items);
    log::info("training the image evaluator (", schema.groups.size(), " head(s)) on ", ds->size(),
              " real images of every class, ", o.epochs, " epochs");
    torch::optim::Adam opt(ev->parameters(), torch::optim::AdamOptions(o.lr));
    // Shuffled and, for a run on binarized images (tested on binarized images), freshly
    // binarized like training batches (85.0% on the binarized Fashion-MNIST test set after 6
    // epochs); a seed stream of its own; images only.
    auto bo = batcher_options(run, BatchPurpose::kTraining);
    bo.batch_size = o.batch_size;
    bo.seed = derive_seed(run.config.seed, "image-evaluator-batches");
    bo.tokenizer = nullptr;
    bo.workers = 1;
    data::Batcher batcher(ds, bo);
    LoopProgress progress("image evaluator epoch", o.epochs, batcher.batches_per_epoch(), 10.0,
                          "images/s");
    for (std::int64_t epoch = 0; epoch < o.epochs; ++epoch) {
      ev->train();
      batcher.start_epoch(epoch);
      progress.start_epoch(epoch);
      double loss_sum = 0;
      std::int64_t steps = 0, rows = 0;
      while (auto batch = batcher.next()) {
        const auto targets = targets_from_labels(schema, batch->labels).to(device);
        const auto logits = ev->forward(batch->images.to(device));
        auto loss = torch::zeros({}, torch::TensorOptions().device(device));
        for (std::size_t g = 0; g < logits.size(); ++g) {
          loss = loss + torch::nn::functional::cross_entropy(
                            logits[g], targets.select(1, static_cast<std::int64_t>(g)));
        }
        const double value = loss.item<double>();
        check_finite_loss(value,
                          "image evaluator epoch " + std::to_string(epoch + 1) + " step " +
                              std::to_string(steps + 1),
                          "", "the image evaluator diverged on these images");
        opt.zero_grad();
        loss.backward();
        opt.step();
        loss_sum += value;
        rows += batch->size();
        progress.step(steps, rows,
                      "loss " + std::to_string(loss_sum / static_cast<double>(steps + 1)));
        ++steps;
      }
      log::info("image evaluator epoch ", epoch + 1, "/", o.epochs, " loss ",
                loss_sum / std::max<std::int64_t>(1, steps), " | ", progress.seconds(), " s");
    }
    io::save_checkpoint(path, *ev, nullptr, io::TrainingState{});
    io::write_file_atomic(recipe_path, recipe.dump(2) + "\n");
  }
  if (report) {
    torch::Tensor labels;
    const auto pred = predict_dataset(ev, run.data.test, 0, device, &labels);
    const auto truth = targets_from_labels(schema, labels);
    nlohmann::json acc;
    for (std::size_t g = 0; g < schema.groups.size(); ++g) {
      const auto gi = static_cast<std::int64_t>(g);
      acc[schema.groups[g]] =
          pred.select(1, gi).eq(truth.select(1, gi)).to(torch::kFloat64).mean().item<double>();
    }
    acc["all"] = pred.eq(truth).all(1).to(torch::kFloat64).mean().item<double>();
    (*report)["evaluator_test_accuracy"] = acc;
    log::info("image evaluator accuracy on the real test images: ", acc.dump());
  }
  ev->eval();
  return ev;
}

namespace {

nlohmann::json agreement(const torch::Tensor& judged, const torch::Tensor& truth) {
  const auto right = judged.eq(truth) & truth.ge(0);
  const auto g = static_cast<double>(truth.size(1));
  const auto feats = right.to(torch::kFloat64).sum(1).mean().item<double>();
  return {{"strict", right.all(1).to(torch::kFloat64).mean().item<double>()},
          {"feats", feats},
          {"feats_share", feats / g},
          {"groups", truth.size(1)},
          {"items", truth.size(0)}};
}

}  // namespace

nlohmann::json coherence_report(LoadedRun& run, const EvaluationSchema& schema,
                                ImageEvaluator& evaluator, const data::DatasetPtr& test,
                                const CoherenceOptions& o, const torch::Device& device,
                                CoherenceExamples* examples) {
  torch::NoGradGuard no_grad;
  run.model->eval();
  evaluator->eval();
  torch::manual_seed(derive_seed(o.seed, "coherence"));
  MMKT_CHECK_INPUT(run.model->has_modality("image"), "coherence needs an 'image' modality");
  // The modalities whose generations can be judged: text (parsed) and labels (argmax).
  std::vector<std::string> others;
  std::map<std::string, models::ModalityKind> kind_of;
  for (const auto& c : run.modalities) {
    kind_of[c.name] = c.kind;
    if (c.name != "image" &&
        (c.kind == models::ModalityKind::kText || c.kind == models::ModalityKind::kLabel))
      others.push_back(c.name);
  }
  // Judge generated data of modality m (text ids or label probabilities) as [N,G].
  auto judge = [&](const std::string& m, const torch::Tensor& generated,
                   std::vector<std::string>* texts) {
    if (kind_of.at(m) == models::ModalityKind::kLabel) {
      return targets_from_labels(schema, generated.argmax(1));
    }
    std::vector<std::string> captions;
    const auto ids = generated.cpu().contiguous();
    for (std::int64_t i = 0; i < ids.size(0); ++i) {
      const auto row = ids[i];
      captions.push_back(run.data.tokenizer->decode(std::vector<std::int64_t>(
          row.data_ptr<std::int64_t>(), row.data_ptr<std::int64_t>() + row.numel())));
    }
    if (texts) *texts = captions;
    return parse_captions(schema, captions);
  };

  auto bo = batcher_options(run, BatchPurpose::kEvaluation);
  bo.batch_size = 250;
  data::Batcher batcher(test, bo);
  batcher.start_epoch(0);
  std::map<std::string, std::vector<torch::Tensor>> judged;
  std::vector<torch::Tensor> truths, labels;
  std::int64_t n = 0;
  while (n < o.max_items) {
    auto batch = batcher.next();
    if (!batch) break;
    const auto inputs = inputs_from_batch(*batch, run.modalities, device);
    truths.push_back(targets_from_labels(schema, batch->labels));
    labels.push_back(batch->labels.cpu());
    for (const auto& m : others) {
      // image | m
      const auto zm = run.model->encode(m, inputs.at(m)).rsample();
      const auto img = run.model->decoder("image").mean(zm);
      judged["image|" + m].push_back(evaluator->predict(img).cpu());
      // m | image
      const auto zx = run.model->encode("image", inputs.at("image")).rsample();
      std::vector<std::string> texts;
      judged[m + "|image"].push_back(
          judge(m, run.model->decoder(m).mean(zx), n == 0 ? &texts : nullptr));
      if (examples && n == 0 && kind_of.at(m) == models::ModalityKind::kText) {
        const std::int64_t rows = std::min<std::int64_t>(8, batch->size());
        const std::int64_t k = 8;
        examples->source_captions.assign(batch->captions.begin(), batch->captions.begin() + rows);
        examples->captions_from_image.assign(texts.begin(), texts.begin() + rows);
        examples->source_images = batch->images.narrow(0, 0, rows).cpu();
        models::ModalityInput first{inputs.at(m).data.narrow(0, 0, rows),
                                    inputs.at(m).lengths.narrow(0, 0, rows)};
        const auto z = run.model->encode(m, first).rsample(k);  // [K,R,D]
        const auto imgs = run.model->decoder("image").mean(z.reshape({k * rows, -1}));
        examples->images_from_text =
            imgs.view({k, rows, imgs.size(1), imgs.size(2), imgs.size(3)}).transpose(0, 1).cpu();
      }
    }
    n += batch->size();
  }
  MMKT_CHECK_INPUT(n > 0, test->info().name, ": no test items for coherence");
  const auto truth = torch::cat(truths);
  nlohmann::json report;
  for (auto& [name, list] : judged) report[name] = agreement(torch::cat(list), truth);
  // The classes held out of training (shapes' compositional combinations, a zero-shot split's
  // unseen classes) on their own: generating a combination never seen is a different test.
  if (!run.data.unseen_classes.empty()) {
    const auto unseen = torch::tensor(run.data.unseen_classes, torch::kLong);
    const auto held_out = torch::isin(torch::cat(labels).to(torch::kLong), unseen);
    if (held_out.any().item<bool>()) {
      const auto rows = held_out.nonzero().squeeze(1);
      for (auto& [name, list] : judged) {
        report[name + " (held-out classes)"] =
            agreement(torch::cat(list).index_select(0, rows), truth.index_select(0, rows));
      }
    }
  }
  // Joint coherence: samples from the prior, every modality generated, judgements compared.
  for (const auto& m : others) {
    std::vector<torch::Tensor> a, b;
    const auto z_options = run.model->decoder("image").parameters().front().options();
    for (std::int64_t done = 0; done < n; done += 250) {
      const auto rows = std::min<std::int64_t>(250, n - done);
      const auto z = torch::randn({rows, run.config.model.latent_dim}, z_options);
      a.push_back(evaluator->predict(run.model->decoder("image").mean(z)).cpu());
      b.push_back(judge(m, run.model->decoder(m).mean(z), nullptr));
    }
    const auto from_image = torch::cat(a);
    const auto from_m = torch::cat(b);
    // Agreement between the two judgements (an unparsable generation disagrees).
    report["joint(image," + m + ")"] = agreement(from_image, from_m);
  }
  for (auto& [name, r] : report.items()) {
    log::info("coherence ", name, ": strict ", r["strict"].get<double>(), ", feats ",
              r["feats"].get<double>(), "/", r["groups"].get<std::int64_t>());
  }
  return report;
}

std::string coherence_markdown(const nlohmann::json& report) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(3);
  out << "| coherence | strict (all attributes right) | feats (right per item) | items |\n"
      << "| --- | ---: | ---: | ---: |\n";
  for (const auto& [name, r] : report.items()) {
    out << "| " << name << " | " << r["strict"].get<double>() << " | " << r["feats"].get<double>()
        << " / " << r["groups"].get<std::int64_t>() << " | " << r["items"].get<std::int64_t>()
        << " |\n";
  }
  return out.str();
}

}  // namespace mmkt::eval
