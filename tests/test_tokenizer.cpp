// The tokenizer runs SentencePiece in the same process as libtorch (the protobuf clash that
// lib/text/spm_bridge.h describes would kill this binary at start-up or at the first training
// call).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "mmkt/core/error.h"
#include "mmkt/text/tokenizer.h"
#include "mmkt/text/utf8.h"

using namespace mmkt;
using mmkt::text::Tokenizer;

namespace {

std::vector<std::string> corpus() {
  const std::vector<std::string> colours = {"red", "green", "blue", "yellow", "purple", "white"};
  const std::vector<std::string> shapes = {"square", "circle", "triangle", "heart", "star"};
  const std::vector<std::string> places = {"top left", "bottom right", "centre", "top right"};
  std::vector<std::string> lines;
  for (const auto& c : colours)
    for (const auto& s : shapes)
      for (const auto& p : places) {
        lines.push_back("a small " + c + " " + s + " in the " + p + " corner");
        lines.push_back(p + ": a big " + c + " " + s);
      }
  return lines;
}

text::TokenizerTrainOptions options(const std::string& type, int vocab) {
  text::TokenizerTrainOptions o;
  o.model_type = type;
  o.vocab_size = vocab;
  return o;
}

}  // namespace

TEST(Tokenizer, UnigramRoundTripsTextAlongsideTorch) {
  const auto tok = Tokenizer::train(corpus(), options("unigram", 40));
  EXPECT_EQ(tok.vocab_size(), 40);
  const std::string s = "a small red heart in the top left corner";
  const auto ids = tok.encode(s);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(tok.decode(ids), s);
  // torch in the same process, on the ids the tokenizer produced
  const auto t = torch::tensor(ids);
  EXPECT_EQ(t.sum().item<int64_t>(),
            std::accumulate(ids.begin(), ids.end(), static_cast<int64_t>(0)));
  torch::nn::Embedding emb(tok.vocab_size(), 8);
  EXPECT_EQ(emb->forward(t).sizes(), (std::vector<int64_t>{static_cast<int64_t>(ids.size()), 8}));
}

TEST(Tokenizer, BpeRoundTripsAndSpecialIdsAreFixed) {
  const auto tok = Tokenizer::train(corpus(), options("bpe", 80));
  EXPECT_EQ(tok.id_to_piece(Tokenizer::kPadId), "<pad>");
  EXPECT_EQ(tok.id_to_piece(Tokenizer::kUnkId), "<unk>");
  EXPECT_EQ(tok.id_to_piece(Tokenizer::kBosId), "<s>");
  EXPECT_EQ(tok.id_to_piece(Tokenizer::kEosId), "</s>");
  const auto ids = tok.encode_with_bos_eos("top right: a big blue star");
  EXPECT_EQ(ids.front(), Tokenizer::kBosId);
  EXPECT_EQ(ids.back(), Tokenizer::kEosId);
  EXPECT_EQ(tok.decode(ids), "top right: a big blue star");
  // padding after EOS is ignored by decode
  auto padded = ids;
  padded.push_back(Tokenizer::kPadId);
  padded.push_back(Tokenizer::kPadId);
  EXPECT_EQ(tok.decode(padded), "top right: a big blue star");
}

TEST(Tokenizer, PieceIdMappingIsInverse) {
  const auto tok = Tokenizer::train(corpus(), options("unigram", 40));
  for (int64_t id = 0; id < tok.vocab_size(); ++id) {
    EXPECT_EQ(tok.piece_to_id(tok.id_to_piece(id)), id);
  }
  EXPECT_EQ(tok.piece_to_id("no-such-piece-xyz"), Tokenizer::kUnkId);
  EXPECT_THROW(tok.id_to_piece(tok.vocab_size()), InputError);
}

TEST(Tokenizer, SaveLoadAndBytesRoundTrip) {
  const auto tok = Tokenizer::train(corpus(), options("unigram", 40));
  const auto path = (std::filesystem::temp_directory_path() / "mmkt_tok_test.model").string();
  tok.save(path);
  const auto loaded = Tokenizer::load(path);
  const std::string s = "bottom right: a big green circle";
  EXPECT_EQ(loaded.encode(s), tok.encode(s));
  EXPECT_EQ(loaded.to_bytes(), tok.to_bytes());
  std::filesystem::remove(path);
}

TEST(Tokenizer, TrainsFromFile) {
  const auto path = (std::filesystem::temp_directory_path() / "mmkt_tok_corpus.txt").string();
  {
    std::ofstream out(path);
    for (const auto& line : corpus()) out << line << "\n";
  }
  const auto tok = Tokenizer::train_from_file(path, options("bpe", 70));
  EXPECT_EQ(tok.vocab_size(), 70);
  EXPECT_EQ(tok.decode(tok.encode("centre: a big white square")), "centre: a big white square");
  std::filesystem::remove(path);
}

TEST(Tokenizer, TrainingIsDeterministic) {
  const auto a = Tokenizer::train(corpus(), options("unigram", 40));
  const auto b = Tokenizer::train(corpus(), options("unigram", 40));
  EXPECT_EQ(a.to_bytes(), b.to_bytes());
}

TEST(Tokenizer, SentencePieceErrorsBecomeOurExceptions) {
  // vocabulary larger than the corpus allows: SentencePiece's own message is carried
  try {
    Tokenizer::train({"ab ab", "ba"}, options("unigram", 5000));
    FAIL() << "no throw";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("ocab"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Tokenizer::train(corpus(), options("wordpiece", 50)), InputError);
  EXPECT_THROW(Tokenizer::train({}, options("unigram", 40)), InputError);
  auto bad_flag = options("unigram", 40);
  bad_flag.extra["no_such_flag"] = "1";
  EXPECT_THROW(Tokenizer::train(corpus(), bad_flag), InputError);
  try {
    Tokenizer::load("/nonexistent/dir/tok.model");
    FAIL() << "no throw";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/tok.model"), std::string::npos);
  }
  EXPECT_THROW(Tokenizer::from_bytes("definitely not a protobuf", "bytes"), InputError);
}

TEST(Tokenizer, RejectsInvalidUtf8WithOffset) {
  const auto tok = Tokenizer::train(corpus(), options("unigram", 40));
  try {
    tok.encode(std::string("red \xff heart"));
    FAIL() << "no throw";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("byte offset 4"), std::string::npos) << e.what();
  }
}

TEST(Utf8, FindsFirstInvalidByte) {
  using text::find_invalid_utf8;
  EXPECT_EQ(find_invalid_utf8("plain ascii"), std::nullopt);
  EXPECT_EQ(find_invalid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), std::nullopt);
  EXPECT_EQ(find_invalid_utf8("ab\x80"), 2u);            // lone continuation
  EXPECT_EQ(find_invalid_utf8("\xc0\xaf"), 0u);          // overlong '/'
  EXPECT_EQ(find_invalid_utf8("x\xed\xa0\x80"), 1u);     // surrogate U+D800
  EXPECT_EQ(find_invalid_utf8("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("ok\xe2\x82"), 2u);        // truncated sequence
}
