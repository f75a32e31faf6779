// `mmkt transfer-table DIR...`: one comparison table from several `mmkt transfer` outputs of
// the same method, e.g. the hbda experiments on covariate shifts, user photos and shapes side by
// side. Each output folder becomes a column (named by the folder); the rows are the method's
// cells:
//   hbda, dwp     one row per (items per class, method): the test accuracy averaged over the
//                 folder's target domains within each seed, then mean +- std over the seeds;
//   antidistill   one row per student (start and epochs): each metric's mean +- std as the
//                 experiment reported it.
// A cell a folder lacks is "-". The method is read from the shape of result.json (hbda writes
// hbda_grid, dwp priors, antidistill reach_reference), so results written before this command
// existed are read too.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace mmkt::transfer {

// "hbda", "dwp" or "antidistill" for a transfer result.json; InputError naming `source`
// otherwise.
std::string transfer_result_method(const nlohmann::json& result, const std::string& source);

struct TransferTable {
  std::string method;
  nlohmann::json json;   // {"method", "columns": [...], "rows": [{"row": ..., "cells": {...}}]}
  std::string markdown;  // the same as a Markdown table
};

// results: (column name, parsed result.json) pairs, all of one method (InputError otherwise, and
// for an empty list or a result without rows).
TransferTable transfer_table(const std::vector<std::pair<std::string, nlohmann::json>>& results);

}  // namespace mmkt::transfer
