// mmkt transfer-table (lib/transfer/table.h): hand-worked cells from hand-made result.json
// objects of each method, the method read from the result's shape, and refused inputs.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "mmkt/core/error.h"
#include "mmkt/transfer/table.h"

using namespace mmkt;
using namespace mmkt::transfer;
using Json = nlohmann::json;

namespace {

Json hbda_row(int seed, int per_class, const std::string& method, const std::string& domain,
              double test) {
  return {{"seed", seed},     {"per_class", per_class}, {"method", method},
          {"domain", domain}, {"test", test},           {"validation", 0.5}};
}

// Two seeds, two target domains: seed 0 averages (0.6 + 0.8) / 2 = 0.7, seed 1 (0.5 + 0.7) / 2
// = 0.6; mean 0.65, sample std sqrt(((0.05)^2 + (0.05)^2) / 1) = 0.0707.
Json hbda_result() {
  return {{"hbda_grid", Json::array()},
          {"rows",
           {hbda_row(0, 10, "hbda", "a", 0.6), hbda_row(0, 10, "hbda", "b", 0.8),
            hbda_row(1, 10, "hbda", "a", 0.5), hbda_row(1, 10, "hbda", "b", 0.7),
            hbda_row(0, 10, "pooled", "a", 0.4), hbda_row(0, 10, "pooled", "b", 0.4)}}};
}

}  // namespace

TEST(TransferTable, HbdaAveragesDomainsWithinSeedsThenSeeds) {
  Json other = {{"hbda_grid", Json::array()},
                {"rows", {hbda_row(0, 10, "hbda", "x", 0.9), hbda_row(0, 100, "hbda", "x", 0.95)}}};
  const auto table = transfer_table({{"shifts", hbda_result()}, {"photos", other}});
  EXPECT_EQ(table.method, "hbda");
  const std::string md = table.markdown;
  EXPECT_NE(md.find("| items per class | method | shifts | photos |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 10 | hbda | 0.650 +- 0.071 | 0.900 |"), std::string::npos) << md;
  // One seed: the value alone; a row a column lacks: "-".
  EXPECT_NE(md.find("| 10 | pooled | 0.400 | - |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 100 | hbda | - | 0.950 |"), std::string::npos) << md;
  // JSON: the per-seed means behind each cell.
  const auto& first = table.json.at("rows").at(0);
  EXPECT_EQ(first.at("row").at("method"), "hbda");
  const auto seed_means = first.at("seed_means").at("shifts").get<std::vector<double>>();
  ASSERT_EQ(seed_means.size(), 2U);
  EXPECT_NEAR(seed_means[0], 0.7, 1e-12);
  EXPECT_NEAR(seed_means[1], 0.6, 1e-12);
}

TEST(TransferTable, DwpRowsWithoutDomains) {
  Json dwp = {{"priors", Json::array()},
              {"rows",
               {{{"seed", 0}, {"per_class", 50}, {"method", "random"}, {"test", 0.79}},
                {{"seed", 1}, {"per_class", 50}, {"method", "random"}, {"test", 0.81}}}}};
  const auto table = transfer_table({{"dwp_fashion", dwp}});
  EXPECT_EQ(table.method, "dwp");
  // mean 0.80, std sqrt(2 * 0.01^2 / 1) = 0.0141
  EXPECT_NE(table.markdown.find("| 50 | random | 0.800 +- 0.014 |"), std::string::npos)
      << table.markdown;
}

TEST(TransferTable, AntidistillMetricsPerColumn) {
  auto metric = [](std::vector<double> v) {
    double mean = 0;
    for (double x : v) mean += x;
    return Json{{"mean", mean / v.size()}, {"std", 0.0}, {"values", v}};
  };
  Json a = {{"reach_reference", Json::object()},
            {"rows",
             {{{"key", "grown_e1"}, {"start", "grown"}, {"epochs", 1},
               {"probe", metric({0.9, 0.8})}, {"parameters", 10}}}}};
  const auto table = transfer_table({{"fashion", a}});
  EXPECT_EQ(table.method, "antidistill");
  EXPECT_NE(table.markdown.find("| student | epochs | fashion: probe |"), std::string::npos)
      << table.markdown;
  // mean 0.85, std sqrt(2 * 0.05^2) = 0.0707; "parameters" is not a metric column.
  EXPECT_NE(table.markdown.find("| grown | 1 | 0.850 +- 0.071 |"), std::string::npos)
      << table.markdown;
}

TEST(TransferTable, RefusesMixedMethodsUnknownShapesAndEmptyRows) {
  Json dwp = {{"priors", Json::array()}, {"rows", Json::array({hbda_row(0, 1, "m", "d", 0.5)})}};
  try {
    transfer_table({{"h", hbda_result()}, {"d", dwp}});
    FAIL() << "mixed methods accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("d is a dwp result but h is hbda"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(transfer_table({{"x", Json{{"rows", Json::array()}}}}), InputError);
  EXPECT_THROW(transfer_table({{"x", Json{{"hbda_grid", Json::array()}, {"rows", Json::array()}}}}),
               InputError);
  EXPECT_THROW(transfer_table({}), InputError);
  Json bad = {{"hbda_grid", Json::array()}, {"rows", {{{"seed", 0}, {"method", "m"}}}}};
  try {
    transfer_table({{"folder", bad}});
    FAIL() << "a row without per_class accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("folder/result.json: a row without a valid 'per_class'"),
              std::string::npos)
        << e.what();
  }
}
