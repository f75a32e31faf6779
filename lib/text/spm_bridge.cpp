// libmmkt_spm.so: SentencePiece behind a C interface (see spm_bridge.h for why).
#include "mmkt/text/spm_bridge.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstring>
#include <exception>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#define MMKT_SPM_EXPORT __attribute__((visibility("default")))

struct mmkt_spm {
  sentencepiece::SentencePieceProcessor processor;
  std::string serialized;
};

namespace {

void set_error(char* err, size_t cap, const std::string& message) {
  if (err == nullptr || cap == 0) return;
  const size_t n = std::min(cap - 1, message.size());
  std::memcpy(err, message.data(), n);
  err[n] = '\0';
}

// Corpus held by the caller, walked without copying.
class ArrayIterator : public sentencepiece::SentenceIterator {
 public:
  ArrayIterator(const char* const* sentences, size_t n) : sentences_(sentences), n_(n) { load(); }
  bool done() const override { return i_ >= n_; }
  void Next() override {
    ++i_;
    load();
  }
  const std::string& value() const override { return current_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void load() {
    if (i_ < n_) current_ = sentences_[i_];
  }
  const char* const* sentences_;
  size_t n_;
  size_t i_ = 0;
  std::string current_;
};

std::unordered_map<std::string, std::string> parse_kwargs(const char* kwargs) {
  std::unordered_map<std::string, std::string> map;
  std::istringstream in(kwargs != nullptr ? kwargs : "");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos) {
      map[line] = "true";
    } else {
      map[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }
  return map;
}

int load_serialized(std::string bytes, mmkt_spm** out, char* err, size_t err_cap) {
  auto h = std::make_unique<mmkt_spm>();
  const auto status = h->processor.LoadFromSerializedProto(bytes);
  if (!status.ok()) {
    set_error(err, err_cap, status.ToString());
    return 1;
  }
  h->serialized = std::move(bytes);
  *out = h.release();
  return 0;
}

template <typename Fn>
int guarded(char* err, size_t err_cap, Fn&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    set_error(err, err_cap, std::string("SentencePiece: ") + e.what());
  } catch (...) {
    set_error(err, err_cap, "SentencePiece: unknown exception");
  }
  return 1;
}

}  // namespace

extern "C" {

MMKT_SPM_EXPORT int mmkt_spm_abi_version(void) { return MMKT_SPM_ABI_VERSION; }

MMKT_SPM_EXPORT int mmkt_spm_train(const char* kwargs, const char* const* sentences,
                                   size_t n_sentences, mmkt_spm** out, char* err, size_t err_cap) {
  return guarded(err, err_cap, [&] {
    auto map = parse_kwargs(kwargs);
    ArrayIterator iterator(sentences, n_sentences);
    std::string serialized;
    const auto status = sentencepiece::SentencePieceTrainer::Train(
        map, sentences != nullptr ? &iterator : nullptr, &serialized);
    if (!status.ok()) {
      set_error(err, err_cap, status.ToString());
      return 1;
    }
    return load_serialized(std::move(serialized), out, err, err_cap);
  });
}

MMKT_SPM_EXPORT int mmkt_spm_load_file(const char* path, mmkt_spm** out, char* err,
                                       size_t err_cap) {
  return guarded(err, err_cap, [&] {
    auto h = std::make_unique<mmkt_spm>();
    const auto status = h->processor.Load(path);
    if (!status.ok()) {
      set_error(err, err_cap, status.ToString());
      return 1;
    }
    h->serialized = h->processor.serialized_model_proto();
    *out = h.release();
    return 0;
  });
}

MMKT_SPM_EXPORT int mmkt_spm_load_bytes(const char* data, size_t size, mmkt_spm** out, char* err,
                                        size_t err_cap) {
  return guarded(err, err_cap,
                 [&] { return load_serialized(std::string(data, size), out, err, err_cap); });
}

MMKT_SPM_EXPORT void mmkt_spm_free(mmkt_spm* h) { delete h; }

MMKT_SPM_EXPORT size_t mmkt_spm_serialized_size(const mmkt_spm* h) { return h->serialized.size(); }

MMKT_SPM_EXPORT int mmkt_spm_serialize(const mmkt_spm* h, char* buf, size_t cap) {
  if (cap < h->serialized.size()) return 1;
  std::memcpy(buf, h->serialized.data(), h->serialized.size());
  return 0;
}

MMKT_SPM_EXPORT int mmkt_spm_encode(const mmkt_spm* h, const char* text, size_t len, int32_t* ids,
                                    size_t cap, size_t* n_out, char* err, size_t err_cap) {
  return guarded(err, err_cap, [&] {
    std::vector<int> pieces;
    const auto status = h->processor.Encode(std::string(text, len), &pieces);
    if (!status.ok()) {
      set_error(err, err_cap, status.ToString());
      return 1;
    }
    *n_out = pieces.size();
    for (size_t i = 0; i < pieces.size() && i < cap; ++i) ids[i] = pieces[i];
    return 0;
  });
}

MMKT_SPM_EXPORT int mmkt_spm_decode(const mmkt_spm* h, const int32_t* ids, size_t n, char* text,
                                    size_t cap, size_t* n_out, char* err, size_t err_cap) {
  return guarded(err, err_cap, [&] {
    const std::vector<int> pieces(ids, ids + n);
    std::string decoded;
    const auto status = h->processor.Decode(pieces, &decoded);
    if (!status.ok()) {
      set_error(err, err_cap, status.ToString());
      return 1;
    }
    *n_out = decoded.size();
    if (cap > 0) std::memcpy(text, decoded.data(), std::min(cap, decoded.size()));
    return 0;
  });
}

MMKT_SPM_EXPORT int32_t mmkt_spm_vocab_size(const mmkt_spm* h) {
  return h->processor.GetPieceSize();
}

MMKT_SPM_EXPORT int mmkt_spm_id_to_piece(const mmkt_spm* h, int32_t id, char* buf, size_t cap,
                                         size_t* n_out) {
  if (id < 0 || id >= h->processor.GetPieceSize()) return 1;
  const std::string& piece = h->processor.IdToPiece(id);
  *n_out = piece.size();
  if (cap > 0) std::memcpy(buf, piece.data(), std::min(cap, piece.size()));
  return 0;
}

MMKT_SPM_EXPORT int32_t mmkt_spm_piece_to_id(const mmkt_spm* h, const char* piece, size_t len) {
  return h->processor.PieceToId(std::string(piece, len));
}

MMKT_SPM_EXPORT int32_t mmkt_spm_special_id(const mmkt_spm* h, int which) {
  switch (which) {
    case 0:
      return h->processor.pad_id();
    case 1:
      return h->processor.unk_id();
    case 2:
      return h->processor.bos_id();
    case 3:
      return h->processor.eos_id();
    default:
      return -1;
  }
}

}  // extern "C"
