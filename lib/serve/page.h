// The page mmkt serve shows at /: one HTML document with its CSS and JS inline, loading nothing
// from outside (no CDN, no fonts). It talks to the JSON API only (serve/service.h):
//   Search     a caption box ranking the indexed images as you type; ?q=... runs a query on load
//   Image      an uploaded or dropped image -> the nearest images and the nearest captions
//   Zero-shot  an uploaded image -> DAP, IAP and text predictions over the unseen classes, with
//              each attribute's probability and share of the score gap as bars
//   Generate   a caption -> a grid of drawn images; an image -> beam-searched captions
//   Run        the configuration, the eval report and the measured latency of each endpoint
// Result images carry class="hit" and data-class (what the browser test reads).
#pragma once

#include <string>

namespace mmkt::serve {

const std::string& page_html();

}  // namespace mmkt::serve
