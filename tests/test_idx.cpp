#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "mmkt/core/error.h"
#include "mmkt/data/idx.h"

using namespace mmkt;

namespace {

std::string tmp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("mmkt_idx_" + name)).string();
}

std::string header(unsigned char dtype, const std::vector<std::uint32_t>& dims) {
  std::string h = {0, 0, static_cast<char>(dtype), static_cast<char>(dims.size())};
  for (auto d : dims) {
    h += static_cast<char>(d >> 24);
    h += static_cast<char>(d >> 16);
    h += static_cast<char>(d >> 8);
    h += static_cast<char>(d);
  }
  return h;
}

void write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile gz = gzopen(path.c_str(), "wb");
  gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(gz);
}

std::string expect_input_error(const std::string& path) {
  try {
    data::read_idx(path);
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InputError for " << path;
  return "";
}

}  // namespace

TEST(Idx, ReadsRawAndGzipUbyte) {
  std::string bytes = header(0x08, {2, 2, 3});
  for (int i = 0; i < 12; ++i) bytes += static_cast<char>(i * 20);
  for (const bool gz : {false, true}) {
    const auto path = tmp_path(gz ? "ok.gz" : "ok");
    gz ? write_gz(path, bytes) : write_raw(path, bytes);
    const auto t = data::read_idx(path);
    EXPECT_EQ(t.sizes(), (std::vector<int64_t>{2, 2, 3}));
    EXPECT_EQ(t.scalar_type(), torch::kUInt8);
    EXPECT_EQ(t[1][1][2].item<int>(), 11 * 20);
    EXPECT_EQ(t.sum().item<int64_t>(), 20 * 66);
  }
}

TEST(Idx, ReadsBigEndianInt32) {
  std::string bytes = header(0x0C, {3});
  for (std::uint32_t v : {1u, 256u, 0x01020304u}) {
    bytes += static_cast<char>(v >> 24);
    bytes += static_cast<char>(v >> 16);
    bytes += static_cast<char>(v >> 8);
    bytes += static_cast<char>(v);
  }
  const auto path = tmp_path("int32");
  write_raw(path, bytes);
  const auto t = data::read_idx(path);
  ASSERT_EQ(t.scalar_type(), torch::kInt32);
  EXPECT_EQ(t[0].item<int>(), 1);
  EXPECT_EQ(t[1].item<int>(), 256);
  EXPECT_EQ(t[2].item<int>(), 0x01020304);
}

TEST(Idx, BadMagicNamesFileAndOffset) {
  const auto path = tmp_path("magic");
  write_raw(path, std::string("\x12\x34\x08\x01\x00\x00\x00\x01\x05", 9));
  const auto msg = expect_input_error(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad magic at byte offset 0"), std::string::npos) << msg;
}

TEST(Idx, UnknownDtypeAndZeroDimension) {
  const auto path = tmp_path("dtype");
  write_raw(path, header(0x07, {1}) + "x");
  EXPECT_NE(expect_input_error(path).find("unknown IDX dtype 0x7"), std::string::npos);
  write_raw(path, header(0x08, {0}));
  EXPECT_NE(expect_input_error(path).find("dimension 0 is zero"), std::string::npos);
}

TEST(Idx, TruncatedAndTrailingRawFiles) {
  const auto path = tmp_path("short");
  write_raw(path, header(0x08, {10, 28, 28}) + std::string(100, 'a'));
  const auto short_msg = expect_input_error(path);
  EXPECT_NE(short_msg.find("truncated"), std::string::npos) << short_msg;
  EXPECT_NE(short_msg.find("7856"), std::string::npos) << short_msg;  // 16 + 7840 bytes needed
  write_raw(path, header(0x08, {2}) + "abc");
  EXPECT_NE(expect_input_error(path).find("trailing bytes"), std::string::npos);
  write_raw(path, std::string("\x00\x00", 2));
  EXPECT_NE(expect_input_error(path).find("not an IDX file"), std::string::npos);
  write_raw(path, std::string("\x00\x00\x08\x03\x00\x00", 6));
  EXPECT_NE(expect_input_error(path).find("truncated IDX header"), std::string::npos);
}

TEST(Idx, TruncatedGzipStream) {
  std::string bytes = header(0x08, {1000});
  bytes += std::string(1000, 'z');
  const auto good = tmp_path("full.gz");
  write_gz(good, bytes);
  std::ifstream in(good, std::ios::binary);
  std::string gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto cut = tmp_path("cut.gz");
  write_raw(cut, gz.substr(0, gz.size() / 2));
  const auto msg = expect_input_error(cut);
  EXPECT_NE(msg.find(cut), std::string::npos) << msg;
  // The trailer of a cut stream is whatever compressed bytes ended up last: the error must call
  // it a truncated stream, not trust those bytes as a size ("trailing bytes").
  EXPECT_NE(msg.find("truncated gzip stream"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("trailing"), std::string::npos) << msg;
}

TEST(Idx, TruncatedGzipOfARealSizedFile) {
  // 6000 x 28 x 28 of low-entropy pixels, cut to its first quarter: the review's case (a
  // truncated MNIST .gz read as "trailing bytes" and then as "60000 labels for 100 images").
  std::string bytes = header(0x08, {6000, 28, 28});
  for (std::int64_t i = 0; i < 6000 * 784; ++i) bytes += static_cast<char>((i * 7919) % 251);
  const auto good = tmp_path("big.gz");
  write_gz(good, bytes);
  std::ifstream in(good, std::ios::binary);
  std::string gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto cut = tmp_path("bigcut.gz");
  write_raw(cut, gz.substr(0, gz.size() / 4));
  const auto msg = expect_input_error(cut);
  EXPECT_NE(msg.find("truncated gzip stream"), std::string::npos) << msg;
  EXPECT_NE(msg.find("4704016"), std::string::npos) << msg;  // the bytes the header needs
}

TEST(Idx, HugeHeaderIsRejectedBeforeAllocating) {
  // Claims 4e9 x 4e9 x 4e9 bytes: must fail on the header, not try to allocate.
  const auto path = tmp_path("huge");
  write_raw(path, header(0x08, {4000000000u, 4000000000u, 4000000000u}) + "abc");
  const auto msg = expect_input_error(path);
  EXPECT_NE(msg.find("more than the limit"), std::string::npos) << msg;
  // Within the limit but larger than the file: fails on the size comparison.
  write_raw(path, header(0x08, {60000, 28, 28}) + "abc");
  EXPECT_NE(expect_input_error(path).find("truncated"), std::string::npos);
  const auto gz = tmp_path("huge.gz");
  write_gz(gz, header(0x08, {60000, 28, 28}) + "abc");
  EXPECT_NE(expect_input_error(gz).find("truncated"), std::string::npos);
}

TEST(Idx, MissingFile) {
  const auto msg = expect_input_error("/no/such/file-idx3-ubyte");
  EXPECT_NE(msg.find("does not exist"), std::string::npos);
}
