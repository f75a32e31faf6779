#include "mmkt/text/tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <sstream>

#include "mmkt/core/build_info.h"
#include "mmkt/core/error.h"
#include "mmkt/io/files.h"
#include "mmkt/text/spm_bridge.h"
#include "mmkt/text/utf8.h"

namespace mmkt::text {
namespace {
namespace fs = std::filesystem;
constexpr size_t kErrCap = 2048;

// Function table of libmmkt_spm.so.
struct Bridge {
  std::string path;
  decltype(&mmkt_spm_abi_version) abi_version = nullptr;
  decltype(&mmkt_spm_train) train = nullptr;
  decltype(&mmkt_spm_load_file) load_file = nullptr;
  decltype(&mmkt_spm_load_bytes) load_bytes = nullptr;
  decltype(&mmkt_spm_free) free = nullptr;
  decltype(&mmkt_spm_serialized_size) serialized_size = nullptr;
  decltype(&mmkt_spm_serialize) serialize = nullptr;
  decltype(&mmkt_spm_encode) encode = nullptr;
  decltype(&mmkt_spm_decode) decode = nullptr;
  decltype(&mmkt_spm_vocab_size) vocab_size = nullptr;
  decltype(&mmkt_spm_id_to_piece) id_to_piece = nullptr;
  decltype(&mmkt_spm_piece_to_id) piece_to_id = nullptr;
  decltype(&mmkt_spm_special_id) special_id = nullptr;
};

std::string executable_dir() {
  char buffer[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buffer, sizeof(buffer) - 1);
  if (n <= 0) return ".";
  buffer[n] = '\0';
  return fs::path(buffer).parent_path().string();
}

template <typename T>
void bind(void* lib, const char* name, T& fn, const std::string& path) {
  fn = reinterpret_cast<T>(::dlsym(lib, name));
  MMKT_CHECK(fn != nullptr, "SentencePiece bridge ", path, " lacks symbol ", name);
}

Bridge load_bridge() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("MMKT_SPM_BRIDGE")) candidates.emplace_back(env);
  const std::string name = "libmmkt_spm.so";
  const std::string exe = executable_dir();
  candidates.push_back(exe + "/" + name);
  candidates.push_back(exe + "/../lib/mmkt/" + name);
  candidates.push_back(std::string(MMKT_SPM_BRIDGE_BUILD_DIR) + "/" + name);
  candidates.push_back(std::string(MMKT_SPM_BRIDGE_INSTALL_DIR) + "/" + name);

  std::ostringstream tried;
  for (const auto& path : candidates) {
    if (!io::file_exists(path)) {
      tried << "\n  " << path << " (not found)";
      continue;
    }
    // RTLD_LOCAL keeps SentencePiece's protobuf out of the global namespace; RTLD_DEEPBIND
    // makes the bridge resolve its own symbols first, so libtorch's protobuf never binds there.
    void* lib = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (lib == nullptr) {
      tried << "\n  " << path << " (" << ::dlerror() << ")";
      continue;
    }
    Bridge b;
    b.path = path;
    bind(lib, "mmkt_spm_abi_version", b.abi_version, path);
    MMKT_CHECK(b.abi_version() == MMKT_SPM_ABI_VERSION, "SentencePiece bridge ", path,
               " has ABI version ", b.abi_version(), ", this build expects ", MMKT_SPM_ABI_VERSION,
               " (stale build output?)");
    bind(lib, "mmkt_spm_train", b.train, path);
    bind(lib, "mmkt_spm_load_file", b.load_file, path);
    bind(lib, "mmkt_spm_load_bytes", b.load_bytes, path);
    bind(lib, "mmkt_spm_free", b.free, path);
    bind(lib, "mmkt_spm_serialized_size", b.serialized_size, path);
    bind(lib, "mmkt_spm_serialize", b.serialize, path);
    bind(lib, "mmkt_spm_encode", b.encode, path);
    bind(lib, "mmkt_spm_decode", b.decode, path);
    bind(lib, "mmkt_spm_vocab_size", b.vocab_size, path);
    bind(lib, "mmkt_spm_id_to_piece", b.id_to_piece, path);
    bind(lib, "mmkt_spm_piece_to_id", b.piece_to_id, path);
    bind(lib, "mmkt_spm_special_id", b.special_id, path);
    return b;
  }
  fail("cannot load the SentencePiece bridge ", name, "; tried:", tried.str(),
       "\nset MMKT_SPM_BRIDGE to its path");
}

const Bridge& bridge() {
  static std::once_flag once;
  static Bridge instance;
  static std::string load_error;
  std::call_once(once, [] {
    try {
      instance = load_bridge();
    } catch (const Error& e) {
      load_error = e.what();
    }
  });
  MMKT_CHECK(load_error.empty(), load_error);
  return instance;
}

void check_utf8(std::string_view text, const std::string& what) {
  if (const auto bad = find_invalid_utf8(text)) {
    fail_input(what, " is not valid UTF-8 (bad byte 0x", std::hex,
               static_cast<int>(static_cast<unsigned char>(text[*bad])), std::dec,
               " at byte offset ", *bad, ")");
  }
}

std::string train_kwargs(const TokenizerTrainOptions& o) {
  MMKT_CHECK_INPUT(o.vocab_size >= 5, "tokenizer vocab_size must be >= 5, got ", o.vocab_size);
  MMKT_CHECK_INPUT(o.model_type == "unigram" || o.model_type == "bpe" || o.model_type == "char" ||
                       o.model_type == "word",
                   "tokenizer model_type must be unigram, bpe, char or word, got '", o.model_type,
                   "'");
  std::map<std::string, std::string> kw = {
      {"model_type", o.model_type},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"character_coverage", std::to_string(o.character_coverage)},
      {"num_threads", std::to_string(std::max(1, o.threads))},
      {"pad_id", "0"},
      {"unk_id", "1"},
      {"bos_id", "2"},
      {"eos_id", "3"},
      {"minloglevel", "2"},  // SentencePiece's own INFO/WARNING chatter off
  };
  for (const auto& [key, value] : o.extra) kw[key] = value;
  std::string lines;
  for (const auto& [key, value] : kw) {
    MMKT_CHECK_INPUT(key.find('\n') == std::string::npos && value.find('\n') == std::string::npos,
                     "tokenizer option '", key, "' contains a newline");
    lines += key + "=" + value + "\n";
  }
  return lines;
}

}  // namespace

struct Tokenizer::Handle {
  mmkt_spm* spm = nullptr;
  ~Handle() {
    if (spm != nullptr) bridge().free(spm);
  }
};

Tokenizer::Tokenizer(std::shared_ptr<Handle> handle) : handle_(std::move(handle)) {}

Tokenizer Tokenizer::train(const std::vector<std::string>& corpus,
                           const TokenizerTrainOptions& options) {
  MMKT_CHECK_INPUT(!corpus.empty(), "cannot train a tokenizer on an empty corpus");
  std::vector<const char*> pointers;
  pointers.reserve(corpus.size());
  for (size_t i = 0; i < corpus.size(); ++i) {
    check_utf8(corpus[i], "tokenizer corpus sentence " + std::to_string(i));
    pointers.push_back(corpus[i].c_str());
  }
  auto o = options;
  o.extra.erase("input");
  const std::string kwargs = train_kwargs(o);
  char err[kErrCap] = {0};
  auto handle = std::make_shared<Handle>();
  if (bridge().train(kwargs.c_str(), pointers.data(), pointers.size(), &handle->spm, err,
                     kErrCap) != 0) {
    fail_input("tokenizer training failed: ", err);
  }
  return Tokenizer(handle);
}

Tokenizer Tokenizer::train_from_file(const std::string& path,
                                     const TokenizerTrainOptions& options) {
  const std::string corpus = io::read_file(path);  // also gives a clear error when missing
  MMKT_CHECK_INPUT(!corpus.empty(), path, ": empty corpus file");
  check_utf8(corpus, path);
  auto o = options;
  o.extra["input"] = path;
  const std::string kwargs = train_kwargs(o);
  char err[kErrCap] = {0};
  auto handle = std::make_shared<Handle>();
  if (bridge().train(kwargs.c_str(), nullptr, 0, &handle->spm, err, kErrCap) != 0) {
    fail_input(path, ": tokenizer training failed: ", err);
  }
  return Tokenizer(handle);
}

Tokenizer Tokenizer::load(const std::string& path) { return from_bytes(io::read_file(path), path); }

Tokenizer Tokenizer::from_bytes(const std::string& bytes, const std::string& source) {
  MMKT_CHECK_INPUT(!bytes.empty(), source, ": empty tokenizer model");
  char err[kErrCap] = {0};
  auto handle = std::make_shared<Handle>();
  if (bridge().load_bytes(bytes.data(), bytes.size(), &handle->spm, err, kErrCap) != 0) {
    fail_input(source, ": not a valid SentencePiece model: ", err);
  }
  return Tokenizer(handle);
}

std::string Tokenizer::to_bytes() const {
  std::string bytes(bridge().serialized_size(handle_->spm), '\0');
  MMKT_CHECK(bridge().serialize(handle_->spm, bytes.data(), bytes.size()) == 0,
             "tokenizer serialization failed");
  return bytes;
}

void Tokenizer::save(const std::string& path) const { io::write_file_atomic(path, to_bytes()); }

std::vector<std::int64_t> Tokenizer::encode(std::string_view text) const {
  check_utf8(text, "text");
  std::vector<int32_t> ids(text.size() + 8);
  size_t n = 0;
  char err[kErrCap] = {0};
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (bridge().encode(handle_->spm, text.data(), text.size(), ids.data(), ids.size(), &n, err,
                        kErrCap) != 0) {
      fail_input("tokenizer encode failed: ", err);
    }
    if (n <= ids.size()) break;
    ids.resize(n);
  }
  return std::vector<std::int64_t>(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(n));
}

std::vector<std::int64_t> Tokenizer::encode_with_bos_eos(std::string_view text) const {
  auto ids = encode(text);
  ids.insert(ids.begin(), kBosId);
  ids.push_back(kEosId);
  return ids;
}

std::string Tokenizer::decode(const std::vector<std::int64_t>& ids) const {
  std::vector<int32_t> kept;
  kept.reserve(ids.size());
  const int vocab = vocab_size();
  for (const auto id : ids) {
    if (id == kPadId || id == kBosId) continue;
    if (id == kEosId) {
      if (kept.empty()) continue;
      break;
    }
    kept.push_back(id >= 0 && id < vocab ? static_cast<int32_t>(id) : static_cast<int32_t>(kUnkId));
  }
  std::string text(kept.size() * 8 + 16, '\0');
  size_t n = 0;
  char err[kErrCap] = {0};
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (bridge().decode(handle_->spm, kept.data(), kept.size(), text.data(), text.size(), &n, err,
                        kErrCap) != 0) {
      fail("tokenizer decode failed: ", err);
    }
    if (n <= text.size()) break;
    text.resize(n);
  }
  text.resize(n);
  return text;
}

int Tokenizer::vocab_size() const { return bridge().vocab_size(handle_->spm); }

std::string Tokenizer::id_to_piece(std::int64_t id) const {
  MMKT_CHECK_INPUT(id >= 0 && id < vocab_size(), "token id ", id, " out of range [0, ",
                   vocab_size(), ")");
  std::string piece(64, '\0');
  size_t n = 0;
  for (int attempt = 0; attempt < 2; ++attempt) {
    MMKT_CHECK(bridge().id_to_piece(handle_->spm, static_cast<int32_t>(id), piece.data(),
                                    piece.size(), &n) == 0,
               "id_to_piece failed for ", id);
    if (n <= piece.size()) break;
    piece.resize(n);
  }
  piece.resize(n);
  return piece;
}

std::int64_t Tokenizer::piece_to_id(const std::string& piece) const {
  return bridge().piece_to_id(handle_->spm, piece.data(), piece.size());
}

std::string spm_bridge_path() { return bridge().path; }

}  // namespace mmkt::text
