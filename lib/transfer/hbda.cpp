#include "mmkt/transfer/hbda.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <map>
#include <sstream>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/core/progress.h"
#include "mmkt/core/random.h"
#include "mmkt/data/labelled_images.h"
#include "mmkt/data/shapes.h"
#include "mmkt/distill/student.h"
#include "mmkt/eval/report.h"
#include "mmkt/eval/shift.h"
#include "mmkt/io/files.h"
#include "mmkt/io/json_config.h"
#include "mmkt/transfer/experiment.h"
#include "mmkt/transfer/hierarchical_prior.h"

namespace mmkt::transfer {

using nlohmann::json;

nlohmann::json hbda_options_to_json(const HbdaOptions& o) {
  return {{"dataset", o.dataset},
          {"student", o.student},
          {"latent_dim", o.latent_dim},
          {"source_per_class", o.source_per_class},
          {"targets", o.targets},
          {"target_per_class", o.target_per_class},
          {"validation_per_class", o.validation_per_class},
          {"test_items", o.test_items},
          {"seeds", o.seeds},
          {"steps", o.steps},
          {"batch_size", o.batch_size},
          {"eval_every", o.eval_every},
          {"lr", o.lr},
          {"top_precision", o.top_precision},
          {"domain_precision", o.domain_precision},
          {"methods", o.methods},
          {"shapes_image_size", o.shapes_image_size},
          {"shapes_train_items", o.shapes_train_items}};
}

namespace {

const std::vector<std::string>& all_methods() {
  static const std::vector<std::string> m = {"source only", "separate", "pooled",
                                             "finetune",    "hbda",     "hbda-domain"};
  return m;
}

}  // namespace

HbdaOptions hbda_options_from_json(const nlohmann::json& user, const std::string& source) {
  HbdaOptions o;
  const json j = io::merge_strict(hbda_options_to_json(o), user, source);
  o.dataset = read_option<std::string>(j, "dataset", source);
  o.student = read_option<std::string>(j, "student", source);
  o.latent_dim = read_option<std::int64_t>(j, "latent_dim", source);
  o.source_per_class = read_option<std::int64_t>(j, "source_per_class", source);
  o.targets = read_option<std::vector<std::string>>(j, "targets", source);
  o.target_per_class = read_option<std::vector<std::int64_t>>(j, "target_per_class", source);
  o.validation_per_class = read_option<std::int64_t>(j, "validation_per_class", source);
  o.test_items = read_option<std::int64_t>(j, "test_items", source);
  o.seeds = read_option<std::vector<std::uint64_t>>(j, "seeds", source);
  o.steps = read_option<std::int64_t>(j, "steps", source);
  o.batch_size = read_option<std::int64_t>(j, "batch_size", source);
  o.eval_every = read_option<std::int64_t>(j, "eval_every", source);
  o.lr = read_option<double>(j, "lr", source);
  o.top_precision = read_option<double>(j, "top_precision", source);
  o.domain_precision = read_option<std::vector<double>>(j, "domain_precision", source);
  o.methods = read_option<std::vector<std::string>>(j, "methods", source);
  o.shapes_image_size = read_option<std::int64_t>(j, "shapes_image_size", source);
  o.shapes_train_items = read_option<std::int64_t>(j, "shapes_train_items", source);

  const bool shapes = shapes_dataset_level(o.dataset) > 0;
  MMKT_CHECK_INPUT(o.dataset == "mnist" || o.dataset == "fashion-mnist" || shapes, source,
                   ": dataset '", o.dataset,
                   "' (expected mnist, fashion-mnist or shapes:1 .. shapes:5)");
  MMKT_CHECK_INPUT(o.shapes_image_size >= 16 && o.shapes_train_items > 0, source,
                   ": shapes_image_size must be >= 16 and shapes_train_items > 0");
  MMKT_CHECK_INPUT(o.latent_dim > 0 && o.source_per_class > 0 && o.validation_per_class > 0 &&
                       o.test_items > 0 && o.steps > 0 && o.batch_size > 0 && o.eval_every > 0,
                   source,
                   ": latent_dim, source_per_class, validation_per_class, test_items, steps, "
                   "batch_size and eval_every must be positive");
  MMKT_CHECK_INPUT(!o.targets.empty(), source, ": targets: at least one target domain");
  for (const auto& t : o.targets) {
    if (shapes) {
      MMKT_CHECK_INPUT(shapes_dataset_level(t) > 0, source, ": target '", t,
                       "' (a shapes source takes shapes levels as targets, e.g. shapes:4)");
      continue;
    }
    const auto spec = eval::parse_shift_spec(t);
    const auto kinds = eval::covariate_shift_kinds();
    MMKT_CHECK_INPUT(std::find(kinds.begin(), kinds.end(), spec.kind) != kinds.end() &&
                         spec.severities.size() == 1,
                     source, ": target '", t,
                     "' (expected one covariate shift kind:severity, e.g. rotation:3)");
  }
  MMKT_CHECK_INPUT(!o.target_per_class.empty() && !o.seeds.empty(), source,
                   ": target_per_class and seeds must not be empty");
  for (auto n : o.target_per_class) {
    MMKT_CHECK_INPUT(n > 0, source, ": target_per_class entries must be positive");
  }
  MMKT_CHECK_INPUT(std::isfinite(o.lr) && o.lr > 0, source, ": lr must be positive");
  MMKT_CHECK_INPUT(std::isfinite(o.top_precision) && o.top_precision >= 0, source,
                   ": top_precision must be >= 0");
  for (double p : o.domain_precision) {
    MMKT_CHECK_INPUT(std::isfinite(p) && p > 0, source,
                     ": domain_precision entries must be positive");
  }
  for (const auto& m : o.methods) {
    MMKT_CHECK_INPUT(
        std::find(all_methods().begin(), all_methods().end(), m) != all_methods().end(), source,
        ": unknown method '", m,
        "' (expected source only, separate, pooled, finetune, hbda or hbda-domain)");
  }
  const bool hbda = contains(o.methods, "hbda") || contains(o.methods, "hbda-domain");
  MMKT_CHECK_INPUT(!hbda || !o.domain_precision.empty(), source,
                   ": hbda needs at least one domain_precision");
  return o;
}

namespace {

struct Split {
  torch::Tensor x;  // [N,C,H,W] float in [0,1]
  torch::Tensor y;  // [N] int64
  std::int64_t size() const { return y.size(0); }
};

struct Domain {
  std::string name;
  Split train, validation, test;
};

// The training and test images of one domain (the source unshifted), before any split, with
// their labels and the training items of each class. Covariate shifts share the source's
// labels; every shapes level is its own draw.
struct DomainSource {
  std::string name;
  data::DatasetPtr train, test;
  torch::Tensor train_labels, test_labels;          // [N] int64
  std::vector<std::vector<std::int64_t>> by_class;  // training indices of each class
};

struct Data {
  std::vector<DomainSource> sources;  // 0 = source, 1.. = targets
  std::int64_t classes = 0;
  std::vector<std::int64_t> image_shape;
};

std::vector<std::vector<std::int64_t>> indices_by_class(const torch::Tensor& labels,
                                                        std::int64_t classes) {
  std::vector<std::vector<std::int64_t>> by_class(static_cast<std::size_t>(classes));
  const auto* l = labels.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < labels.size(0); ++i) {
    by_class[static_cast<std::size_t>(l[i])].push_back(i);
  }
  return by_class;
}

// Source and targets as covariate shifts of one IDX dataset.
Data load_shifted_domains(const HbdaOptions& o) {
  Data d;
  data::LabelledImagesOptions lo;
  lo.dataset = o.dataset;
  lo.attributes_file = "none";
  lo.split = "train";
  const auto train = std::make_shared<data::LabelledImageDataset>(lo);
  lo.split = "test";
  const auto test = std::make_shared<data::LabelledImageDataset>(lo);
  d.image_shape = train->info().image_shape;
  const auto train_labels = train->all_labels();
  const auto test_labels = test->all_labels();
  d.classes = train_labels.max().item<std::int64_t>() + 1;
  const auto by_class = indices_by_class(train_labels, d.classes);
  d.sources.push_back({"clean", train, test, train_labels, test_labels, by_class});
  for (const auto& t : o.targets) {
    const auto spec = eval::parse_shift_spec(t);
    const double severity = spec.severities.front();
    // The shift's own randomness (noise) is a fixed function of the domain, not of the seed.
    const std::uint64_t shift_seed = derive_seed(0, "hbda-shift-" + t);
    d.sources.push_back({t, eval::covariate_shift(train, spec.kind, severity, shift_seed),
                         eval::covariate_shift(test, spec.kind, severity, shift_seed),
                         train_labels, test_labels, by_class});
  }
  return d;
}

// Source and targets as shapes levels, the shape as the label.
Data load_shapes_domains(const HbdaOptions& o) {
  Data d;
  d.classes = 5;
  d.image_shape = {3, o.shapes_image_size, o.shapes_image_size};
  auto level_split = [&](int level, std::uint64_t seed, std::int64_t items) {
    data::ShapesOptions so;
    so.level = level;
    so.size = items;
    so.seed = seed;
    so.image_size = static_cast<int>(o.shapes_image_size);
    return std::make_shared<const data::ShapesDataset>(so);
  };
  std::vector<std::string> names = {o.dataset};
  names.insert(names.end(), o.targets.begin(), o.targets.end());
  for (const auto& name : names) {
    const int level = shapes_dataset_level(name);
    const auto train = level_split(level, 0, o.shapes_train_items);
    const auto test = level_split(level, 1, o.test_items);
    const auto train_labels = shapes_shape_labels(*train);
    d.sources.push_back({name, train, test, train_labels, shapes_shape_labels(*test),
                         indices_by_class(train_labels, d.classes)});
  }
  return d;
}

Data load_data(const HbdaOptions& o) {
  Data d = shapes_dataset_level(o.dataset) > 0 ? load_shapes_domains(o) : load_shifted_domains(o);
  const std::int64_t largest_target =
      *std::max_element(o.target_per_class.begin(), o.target_per_class.end());
  const std::int64_t needed = o.source_per_class + static_cast<std::int64_t>(o.targets.size()) *
                                                       (o.validation_per_class + largest_target);
  for (const auto& source : d.sources) {
    std::int64_t smallest = std::numeric_limits<std::int64_t>::max();
    for (const auto& c : source.by_class) smallest = std::min<std::int64_t>(smallest, c.size());
    MMKT_CHECK_INPUT(needed <= smallest, "hbda: the domains need ", needed,
                     " disjoint training items per class, the smallest class of ", source.name,
                     " has ", smallest);
    MMKT_CHECK_INPUT(o.test_items <= source.test->size(), "hbda: test_items ", o.test_items,
                     " > the ", source.test->size(), " test items of ", source.name);
  }
  return d;
}

Split take(const data::DatasetPtr& images, const torch::Tensor& labels,
           const std::vector<std::int64_t>& indices) {
  Split s;
  s.x = images->images(indices).contiguous();
  s.y = labels.index_select(0, torch::tensor(indices, torch::kInt64)).contiguous();
  return s;
}

// The domains of one seed and target size: per class, the seed's shuffle of the class's
// training items is cut into [source | target 1 validation | target 1 train (largest size) |
// target 2 ...], so the target items of a smaller size are a subset of a larger size's and
// the validation items do not depend on the size. Each domain cuts its own class lists
// (identical for covariate shifts, which makes their items disjoint across domains).
std::vector<Domain> make_domains(const Data& d, const HbdaOptions& o, std::uint64_t seed,
                                 std::int64_t per_class) {
  const std::int64_t largest =
      *std::max_element(o.target_per_class.begin(), o.target_per_class.end());
  std::vector<std::vector<std::int64_t>> train(d.sources.size()), validation(d.sources.size());
  for (std::size_t t = 0; t < d.sources.size(); ++t) {
    const auto& by_class = d.sources[t].by_class;
    for (std::size_t c = 0; c < by_class.size(); ++c) {
      auto items = by_class[c];
      SplitMix rng(derive_seed(seed, "hbda-items-" + std::to_string(c)));
      rng.shuffle(items);
      auto at = items.begin();
      if (t == 0) {
        train[0].insert(train[0].end(), at, at + o.source_per_class);
        continue;
      }
      at += o.source_per_class + static_cast<std::int64_t>(t - 1) *
                                     (o.validation_per_class + largest);
      validation[t].insert(validation[t].end(), at, at + o.validation_per_class);
      at += o.validation_per_class;
      train[t].insert(train[t].end(), at, at + per_class);
    }
  }
  std::vector<std::int64_t> test_rows(static_cast<std::size_t>(o.test_items));
  for (std::int64_t i = 0; i < o.test_items; ++i) test_rows[static_cast<std::size_t>(i)] = i;
  std::vector<Domain> out;
  for (std::size_t t = 0; t < d.sources.size(); ++t) {
    Domain dom;
    dom.name = d.sources[t].name;
    const auto& source = d.sources[t];
    dom.train = take(source.train, source.train_labels, train[t]);
    if (t > 0) dom.validation = take(source.train, source.train_labels, validation[t]);
    dom.test = take(source.test, source.test_labels, test_rows);
    out.push_back(std::move(dom));
  }
  return out;
}

struct Member {
  std::string name;
  distill::Student model{nullptr};
  std::vector<std::size_t> domains;  // the domains whose items it learns from
  std::int64_t items = 0;            // N_m: their training items together
};

// One (method, model, domain) judged by early stopping on the domain's validation items.
struct Watch {
  std::string method;
  std::size_t member = 0, domain = 0;
  double best_validation = -1;
  std::int64_t best_step = 0;
  double test = std::numeric_limits<double>::quiet_NaN();
};

Watch watch(std::string method, std::size_t member, std::size_t domain) {
  Watch w;
  w.method = std::move(method);
  w.member = member;
  w.domain = domain;
  return w;
}

distill::Student new_student(const HbdaOptions& o, const Data& d, std::uint64_t init_seed,
                             const torch::Device& device) {
  models::ModalityConfig image;
  image.name = "image";
  image.kind = models::ModalityKind::kImage;
  image.encoder = "mlp";
  image.shape = d.image_shape;
  const auto spec = distill::parse_student_spec(o.student, image, o.latent_dim, d.classes);
  torch::manual_seed(init_seed);
  distill::Student s(spec);
  s->to(device);
  return s;
}

void copy_parameters(distill::Student& to, distill::Student& from) {
  torch::NoGradGuard no_grad;
  auto dst = to->parameters();
  auto src = from->parameters();
  for (std::size_t i = 0; i < dst.size(); ++i) dst[i].copy_(src[i]);
}

torch::Tensor logits(distill::Student& s, const torch::Tensor& x) {
  return s->logits(s->encode(models::ModalityInput{x, {}}).mu);
}

double accuracy(distill::Student& s, const Split& split, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  s->eval();
  std::int64_t right = 0;
  const std::int64_t n = split.size();
  for (std::int64_t at = 0; at < n; at += 2000) {
    const std::int64_t k = std::min<std::int64_t>(2000, n - at);
    const auto predicted = logits(s, split.x.narrow(0, at, k).to(device)).argmax(1).cpu();
    right += predicted.eq(split.y.narrow(0, at, k)).sum().item<std::int64_t>();
  }
  s->train();
  return static_cast<double>(right) / static_cast<double>(n);
}

struct TrainContext {
  const HbdaOptions& o;
  const std::vector<Domain>& domains;
  const torch::Device& device;
  std::uint64_t seed;
  std::int64_t per_class;
  std::string log_path;
};

// Trains the members together for o.steps steps (one Adam over all of them). Without a prior a
// member minimises sum_d (N_d/N_m) CE_d + top_precision/(2 N_m) ||theta_m||^2; with one,
// member m (one domain d) minimises CE_d + prior.domain_penalty(m) / N_d with theta* set by
// its closed form before every step. Updates the watches every eval_every steps.
void train_members(std::vector<Member>& members, HierarchicalPrior* prior,
                   std::vector<Watch>& watches, const TrainContext& c, const std::string& what,
                   const json& log_tags) {
  std::vector<torch::Tensor> params;
  for (auto& m : members) {
    for (const auto& p : m.model->parameters()) params.push_back(p);
  }
  torch::optim::Adam optimizer(params, torch::optim::AdamOptions(c.o.lr));
  SplitMix rng(derive_seed(c.seed, "hbda-batches-" + what));
  auto judge = [&](std::int64_t step) {
    json row = log_tags;
    row["step"] = step;
    for (auto& w : watches) {
      auto& model = members[w.member].model;
      const auto& dom = c.domains[w.domain];
      const double v =
          accuracy(model, dom.validation.size() > 0 ? dom.validation : dom.train, c.device);
      row["validation"][w.method + " / " + dom.name] = v;
      if (v > w.best_validation) {
        w.best_validation = v;
        w.best_step = step;
        w.test = accuracy(model, dom.test, c.device);
      }
    }
    return row;
  };
  append_jsonl(c.log_path, judge(0));
  LoopProgress progress(what, 1, c.o.steps, c.o.progress_seconds, "items/s");
  progress.start_epoch(0);
  std::int64_t rows_per_step = 0;
  for (const auto& m : members) {
    rows_per_step += static_cast<std::int64_t>(m.domains.size()) * c.o.batch_size;
  }
  double loss_sum = 0;
  for (std::int64_t step = 0; step < c.o.steps; ++step) {
    if (prior != nullptr) prior->update_top();
    optimizer.zero_grad();
    auto loss = torch::zeros({});
    for (std::size_t mi = 0; mi < members.size(); ++mi) {
      auto& m = members[mi];
      auto member_loss = torch::zeros({}).to(c.device);
      for (auto di : m.domains) {
        const auto& train = c.domains[di].train;
        std::vector<std::int64_t> rows(static_cast<std::size_t>(c.o.batch_size));
        for (auto& r : rows) r = static_cast<std::int64_t>(rng.below(train.size()));
        const auto idx = torch::tensor(rows, torch::kInt64);
        const auto x = train.x.index_select(0, idx).to(c.device);
        const auto y = train.y.index_select(0, idx).to(c.device);
        const double share = static_cast<double>(train.size()) / static_cast<double>(m.items);
        member_loss =
            member_loss + share * torch::nn::functional::cross_entropy(logits(m.model, x), y);
      }
      const double n = static_cast<double>(m.items);
      if (prior != nullptr) {
        member_loss = member_loss + prior->domain_penalty(mi).to(c.device) / n;
      } else if (c.o.top_precision > 0) {
        member_loss =
            member_loss + c.o.top_precision * half_squared_norm(m.model->parameters()) / n;
      }
      loss = loss + member_loss.cpu();
    }
    const double value = loss.item<double>();
    check_finite_loss(value, what + " step " + std::to_string(step + 1), "", "lower lr");
    loss.backward();
    optimizer.step();
    loss_sum += value;
    std::ostringstream details;
    details << std::setprecision(4) << "loss " << loss_sum / static_cast<double>(step + 1);
    progress.step(step, (step + 1) * rows_per_step, details.str());
    if ((step + 1) % c.o.eval_every == 0 || step + 1 == c.o.steps) {
      auto row = judge(step + 1);
      row["loss"] = loss_sum / static_cast<double>(step + 1);
      row["seconds"] = progress.seconds();
      append_jsonl(c.log_path, row);
      loss_sum = 0;
    }
  }
}

json watch_row(const Watch& w, const std::vector<Domain>& domains, std::uint64_t seed,
               std::int64_t per_class) {
  return {{"seed", seed},
          {"per_class", per_class},
          {"method", w.method},
          {"domain", domains[w.domain].name},
          {"best_step", w.best_step},
          {"validation", w.best_validation},
          {"test", w.test}};
}

}  // namespace

nlohmann::json run_hbda(const HbdaOptions& o, const Runtime& rt) {
  MMKT_CHECK_INPUT(!o.out_dir.empty(), "hbda: no output folder");
  std::filesystem::create_directories(o.out_dir);
  io::write_json_file(o.out_dir + "/config.json", hbda_options_to_json(o));
  const std::string log_path = o.out_dir + "/log.jsonl";
  std::filesystem::remove(log_path);
  const Data data = load_data(o);
  log::info("hbda: ", o.dataset, ", source ", o.source_per_class, " items per class, ",
            o.targets.size(), " target domains, student ", o.student);
  const auto started = std::chrono::steady_clock::now();
  json rows = json::array(), grid = json::array();
  for (const auto seed : o.seeds) {
    for (const auto per_class : o.target_per_class) {
      const auto domains = make_domains(data, o, seed, per_class);
      const TrainContext c{o, domains, rt.device, seed, per_class, log_path};
      const std::size_t targets = domains.size();
      auto tag = [&](const std::string& method, double lambda) {
        json t{{"seed", seed}, {"per_class", per_class}, {"method", method}};
        if (lambda > 0) t["lambda"] = lambda;
        return t;
      };
      auto init_seed = [&](const std::string& what) {
        return derive_seed(seed, "hbda-init-" + what);
      };
      const std::string at =
          "seed " + std::to_string(seed) + ", " + std::to_string(per_class) + "/class: ";
      // separate (and source only: the source's separate model judged on the targets)
      if (contains(o.methods, "separate") || contains(o.methods, "source only")) {
        std::vector<Member> members;
        std::vector<Watch> watches;
        for (std::size_t d = 0; d < targets; ++d) {
          const bool source = d == 0;
          if (!source && !contains(o.methods, "separate")) continue;
          members.push_back({domains[d].name,
                             new_student(o, data, init_seed(domains[d].name), rt.device),
                             {d},
                             domains[d].train.size()});
          if (source && contains(o.methods, "source only")) {
            for (std::size_t t = 1; t < targets; ++t) {
              watches.push_back(watch("source only", members.size() - 1, t));
            }
          }
          if (!source && contains(o.methods, "separate"))
            watches.push_back(watch("separate", members.size() - 1, d));
        }
        train_members(members, nullptr, watches, c, at + "separate", tag("separate", 0));
        for (const auto& w : watches) rows.push_back(watch_row(w, domains, seed, per_class));
      }
      // pooled, then finetune from it
      if (contains(o.methods, "pooled") || contains(o.methods, "finetune")) {
        Member pooled{"pooled", new_student(o, data, init_seed("pooled"), rt.device), {}, 0};
        for (std::size_t d = 0; d < targets; ++d) {
          pooled.domains.push_back(d);
          pooled.items += domains[d].train.size();
        }
        std::vector<Member> members{pooled};
        std::vector<Watch> watches;
        for (std::size_t t = 1; t < targets; ++t) watches.push_back(watch("pooled", 0, t));
        train_members(members, nullptr, watches, c, at + "pooled", tag("pooled", 0));
        if (contains(o.methods, "pooled")) {
          for (const auto& w : watches) rows.push_back(watch_row(w, domains, seed, per_class));
        }
        if (contains(o.methods, "finetune")) {
          std::vector<Member> tuned;
          std::vector<Watch> tuned_watches;
          for (std::size_t t = 1; t < targets; ++t) {
            Member m{domains[t].name,
                     new_student(o, data, init_seed("finetune"), rt.device),
                     {t},
                     domains[t].train.size()};
            copy_parameters(m.model, members[0].model);
            tuned.push_back(m);
            tuned_watches.push_back(watch("finetune", tuned.size() - 1, t));
          }
          train_members(tuned, nullptr, tuned_watches, c, at + "finetune", tag("finetune", 0));
          for (const auto& w : tuned_watches) {
            rows.push_back(watch_row(w, domains, seed, per_class));
          }
        }
      }
      // hbda over the lambda_d grid, chosen by mean best validation accuracy on the targets
      if (contains(o.methods, "hbda") || contains(o.methods, "hbda-domain")) {
        // One joint training with lambda_d = lambdas[d]; the targets' watches.
        auto train_hbda = [&](const std::vector<double>& lambdas, const std::string& method,
                              const std::string& label, json log_tag) {
          std::vector<Member> members;
          std::vector<std::vector<torch::Tensor>> params;
          std::vector<Watch> watches;
          for (std::size_t d = 0; d < targets; ++d) {
            members.push_back(
                {domains[d].name,
                 new_student(o, data, init_seed("hbda-" + domains[d].name), rt.device),
                 {d},
                 domains[d].train.size()});
            params.push_back(members.back().model->parameters());
            if (d > 0) watches.push_back(watch(method, d, d));
          }
          HierarchicalPrior prior(params, lambdas, o.top_precision);
          train_members(members, &prior, watches, c, at + label, log_tag);
          return watches;
        };
        double best_score = -1, best_lambda = 0;
        std::vector<Watch> best_watches;
        // Per target: the grid's lambda with the best validation accuracy on that target.
        std::vector<double> domain_lambda(targets, 0.0), domain_best(targets, -1.0);
        for (const double lambda : o.domain_precision) {
          std::ostringstream label;
          label << "hbda lambda " << lambda;
          const auto watches = train_hbda(std::vector<double>(targets, lambda), "hbda", label.str(),
                                          tag("hbda", lambda));
          double score = 0;
          for (const auto& w : watches) {
            score += w.best_validation;
            if (w.best_validation > domain_best[w.domain]) {
              domain_best[w.domain] = w.best_validation;
              domain_lambda[w.domain] = lambda;
            }
          }
          score /= static_cast<double>(watches.size());
          grid.push_back({{"seed", seed},
                          {"per_class", per_class},
                          {"lambda", lambda},
                          {"validation", score}});
          if (score > best_score) {
            best_score = score;
            best_lambda = lambda;
            best_watches = watches;
          }
          log::info(at, label.str(), ": mean validation accuracy on the targets ", score);
        }
        if (contains(o.methods, "hbda")) {
          for (const auto& w : best_watches) {
            auto row = watch_row(w, domains, seed, per_class);
            row["lambda"] = best_lambda;
            rows.push_back(row);
          }
        }
        if (contains(o.methods, "hbda-domain")) {
          // Finkel and Manning's sigma_d per domain: each target's lambda_d chosen above, the
          // source's the shared grid's choice, then one joint training with them.
          domain_lambda[0] = best_lambda;
          json log_tag = tag("hbda-domain", 0);
          log_tag["lambdas"] = domain_lambda;
          const auto watches =
              train_hbda(domain_lambda, "hbda-domain", "hbda lambda per domain", log_tag);
          for (const auto& w : watches) {
            auto row = watch_row(w, domains, seed, per_class);
            row["lambda"] = domain_lambda[w.domain];
            row["lambdas"] = domain_lambda;
            rows.push_back(row);
          }
        }
      }
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  json result{{"config", hbda_options_to_json(o)},
              {"rows", rows},
              {"hbda_grid", grid},
              {"seconds", seconds},
              {"threads", rt.threads}};
  io::write_json_file(o.out_dir + "/result.json", result);
  io::write_file_atomic(o.out_dir + "/result.md", hbda_markdown(result));
  return result;
}

std::string hbda_markdown(const nlohmann::json& result) {
  const auto& config = result.at("config");
  const auto targets = config.at("targets").get<std::vector<std::string>>();
  const auto sizes = config.at("target_per_class").get<std::vector<std::int64_t>>();
  const auto seeds = config.at("seeds").size();
  std::ostringstream md;
  md << "Hierarchical-prior domain adaptation (Finkel and Manning 2009) on "
     << config.at("dataset").get<std::string>() << ": student "
     << config.at("student").get<std::string>() << ", source (clean) "
     << config.at("source_per_class") << " items per class, " << config.at("steps")
     << " steps per training. Target-domain test accuracy (" << config.at("test_items")
     << " test items per domain) at the step of best validation accuracy ("
     << config.at("validation_per_class") << " validation items per class per target), mean +- "
     << "std over " << seeds << " seeds.\n\n";
  md << "| target items per class | method |";
  for (const auto& t : targets) md << " " << t << " |";
  md << " mean over targets |\n| ---: | --- |";
  for (std::size_t i = 0; i <= targets.size(); ++i) md << " ---: |";
  md << "\n";
  const auto methods = config.at("methods").get<std::vector<std::string>>();
  for (const auto n : sizes) {
    for (const auto& method : all_methods()) {
      if (std::find(methods.begin(), methods.end(), method) == methods.end()) continue;
      std::map<std::string, std::vector<double>> by_domain;
      std::map<std::uint64_t, std::vector<double>> by_seed;
      for (const auto& r : result.at("rows")) {
        if (r.at("per_class") != n || r.at("method") != method) continue;
        by_domain[r.at("domain").get<std::string>()].push_back(r.at("test").get<double>());
        by_seed[r.at("seed").get<std::uint64_t>()].push_back(r.at("test").get<double>());
      }
      md << "| " << n << " | " << method << " |";
      for (const auto& t : targets) md << " " << mean_std(by_domain[t]) << " |";
      std::vector<double> means;
      for (const auto& [s, v] : by_seed) {
        double m = 0;
        for (double x : v) m += x;
        means.push_back(m / static_cast<double>(v.size()));
      }
      md << " " << mean_std(means) << " |\n";
    }
  }
  if (!result.at("hbda_grid").empty()) {
    md << "\nhbda's lambda_d grid: mean validation accuracy over the targets (mean +- std over "
          "seeds); the chosen lambda_d is the best per seed and size.\n\n| target items per "
          "class |";
    const auto lambdas = config.at("domain_precision").get<std::vector<double>>();
    for (double l : lambdas) md << " lambda_d = " << l << " |";
    md << "\n| ---: |";
    for (std::size_t i = 0; i < lambdas.size(); ++i) md << " ---: |";
    md << "\n";
    for (const auto n : sizes) {
      md << "| " << n << " |";
      for (double l : lambdas) {
        std::vector<double> v;
        for (const auto& g : result.at("hbda_grid")) {
          if (g.at("per_class") == n && g.at("lambda").get<double>() == l) {
            v.push_back(g.at("validation").get<double>());
          }
        }
        md << " " << mean_std(v) << " |";
      }
      md << "\n";
    }
  }
  md << "\nWall time: " << std::fixed << std::setprecision(0) << result.at("seconds").get<double>()
     << " s on " << result.at("threads") << " threads.\n";
  return md.str();
}

}  // namespace mmkt::transfer
