// Base64 (RFC 4648, section 4: the standard alphabet with '=' padding), for images carried
// inside JSON (mmkt serve's uploads and generated pictures).
#pragma once

#include <string>

namespace mmkt::io {

std::string base64_encode(const std::string& bytes);
// Decodes `text`; InputError naming `what` on a character outside the alphabet, a length that
// is not a multiple of 4, or padding anywhere but at the end.
std::string base64_decode(const std::string& text, const std::string& what);

}  // namespace mmkt::io
