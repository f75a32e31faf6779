// Dataset shift for robustness evaluation (Moreno-Torres et al. 2012, "A unifying view on
// dataset shift in classification"): covariate shift changes p(x), prior shift changes p(y),
// concept shift changes p(y|x). Each is a Dataset wrapper over a base dataset; what it does
// not shift (captions, attributes, info other than the name) passes through unchanged.
// Severity >= 0; severity 0 leaves the data as it is. All randomness is seeded and portable.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mmkt/data/dataset.h"

namespace mmkt::eval {

// The kinds covariate_shift accepts: rotation, noise, blur, contrast, photo.
std::vector<std::string> covariate_shift_kinds();

// Images transformed per item (float [C,H,W] in [0,1], through OpenCV):
//   rotation: counter-clockwise (as displayed) about the centre by 15 * severity degrees,
//             bilinear, the uncovered border black (0);
//   noise:    + N(0, (0.1 * severity)^2) per pixel, clamped to [0,1], fixed per (seed, index);
//   blur:     Gaussian, sigma = 0.5 * severity, kernel 2*ceil(3 sigma) + 1, reflected border;
//   contrast: x' = m + (x - m) / (1 + severity), m the image's mean over all channels.
//   photo:    the item as a user's photo (data/photo_folder.h: grey, tinted on black or a
//             tinted product shot on a light background, one in three each; a side of H to
//             120H/28 pixels; PNG, JPEG q90 or BMP), decoded and resized back like a manifest
//             item; severity in [0, 1] is the tint strength (1: the own-data folder's
//             rendering). Square grey items only. Draws fixed per (seed, index).
// info().name becomes "<base name>+<kind>@<severity>". Unknown kind or severity < 0: InputError.
data::DatasetPtr covariate_shift(data::DatasetPtr base, const std::string& kind, double severity,
                                 std::uint64_t seed);

// Class proportions resampled: the classes present are put in a seeded random order, and the
// class at position r of C keeps round(n_c * 2^(-severity * r / (C-1))) of its n_c items (at
// least one), chosen by seed; so for balanced classes the max/min ratio is 2^severity.
// Items keep the base order. Needs a label >= 0 on every item (InputError otherwise).
data::DatasetPtr prior_shift(data::DatasetPtr base, double severity, std::uint64_t seed);

// Labels changed: round(share * N) items chosen by seed get perm[label], perm a seeded random
// cyclic permutation of the C classes (a derangement: no class maps to itself). C is the
// number of class names, or max label + 1 without them; needs C >= 2 when share > 0 and a
// label >= 0 on every item. share in [0,1].
data::DatasetPtr concept_shift(data::DatasetPtr base, double share, std::uint64_t seed);

}  // namespace mmkt::eval
