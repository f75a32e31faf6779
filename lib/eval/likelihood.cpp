#include "mmkt/eval/likelihood.h"

#include <chrono>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/core/runtime.h"
#include "mmkt/data/batcher.h"

namespace mmkt::eval {

torch::Tensor importance_weighted(const models::Gaussian& proposal, const LogTarget& log_target,
                                  std::int64_t k, std::int64_t chunk) {
  MMKT_CHECK_INPUT(k >= 1, "importance sampling needs K >= 1, got ", k);
  MMKT_CHECK(chunk >= 1, "importance_weighted: chunk must be >= 1");
  std::vector<torch::Tensor> log_w;
  for (std::int64_t done = 0; done < k; done += chunk) {
    const auto s = std::min(chunk, k - done);
    const auto z = proposal.rsample(s);  // [S,B,D]
    log_w.push_back((log_target(z) - proposal.log_prob(z)).to(torch::kFloat64));
  }
  // log (1/K) sum_k w_k, in float64 so that K = 1000 terms lose nothing to rounding.
  return torch::logsumexp(torch::cat(log_w, 0), 0) - std::log(static_cast<double>(k));
}

namespace {

struct Estimate {
  std::string name;      // "log p(image,label)"
  std::string proposal;  // "q(z|image,label)"
  std::vector<std::string> targets, given;
};

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

std::vector<Estimate> plan(const std::vector<std::string>& names,
                           const std::vector<std::string>& which) {
  std::vector<Estimate> out;
  for (const auto& w : which) {
    if (w == "joint") {
      out.push_back(
          {"log p(" + join(names, ",") + ")", "q(z|" + join(names, ",") + ")", names, {}});
    } else if (w == "marginal") {
      for (const auto& m : names) out.push_back({"log p(" + m + ")", "q(z|" + m + ")", {m}, {}});
    } else if (w == "conditional") {
      for (const auto& m : names) {
        for (const auto& g : names) {
          if (m != g) out.push_back({"log p(" + m + "|" + g + ")", "q(z|" + g + ")", {m}, {g}});
        }
      }
    } else {
      fail_input("unknown likelihood estimate '", w, "' (expected joint, marginal, conditional)");
    }
  }
  return out;
}

}  // namespace

nlohmann::json likelihood_report(LoadedRun& run, const data::DatasetPtr& dataset,
                                 const LikelihoodOptions& o, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  run.model->eval();
  MMKT_CHECK_INPUT(o.batch_size >= 1 && o.max_rows >= 1,
                   "likelihood: batch_size and max_rows must be >= 1");
  const auto names = run.model->modality_names();
  const auto estimates = plan(names, o.estimates);
  const auto view = data::head(dataset, o.max_items);
  const auto items = view->size();
  MMKT_CHECK_INPUT(items > 0, dataset->info().name, ": no items to evaluate");

  auto bo = batcher_options(run, BatchPurpose::kEvaluation);
  bo.batch_size = o.batch_size;
  const auto chunk = std::max<std::int64_t>(1, o.max_rows / o.batch_size);

  nlohmann::json report{{"k", o.k}, {"items", items}, {"dataset", dataset->info().name}};
  for (std::size_t e = 0; e < estimates.size(); ++e) {
    const auto& est = estimates[e];
    // One noise stream per estimate: adding or removing another estimate changes nothing here.
    torch::manual_seed(derive_seed(o.seed, "likelihood/" + est.name));
    data::Batcher batcher(view, bo);
    batcher.start_epoch(0);
    double sum = 0, sum_sq = 0;
    std::int64_t seen = 0;
    const auto t0 = std::chrono::steady_clock::now();
    auto last_log = t0;
    while (auto batch = batcher.next()) {
      const auto inputs = inputs_from_batch(*batch, run.modalities, device);
      models::Inputs given;
      for (const auto& g : (est.given.empty() ? est.targets : est.given)) given[g] = inputs.at(g);
      const auto q = run.model->encode_subset(given);
      const bool conditional = !est.given.empty();
      const LogTarget target = [&](const torch::Tensor& z) {
        auto lp = conditional ? q.log_prob(z) : models::standard_normal_log_prob(z);
        for (const auto& m : est.targets) lp = lp + run.model->log_likelihood(m, z, inputs.at(m));
        return lp;
      };
      const auto ll = importance_weighted(q, target, o.k, chunk).cpu();
      sum += ll.sum().item<double>();
      sum_sq += ll.pow(2).sum().item<double>();
      seen += ll.size(0);
      const auto now = std::chrono::steady_clock::now();
      if (std::chrono::duration<double>(now - last_log).count() > 10 || seen == items) {
        last_log = now;
        const double secs = std::chrono::duration<double>(now - t0).count();
        const double rate = static_cast<double>(seen) / std::max(secs, 1e-9);
        log::info("likelihood ", e + 1, "/", estimates.size(), " ", est.name, " K=", o.k, ": ",
                  seen, "/", items, " items, mean ", sum / static_cast<double>(seen), " nats | ",
                  rate, " items/s | ETA ", static_cast<double>(items - seen) / rate, " s");
      }
    }
    const double n = static_cast<double>(seen);
    const double mean = sum / n;
    const double var = std::max(0.0, sum_sq / n - mean * mean);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    report["estimates"][est.name] = {{"mean", mean},
                                     {"stderr", std::sqrt(var / std::max(1.0, n - 1))},
                                     {"proposal", est.proposal},
                                     {"seconds", seconds}};
  }
  return report;
}

std::string likelihood_markdown(const nlohmann::json& report) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(2);
  out << "| estimate (K = " << report["k"].get<std::int64_t>() << ", "
      << report["items"].get<std::int64_t>()
      << " items) | nats | std. error | proposal | seconds |\n| --- | ---: | ---: | --- | ---: |\n";
  for (const auto& [name, r] : report["estimates"].items()) {
    out << "| " << name << " | " << r["mean"].get<double>() << " | " << r["stderr"].get<double>()
        << " | " << r["proposal"].get<std::string>() << " | " << std::setprecision(1)
        << r["seconds"].get<double>() << std::setprecision(2) << " |\n";
  }
  return out.str();
}

}  // namespace mmkt::eval
