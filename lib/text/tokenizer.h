// Subword tokenizer: our interface over SentencePiece (unigram or BPE), usable in the same
// process as libtorch. The SentencePiece code lives in libmmkt_spm.so, loaded on first use
// (see spm_bridge.h for why). Special ids are fixed at training time: pad 0, unk 1, bos 2,
// eos 3, so that padded token tensors are zero-filled.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mmkt::text {

struct TokenizerTrainOptions {
  std::string model_type = "unigram";  // unigram | bpe | char | word
  int vocab_size = 1000;
  double character_coverage = 1.0;
  int threads = 1;
  std::uint64_t seed = 0;  // recorded for the run; SentencePiece's training is deterministic
  // Any other SentencePiece trainer flag, e.g. {"max_sentence_length", "8192"}.
  std::map<std::string, std::string> extra;
};

class Tokenizer {
 public:
  static constexpr std::int64_t kPadId = 0;
  static constexpr std::int64_t kUnkId = 1;
  static constexpr std::int64_t kBosId = 2;
  static constexpr std::int64_t kEosId = 3;

  // Trains on an in-memory corpus (one sentence per entry; must be valid UTF-8).
  static Tokenizer train(const std::vector<std::string>& corpus,
                         const TokenizerTrainOptions& options);
  // Trains on a text file, one sentence per line.
  static Tokenizer train_from_file(const std::string& path, const TokenizerTrainOptions& options);
  // Loads a model written by save() or by spm_train.
  static Tokenizer load(const std::string& path);
  // Loads a model from its serialized bytes; `source` names it in errors.
  static Tokenizer from_bytes(const std::string& bytes, const std::string& source);

  // Writes the model atomically.
  void save(const std::string& path) const;
  // The serialized model (what save() writes).
  std::string to_bytes() const;

  // Ids of `text` without BOS/EOS. Throws InputError for invalid UTF-8 (naming the byte).
  std::vector<std::int64_t> encode(std::string_view text) const;
  // BOS + encode(text) + EOS.
  std::vector<std::int64_t> encode_with_bos_eos(std::string_view text) const;
  // Text of `ids`; pad/bos/eos are dropped, decoding stops at the first EOS after content.
  std::string decode(const std::vector<std::int64_t>& ids) const;

  int vocab_size() const;
  std::string id_to_piece(std::int64_t id) const;
  // Id of `piece`, or kUnkId when the piece is not in the vocabulary.
  std::int64_t piece_to_id(const std::string& piece) const;

 private:
  struct Handle;
  explicit Tokenizer(std::shared_ptr<Handle> handle);
  std::shared_ptr<Handle> handle_;
};

// Path of the loaded SentencePiece bridge (loads it if needed); for diagnostics.
std::string spm_bridge_path();

}  // namespace mmkt::text
