// The runtime's random numbers: one fully specified generator, so shuffles and initial weights are the same
// on every platform, compiler and standard library for a given seed.
#pragma once

#include <cmath>
#include <cstdint>

namespace nnc::rt {

// splitmix64 (Steele, Lea, Flood 2014): a tiny generator whose output is fully specified, so
// shuffles are identical across platforms, compilers and standard libraries.
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound) without modulo bias: reject the few values below 2^64 mod bound.
  uint64_t below(uint64_t bound) {
    const uint64_t threshold = (0 - bound) % bound;
    for (;;) {
      uint64_t r = next();
      if (r >= threshold) return r % bound;
    }
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Normal with `mean` and `std`, by Box-Muller.
  double normal(double mean, double std) {
    double u1 = 1.0 - uniform(), u2 = uniform();
    return mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }
};


}  // namespace nnc::rt
