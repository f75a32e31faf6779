// .npy writing and reading: round trips, the exact header bytes, and broken files rejected.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "mmkt/core/error.h"
#include "mmkt/io/files.h"
#include "mmkt/io/npy.h"

using namespace mmkt;

namespace {

std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / "mmkt_npy";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

// A .npy 1.0 file with the given header dict (padded to 64 bytes) and data bytes.
std::string npy_bytes(const std::string& dict, const std::string& data) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  return out + header + data;
}

}  // namespace

TEST(Npy, RoundTripOfEveryDtype) {
  const std::vector<torch::Tensor> tensors = {
      torch::randn({3, 4, 5}),
      torch::randn({7}, torch::kFloat64),
      torch::arange(-6, 6, torch::kInt64).reshape({3, 4}),
      torch::arange(-5, 5, torch::kInt32).reshape({2, 5}),
      torch::arange(0, 256, torch::kInt64).to(torch::kUInt8).reshape({16, 16}),
      torch::tensor({true, false, true, true}),
      torch::tensor(3.5f),       // 0-D
      torch::empty({0, 3}),      // no elements
      torch::randn({4, 6}).t(),  // not contiguous
  };
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto path = temp_path("round_trip_" + std::to_string(i) + ".npy");
    io::write_npy(path, tensors[i]);
    const auto back = io::read_npy(path);
    EXPECT_EQ(back.scalar_type(), tensors[i].scalar_type()) << i;
    EXPECT_EQ(back.sizes(), tensors[i].sizes()) << i;
    EXPECT_TRUE(torch::equal(back, tensors[i])) << i;
    EXPECT_EQ(io::file_size(path) % 64, (back.numel() * back.element_size()) % 64) << i;
  }
}

TEST(Npy, ExactHeaderOfASmallFloatTensor) {
  const auto path = temp_path("header.npy");
  io::write_npy(path, torch::arange(6, torch::kFloat32).reshape({2, 3}));
  // Dict: 59 characters. Prefix 10 + 59 + '\n' = 70 -> padded to 128: header length 118 =
  // 59 + 58 spaces + '\n'.
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  ASSERT_EQ(dict.size(), 59u);
  const std::string expected_header =
      std::string("\x93NUMPY\x01\x00\x76\x00", 10) + dict + std::string(58, ' ') + "\n";
  ASSERT_EQ(expected_header.size(), 128u);
  const std::string bytes = io::read_file(path);
  ASSERT_EQ(bytes.size(), 128u + 6 * 4);
  EXPECT_EQ(bytes.substr(0, 128), expected_header);
  // Little-endian IEEE float 1.0f = 00 00 80 3f, the second element.
  EXPECT_EQ(bytes.substr(128 + 4, 4), std::string("\x00\x00\x80\x3f", 4));
}

TEST(Npy, OneAndZeroDimensionalShapes) {
  const auto one = temp_path("one.npy"), zero = temp_path("zero.npy");
  io::write_npy(one, torch::zeros({5}, torch::kInt64));
  io::write_npy(zero, torch::tensor(1.0));
  EXPECT_NE(io::read_file(one).find("'shape': (5,), }"), std::string::npos);
  EXPECT_NE(io::read_file(zero).find("'shape': (), }"), std::string::npos);
}

TEST(Npy, ReadsHeadersWrittenByNumpy) {
  // numpy >= 1.17 pads with extra spaces for growth and may use other spacing; version 2.0
  // has a 4-byte length.
  const auto path = temp_path("numpy_style.npy");
  std::string data(3 * 8, '\0');
  data[0] = 1;
  io::write_file_atomic(path,
                        npy_bytes("{'descr':'<i8','fortran_order':False,'shape':(3,)}   ", data));
  EXPECT_TRUE(torch::equal(io::read_npy(path), torch::tensor({1, 0, 0}, torch::kInt64)));

  std::string v2 =
      npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", "\x07\x09");
  // Rewrite as version 2.0: 12-byte prefix, so the dict moves by two bytes (still valid).
  const std::string header = v2.substr(10, v2.size() - 12);
  std::string out("\x93NUMPY\x02\x00", 8);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  io::write_file_atomic(path, out + header + "\x07\x09");
  EXPECT_TRUE(torch::equal(io::read_npy(path), torch::tensor({7, 9}, torch::kUInt8)));
}

TEST(Npy, TruncatedAndTrailingDataRejected) {
  const auto path = temp_path("truncated.npy");
  io::write_npy(path, torch::ones({4, 4}));
  std::string bytes = io::read_file(path);
  io::write_file_atomic(path, bytes.substr(0, bytes.size() - 1));
  try {
    io::read_npy(path);
    FAIL() << "truncated file accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  io::write_file_atomic(path, bytes + "x");
  EXPECT_THROW(io::read_npy(path), InputError);
  io::write_file_atomic(path, bytes.substr(0, 40));  // cut inside the header
  EXPECT_THROW(io::read_npy(path), InputError);
}

TEST(Npy, HugeShapeRejectedWithoutAllocating) {
  // 10^18 floats would need 4 EB: the size check must fail before torch::empty is reached.
  const auto path = temp_path("huge.npy");
  io::write_file_atomic(
      path,
      npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000000000), }",
                std::string(16, '\0')));
  try {
    io::read_npy(path);
    FAIL() << "huge shape accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("1000000000, 1000000000"), std::string::npos) << e.what();
  }
  // A product that overflows 64 bits.
  io::write_file_atomic(
      path,
      npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }",
                ""));
  EXPECT_THROW(io::read_npy(path), InputError);
}

TEST(Npy, BadMagicDescrOrderAndHeaderRejected) {
  const auto path = temp_path("bad.npy");
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
  auto rejects = [&](const std::string& bytes, const std::string& why) {
    io::write_file_atomic(path, bytes);
    try {
      io::read_npy(path);
      ADD_FAILURE() << "accepted: " << why;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  std::string bad_magic = npy_bytes(ok, "abcd");
  bad_magic[1] = 'n';
  rejects(bad_magic, "bad magic");
  rejects("PK\x03\x04", "not a .npy file");
  rejects(npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", "abcd"), "'>f4'");
  rejects(npy_bytes("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "abcdabcd"),
          "'<c8'");
  rejects(npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", "abcd"), "Fortran");
  rejects(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,) ", "abcd"),
          "malformed");
  rejects(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "abcd"),
          "malformed");
  rejects(npy_bytes("{'descr': '<f4', 'shape': (1,), }", "abcd"), "fortran_order");
  std::string v3 = npy_bytes(ok, "abcd");
  v3[6] = 3;
  rejects(v3, "version 3.0");
}

TEST(Npy, UnsupportedDtypeOnWrite) {
  EXPECT_THROW(io::write_npy(temp_path("half.npy"), torch::zeros({2}, torch::kFloat16)), Error);
}
