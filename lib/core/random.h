// splitmix64 (Steele, Lea, Flood 2014): a tiny, fast, well-mixed generator whose numbers are the
// same under every standard library, unlike std::shuffle or std::uniform_int_distribution.
// Used wherever data must be a pure function of a seed (shapes items, dataset shift, derived
// seeds).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace mmkt {

// One splitmix64 step applied to z: hashes a seed or an index into a well-mixed 64-bit value.
inline std::uint64_t mix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

struct SplitMix {
  std::uint64_t state;
  explicit SplitMix(std::uint64_t seed) : state(seed) {}
  // The canonical splitmix64 sequence: mix64 of seed, seed + g, seed + 2g, ...
  std::uint64_t next() {
    const std::uint64_t z = state;
    state += 0x9e3779b97f4a7c15ULL;
    return mix64(z);
  }
  // Uniform in [0, n) by rejection (no modulo bias; a redraw has probability < n / 2^64).
  std::uint64_t below(std::uint64_t n) {
    const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n
    while (true) {
      const std::uint64_t r = next();
      if (r >= threshold) return r % n;
    }
  }
  // Uniform in [0, 1) from the top 53 bits.
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  template <typename T>
  void shuffle(std::vector<T>& v) {  // Fisher-Yates
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }
};

}  // namespace mmkt
