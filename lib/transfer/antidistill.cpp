#include "mmkt/transfer/antidistill.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <map>
#include <sstream>

#include <torch/torch.h>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/distill/pipeline.h"
#include "mmkt/io/files.h"
#include "mmkt/io/json_config.h"
#include "mmkt/transfer/experiment.h"

namespace mmkt::transfer {

using nlohmann::json;

json antidistill_options_to_json(const AntidistillOptions& o) {
  return {{"teacher", o.teacher},
          {"method", o.method},
          {"small", o.small},
          {"large", o.large},
          {"small_epochs", o.small_epochs},
          {"epochs", o.epochs},
          {"seeds", o.seeds},
          {"max_items", o.max_items},
          {"batch_size", o.batch_size},
          {"lr", o.lr},
          {"grown_lr", o.grown_lr}};
}

AntidistillOptions antidistill_options_from_json(const json& user, const std::string& source) {
  AntidistillOptions o;
  const json j = io::merge_strict(antidistill_options_to_json(o), user, source);
  o.teacher = read_option<std::string>(j, "teacher", source);
  o.method = read_option<std::string>(j, "method", source);
  o.small = read_option<std::string>(j, "small", source);
  o.large = read_option<std::string>(j, "large", source);
  o.small_epochs = read_option<std::int64_t>(j, "small_epochs", source);
  o.epochs = read_option<std::vector<std::int64_t>>(j, "epochs", source);
  o.seeds = read_option<std::vector<std::uint64_t>>(j, "seeds", source);
  o.max_items = read_option<std::int64_t>(j, "max_items", source);
  o.batch_size = read_option<std::int64_t>(j, "batch_size", source);
  o.lr = read_option<double>(j, "lr", source);
  o.grown_lr = read_option<double>(j, "grown_lr", source);
  MMKT_CHECK_INPUT(!o.teacher.empty(), source,
                   ": teacher: the trained run the students learn from (--set teacher=RUN)");
  MMKT_CHECK_INPUT(o.small_epochs > 0 && o.batch_size > 0 && o.max_items >= 0, source,
                   ": small_epochs and batch_size must be positive, max_items >= 0");
  MMKT_CHECK_INPUT(std::isfinite(o.lr) && o.lr > 0, source, ": lr must be positive");
  MMKT_CHECK_INPUT(std::isfinite(o.grown_lr) && o.grown_lr >= 0, source,
                   ": grown_lr must be >= 0 (0: no extra start)");
  MMKT_CHECK_INPUT(!o.epochs.empty() && !o.seeds.empty(), source,
                   ": epochs and seeds must not be empty");
  for (std::size_t i = 0; i < o.epochs.size(); ++i) {
    MMKT_CHECK_INPUT(o.epochs[i] > 0 && (i == 0 || o.epochs[i] > o.epochs[i - 1]), source,
                     ": epochs must be positive and ascending, got ", j.at("epochs").dump());
  }
  MMKT_CHECK_INPUT(o.small != o.large, source, ": small and large are the same network (", o.small,
                   ")");
  return o;
}

namespace {

// The starts of the large student, in table order.
std::vector<std::string> starts(bool grown_lr) {
  if (grown_lr) return {"random", "grown", "grownlr", "fromsmall"};
  return {"random", "grown", "fromsmall"};
}

// The figures the experiment compares, from one student's result.json.
const std::vector<std::string>& figure_names() {
  static const std::vector<std::string> f = {"i->t mAP cos", "i->i mAP cos", "probe", "seconds"};
  return f;
}

std::map<std::string, double> figures_of(const json& r) {
  const auto& s = r.at("student");
  return {{"i->t mAP cos", s.at("retrieval").at("image->text").at("cosine").at("mAP")},
          {"i->i mAP cos", s.at("retrieval").at("image->image").at("cosine").at("mAP")},
          {"probe", s.at("probe").at("accuracy")},
          {"seconds", r.at("training").at("seconds")}};
}

// Per-epoch mean training loss from a distill log.jsonl.
std::vector<double> loss_curve(const std::string& log_path) {
  std::vector<double> out;
  std::istringstream in(io::read_file(log_path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto l = json::parse(line);
    out.push_back(l.contains("train") ? l.at("train").at("loss").get<double>()
                                      : l.at("loss").get<double>());
  }
  return out;
}

json stat(const std::vector<double>& v) {
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  const double sd = v.size() > 1 ? std::sqrt(var / static_cast<double>(v.size() - 1)) : 0.0;
  return {{"mean", mean}, {"std", sd}, {"values", v}};
}

std::string row_name(const std::string& key) {
  if (key == "small") return "small";
  return key.substr(0, key.find("_e"));
}

}  // namespace

json run_antidistill(const AntidistillOptions& o, const Runtime& rt) {
  MMKT_CHECK_INPUT(!o.out_dir.empty(), "antidistill: no output folder");
  std::filesystem::create_directories(o.out_dir);
  io::write_json_file(o.out_dir + "/config.json", antidistill_options_to_json(o));
  const auto started = std::chrono::steady_clock::now();
  bool first = true;
  json teacher_row;
  // key ("small", "random_e4", ...) -> per-seed figures, in seed order.
  std::map<std::string, std::vector<std::map<std::string, double>>> figures;
  std::map<std::string, json> parameters;
  std::map<std::string, std::vector<std::vector<double>>> curves;  // longest runs' losses
  const std::int64_t last = o.epochs.back();
  for (const auto seed : o.seeds) {
    const std::string seed_dir = o.out_dir + "/s" + std::to_string(seed);
    auto student = [&](const std::string& key, const std::string& spec, std::int64_t epochs,
                       const std::string& grow_from, const std::string& student_teacher,
                       double lr) {
      const std::string dir = seed_dir + "/" + key;
      json r;
      if (io::file_exists(dir + "/result.json")) {
        r = io::load_json_file(dir + "/result.json");
        log::info("antidistill: seed ", seed, ", ", key, ": reusing ", dir);
      } else {
        distill::DistillOptions d;
        d.teacher_dir = o.teacher;
        d.out_dir = dir;
        d.method = o.method;
        d.student = spec;
        d.grow_from = grow_from;
        d.student_teacher = student_teacher;
        d.max_items = o.max_items;
        d.teacher_metrics = first;
        d.train.epochs = epochs;
        d.train.batch_size = o.batch_size;
        d.train.lr = lr;
        Runtime seeded = rt;
        seeded.seed = seed;
        torch::manual_seed(seed);  // as `mmkt --seed` does before a distillation
        log::info("antidistill: seed ", seed, ", ", key, ": ", spec, " for ", epochs, " epochs");
        r = distill::run_distillation(d, seeded);
      }
      if (first && r.at("teacher").contains("retrieval")) teacher_row = r.at("teacher");
      first = false;
      figures[key].push_back(figures_of(r));
      parameters[key] = r.at("student").at("parameters");
      const auto epochs_key = "_e" + std::to_string(last);
      if (key.size() > epochs_key.size() &&
          key.compare(key.size() - epochs_key.size(), epochs_key.size(), epochs_key) == 0) {
        curves[row_name(key)].push_back(loss_curve(dir + "/log.jsonl"));
      }
      return dir;
    };
    const auto small_dir = student("small", o.small, o.small_epochs, "", "", o.lr);
    for (const auto e : o.epochs) {
      const auto suffix = "_e" + std::to_string(e);
      student("random" + suffix, o.large, e, "", "", o.lr);
      student("grown" + suffix, o.large, e, small_dir, "", o.lr);
      if (o.grown_lr > 0) student("grownlr" + suffix, o.large, e, small_dir, "", o.grown_lr);
      student("fromsmall" + suffix, o.large, e, "", small_dir, o.lr);
    }
  }

  // Mean +- std over seeds per row.
  json rows = json::array();
  std::map<std::string, std::map<std::string, double>> means;
  std::vector<std::string> order = {"small"};
  for (const auto& s : starts(o.grown_lr > 0)) {
    for (const auto e : o.epochs) order.push_back(s + "_e" + std::to_string(e));
  }
  for (const auto& key : order) {
    json row{
        {"key", key},
        {"start", row_name(key)},
        {"epochs", key == "small" ? o.small_epochs : std::stoll(key.substr(key.find("_e") + 2))},
        {"parameters", parameters.at(key)}};
    for (const auto& f : figure_names()) {
      std::vector<double> v;
      for (const auto& per_seed : figures.at(key)) v.push_back(per_seed.at(f));
      row[f] = stat(v);
      means[key][f] = row[f]["mean"].get<double>();
    }
    rows.push_back(row);
  }
  // The first epoch count at which each start's mean reaches the random-init student's mean
  // after the most epochs (quality figures only; seconds are how long it took).
  json reach = json::object();
  const std::string reference = "random_e" + std::to_string(last);
  for (const auto& s : starts(o.grown_lr > 0)) {
    for (const auto& f : figure_names()) {
      if (f == "seconds") continue;
      json hit = nullptr;
      for (const auto e : o.epochs) {
        const auto key = s + "_e" + std::to_string(e);
        if (means.at(key).at(f) >= means.at(reference).at(f) - 1e-12) {
          hit = {{"epochs", e}, {"seconds", means.at(key).at("seconds")}};
          break;
        }
      }
      reach[s][f] = hit;
    }
  }
  json loss = json::object();
  for (const auto& [start, per_seed] : curves) {
    std::vector<double> mean(per_seed.front().size(), 0.0);
    for (const auto& c : per_seed) {
      MMKT_CHECK(c.size() == mean.size(), "antidistill: loss curves of different lengths");
      for (std::size_t i = 0; i < c.size(); ++i) mean[i] += c[i] / per_seed.size();
    }
    loss[start] = mean;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  json result{{"config", antidistill_options_to_json(o)},
              {"teacher", teacher_row},
              {"rows", rows},
              {"reference", reference},
              {"reach_reference", reach},
              {"loss_curves", loss},
              {"seconds", seconds},
              {"threads", rt.threads}};
  io::write_json_file(o.out_dir + "/result.json", result);
  io::write_file_atomic(o.out_dir + "/result.md", antidistill_markdown(result));
  return result;
}

std::string antidistill_markdown(const json& result) {
  const auto& c = result.at("config");
  const auto small = c.at("small").get<std::string>(), large = c.at("large").get<std::string>();
  const double grown_lr = c.value("grown_lr", 0.0);
  std::ostringstream lr_text;
  lr_text << grown_lr;
  const std::map<std::string, std::string> names = {
      {"small", "small " + small + ", from the teacher"},
      {"random", large + " random init"},
      {"grown", large + " grown from the small"},
      {"grownlr", large + " grown from the small, lr " + lr_text.str()},
      {"fromsmall", large + " distilled from the small"}};
  std::ostringstream md;
  md << std::fixed;
  md << "Antidistillation from " << c.at("teacher").get<std::string>() << " ("
     << c.at("method").get<std::string>() << "), seeds " << c.at("seeds").dump()
     << ": mean +- std over seeds. 'seconds' is the student's training time (evaluation "
        "excluded).\n\n| student | epochs | params |";
  for (const auto& f : figure_names()) md << " " << f << " |";
  md << "\n| --- | ---: | ---: |";
  for (std::size_t i = 0; i < figure_names().size(); ++i) md << " ---: |";
  md << "\n";
  for (const auto& r : result.at("rows")) {
    md << "| " << names.at(r.at("start").get<std::string>()) << " | " << r.at("epochs") << " | "
       << r.at("parameters") << " |";
    for (const auto& f : figure_names()) {
      const double m = r.at(f).at("mean"), s = r.at(f).at("std");
      if (f == "seconds") {
        md << " " << std::setprecision(1) << m << " |";
      } else {
        md << " " << std::setprecision(3) << m << " +- " << s << " |";
      }
    }
    md << "\n";
  }
  const auto reference = result.at("reference").get<std::string>();
  json ref_row;
  for (const auto& r : result.at("rows")) {
    if (r.at("key") == reference) ref_row = r;
  }
  md << "\nFirst listed epoch count whose mean reaches the random-init large student's mean after "
     << ref_row.at("epochs") << " epochs:\n\n| start |";
  for (const auto& f : figure_names()) {
    if (f != "seconds") {
      md << " " << f << " >= " << std::setprecision(3) << ref_row.at(f).at("mean").get<double>()
         << " |";
    }
  }
  md << "\n| --- | ---: | ---: | ---: |\n";
  for (const auto& s : starts(grown_lr > 0)) {
    md << "| " << names.at(s) << " |";
    for (const auto& f : figure_names()) {
      if (f == "seconds") continue;
      const auto& hit = result.at("reach_reference").at(s).at(f);
      if (hit.is_null()) {
        md << " not within " << ref_row.at("epochs") << " |";
      } else {
        md << " " << hit.at("epochs") << " (" << std::setprecision(1)
           << hit.at("seconds").get<double>() << " s) |";
      }
    }
    md << "\n";
  }
  const auto& loss = result.at("loss_curves");
  if (!loss.empty()) {
    const auto n = loss.begin()->size();
    md << "\nTraining loss (" << c.at("method").get<std::string>()
       << ", mean over the epoch's steps) per epoch of the " << ref_row.at("epochs")
       << "-epoch runs, mean over seeds:\n\n| start |";
    for (std::size_t i = 0; i < n; ++i) md << " epoch " << i + 1 << " |";
    md << "\n| --- |";
    for (std::size_t i = 0; i < n; ++i) md << " ---: |";
    md << "\n";
    for (const auto& s : starts(grown_lr > 0)) {
      if (!loss.contains(s)) continue;
      md << "| " << names.at(s) << " |";
      for (const auto& v : loss.at(s)) md << " " << std::setprecision(2) << v.get<double>() << " |";
      md << "\n";
    }
  }
  md << "\nWall time: " << std::setprecision(0) << result.at("seconds").get<double>() << " s on "
     << result.at("threads") << " threads (students reused from an earlier run excluded).\n";
  return md.str();
}

}  // namespace mmkt::transfer
