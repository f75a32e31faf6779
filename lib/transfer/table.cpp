#include "mmkt/transfer/table.h"

#include <algorithm>
#include <map>
#include <sstream>

#include "mmkt/core/error.h"
#include "mmkt/transfer/experiment.h"

namespace mmkt::transfer {
namespace {

using Json = nlohmann::json;

// Row keys in order of first appearance over all columns.
struct OrderedRows {
  std::vector<std::string> keys;
  std::map<std::string, Json> descriptions;
  void add(const std::string& key, const Json& description) {
    if (descriptions.emplace(key, description).second) keys.push_back(key);
  }
};

const Json& rows_of(const Json& result, const std::string& column) {
  MMKT_CHECK_INPUT(result.contains("rows") && result.at("rows").is_array() &&
                       !result.at("rows").empty(),
                   column, "/result.json: no rows");
  return result.at("rows");
}

template <typename T>
T field(const Json& row, const char* key, const std::string& column) {
  try {
    return row.at(key).get<T>();
  } catch (const Json::exception&) {
    fail_input(column, "/result.json: a row without a valid '", key, "': ", row.dump());
  }
}

// hbda and dwp: per (per_class, method), per seed the mean test accuracy over the domains.
// key -> seed -> (sum, count).
using SeedMeans = std::map<std::string, std::map<int, std::pair<double, int>>>;

SeedMeans accuracy_by_seed(const Json& result, const std::string& column, OrderedRows& order) {
  SeedMeans cells;
  for (const auto& row : rows_of(result, column)) {
    const auto per_class = field<int>(row, "per_class", column);
    const auto method = field<std::string>(row, "method", column);
    const auto seed = field<int>(row, "seed", column);
    const auto test = field<double>(row, "test", column);
    const std::string key = std::to_string(per_class) + "|" + method;
    order.add(key, Json{{"per_class", per_class}, {"method", method}});
    auto& acc = cells[key][seed];
    acc.first += test;
    acc.second += 1;
  }
  return cells;
}

std::string join_cells(const std::vector<std::string>& cells) {
  std::string line = "|";
  for (const auto& c : cells) line += " " + c + " |";
  return line + "\n";
}

TransferTable accuracy_table(const std::string& method,
                             const std::vector<std::pair<std::string, Json>>& results) {
  OrderedRows order;
  std::vector<SeedMeans> columns;
  for (const auto& [name, result] : results) {
    columns.push_back(accuracy_by_seed(result, name, order));
  }
  TransferTable table{method, Json::object(), ""};
  std::ostringstream md;
  md << "Test accuracy, averaged over each experiment's target domains within a seed, then mean "
        "+- std over seeds (`mmkt transfer --method "
     << method << "` outputs).\n\n";
  std::vector<std::string> header = {"items per class", "method"};
  std::vector<std::string> rule = {"---:", "---"};
  Json names = Json::array();
  for (const auto& [name, result] : results) {
    header.push_back(name);
    rule.push_back("---:");
    names.push_back(name);
  }
  md << join_cells(header) << join_cells(rule);
  Json rows = Json::array();
  for (const auto& key : order.keys) {
    const auto& d = order.descriptions.at(key);
    std::vector<std::string> line = {std::to_string(d.at("per_class").get<int>()),
                                     d.at("method").get<std::string>()};
    Json cells = Json::object();
    for (std::size_t c = 0; c < columns.size(); ++c) {
      std::vector<double> seed_means;
      const auto it = columns[c].find(key);
      if (it != columns[c].end()) {
        for (const auto& [seed, acc] : it->second) seed_means.push_back(acc.first / acc.second);
        cells[results[c].first] = seed_means;
      }
      line.push_back(mean_std(seed_means));
    }
    md << join_cells(line);
    rows.push_back({{"row", d}, {"seed_means", cells}});
  }
  table.json = {{"method", method}, {"columns", names}, {"rows", rows}};
  table.markdown = md.str();
  return table;
}

// antidistill: every metric the folder reports ({"mean", "std", "values"}) per student key.
TransferTable antidistill_table(const std::vector<std::pair<std::string, Json>>& results) {
  OrderedRows order;
  std::vector<std::string> metrics;  // in order of first appearance
  for (const auto& [name, result] : results) {
    for (const auto& row : rows_of(result, name)) {
      // The same student key can mean other epochs in another experiment (the small
      // student's own count): rows are keyed by both.
      const auto epochs = field<int>(row, "epochs", name);
      const auto student = field<std::string>(row, "key", name);
      order.add(student + "|" + std::to_string(epochs),
                Json{{"key", student}, {"start", row.value("start", student)}, {"epochs", epochs}});
      for (const auto& [metric, value] : row.items()) {
        if (value.is_object() && value.contains("mean") &&
            std::find(metrics.begin(), metrics.end(), metric) == metrics.end()) {
          metrics.push_back(metric);
        }
      }
    }
  }
  TransferTable table{"antidistill", Json::object(), ""};
  std::ostringstream md;
  md << "Antidistillation students, mean +- std over seeds as each experiment reports them "
        "(`mmkt transfer --method antidistill` outputs).\n\n";
  std::vector<std::string> header = {"student", "epochs"};
  std::vector<std::string> rule = {"---", "---:"};
  Json names = Json::array();
  for (const auto& [name, result] : results) {
    names.push_back(name);
    for (const auto& metric : metrics) {
      header.push_back(name + ": " + metric);
      rule.push_back("---:");
    }
  }
  md << join_cells(header) << join_cells(rule);
  Json rows = Json::array();
  for (const auto& key : order.keys) {
    const auto& d = order.descriptions.at(key);
    std::vector<std::string> line = {d.at("start").get<std::string>(),
                                     std::to_string(d.at("epochs").get<int>())};
    Json cells = Json::object();
    for (const auto& [name, result] : results) {
      const Json* found = nullptr;
      for (const auto& row : result.at("rows")) {
        if (row.at("key") == d.at("key") && row.at("epochs") == d.at("epochs")) found = &row;
      }
      for (const auto& metric : metrics) {
        std::vector<double> values;
        if (found != nullptr && found->contains(metric) && found->at(metric).contains("values")) {
          values = found->at(metric).at("values").get<std::vector<double>>();
          cells[name][metric] = values;
        }
        line.push_back(mean_std(values));
      }
    }
    md << join_cells(line);
    rows.push_back({{"row", d}, {"values", cells}});
  }
  table.json = {
      {"method", "antidistill"}, {"columns", names}, {"metrics", metrics}, {"rows", rows}};
  table.markdown = md.str();
  return table;
}

}  // namespace

std::string transfer_result_method(const Json& result, const std::string& source) {
  MMKT_CHECK_INPUT(result.is_object(), source, ": not a transfer result (expected a JSON object)");
  if (result.contains("hbda_grid")) return "hbda";
  if (result.contains("priors")) return "dwp";
  if (result.contains("reach_reference")) return "antidistill";
  fail_input(source,
             ": not an mmkt transfer result (none of hbda_grid, priors, reach_reference)");
}

TransferTable transfer_table(const std::vector<std::pair<std::string, Json>>& results) {
  MMKT_CHECK_INPUT(!results.empty(), "transfer-table: no results given");
  const auto method = transfer_result_method(results.front().second, results.front().first);
  for (const auto& [name, result] : results) {
    const auto m = transfer_result_method(result, name);
    MMKT_CHECK_INPUT(m == method, "transfer-table: ", name, " is a ", m, " result but ",
                     results.front().first, " is ", method, " (one method per table)");
  }
  return method == "antidistill" ? antidistill_table(results) : accuracy_table(method, results);
}

}  // namespace mmkt::transfer
