// `mmkt tokenizer train|encode|decode`: SentencePiece models from the command line.
#include <iostream>
#include <sstream>

#include "commands.h"
#include "mmkt/core/error.h"
#include "mmkt/core/log.h"
#include "mmkt/text/tokenizer.h"

namespace mmkt::app {

void register_tokenizer(CLI::App& root, CommonOptions& common) {
  auto* group = root.add_subcommand("tokenizer", "train and apply SentencePiece tokenizers");
  group->require_subcommand(1);

  struct TrainArgs {
    std::string input, out;
    text::TokenizerTrainOptions options;
  };
  auto train = std::make_shared<TrainArgs>();
  auto* t =
      group->add_subcommand("train", "train a tokenizer on a text file (one sentence a line)");
  t->add_option("--input", train->input, "UTF-8 corpus file")->required();
  t->add_option("--out", train->out, "model file to write")->required();
  t->add_option("--vocab-size", train->options.vocab_size)->capture_default_str();
  t->add_option("--type", train->options.model_type, "unigram, bpe, char or word")
      ->capture_default_str();
  t->callback([&common, train] {
    const Runtime rt = init_runtime(common.runtime);
    train->options.threads = rt.threads;
    const auto tok = text::Tokenizer::train_from_file(train->input, train->options);
    tok.save(train->out);
    log::info("wrote ", train->out, " (vocabulary ", tok.vocab_size(), ", ",
              train->options.model_type, ")");
  });

  struct CodeArgs {
    std::string model, text, ids;
  };
  auto code = std::make_shared<CodeArgs>();
  auto* e = group->add_subcommand("encode", "print the ids and pieces of a text");
  e->add_option("--model", code->model, "tokenizer model")->required();
  e->add_option("--text", code->text, "UTF-8 text")->required();
  e->callback([code] {
    const auto tok = text::Tokenizer::load(code->model);
    const auto ids = tok.encode(code->text);
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << "\n";
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << tok.id_to_piece(ids[i]);
    std::cout << std::endl;
  });
  auto* d = group->add_subcommand("decode", "print the text of space-separated ids");
  d->add_option("--model", code->model, "tokenizer model")->required();
  d->add_option("--ids", code->ids, "ids, e.g. \"12 7 95\"")->required();
  d->callback([code] {
    const auto tok = text::Tokenizer::load(code->model);
    std::istringstream in(code->ids);
    std::vector<std::int64_t> ids;
    std::string word;
    while (in >> word) {
      try {
        ids.push_back(std::stoll(word));
      } catch (const std::exception&) {
        fail_input("--ids: '", word, "' is not an integer");
      }
    }
    std::cout << tok.decode(ids) << std::endl;
  });
}

}  // namespace mmkt::app
