// NumPy .npy files (format 1.0,
// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html), so that embeddings,
// labels and confusion matrices open in Python with numpy.load. Little-endian, C order; dtypes
// float32 '<f4', float64 '<f8', int64 '<i8', int32 '<i4', uint8 '|u1', bool '|b1'.
#pragma once

#include <string>

#include <torch/types.h>

namespace mmkt::io {

// Writes `t` (any device, any strides: a contiguous CPU copy is written) atomically as .npy 1.0
// (2.0 only if the header exceeds 64 KiB). Throws Error for an unsupported dtype.
void write_npy(const std::string& path, const torch::Tensor& t);

// Reads a .npy file of version 1.0 or 2.0 with one of the dtypes above into a CPU tensor.
// Throws InputError naming the file for a bad magic, an unsupported descr or Fortran order, a
// malformed header, or a data size that does not match the shape (checked before allocating).
torch::Tensor read_npy(const std::string& path);

}  // namespace mmkt::io
