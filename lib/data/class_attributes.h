// Class-attribute knowledge of a labelled image dataset and the caption grammar built on it.
// ClassAttributes holds, per class, paraphrases of its name and the binary attributes it has
// (the class-attribute matrix A of Lampert et al. 2009), phrases for each attribute and a
// zero-shot split. CaptionGrammar turns it into text: captions (class name + some attributes),
// the text modality of JMVAE training, and descriptions (attributes only, no class name), the
// text side of zero-shot on unseen classes. File format and the shipped files: data/README.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>
#include <nlohmann/json_fwd.hpp>

namespace mmkt::data {

struct ClassAttributes {
  std::string dataset;                                        // "fashion-mnist"
  std::vector<std::string> class_names;                       // canonical, class-index order
  std::vector<std::vector<std::string>> class_name_variants;  // paraphrases used in captions
  std::vector<std::string> attribute_names;                   // "has_heel"
  std::vector<std::vector<std::string>> attribute_phrases;    // "with a heel", ...
  std::vector<std::string> attribute_groups;                  // "" where the file gives none
  std::vector<std::string> generic_names;  // nouns for any class ("item", "digit")
  torch::Tensor matrix;                    // [C,M] float32 of 0/1
  std::vector<std::int64_t> unseen;        // zero-shot held-out class indices, ascending

  std::int64_t num_classes() const { return static_cast<std::int64_t>(class_names.size()); }
  std::int64_t num_attributes() const { return static_cast<std::int64_t>(attribute_names.size()); }
  // Class indices not in `unseen`, ascending.
  std::vector<std::int64_t> seen() const;
  // Indices of the attributes class `cls` has (row `cls` of the matrix), ascending.
  std::vector<std::int64_t> present(std::int64_t cls) const;

  // Reads and validates a class-attribute file; every problem throws InputError naming the
  // file and the JSON path ("data/x.json: classes[3].attributes[1]: unknown attribute ...").
  static ClassAttributes load(const std::string& path);
  // The same from JSON text; `source` names it in errors. Malformed JSON reports the byte.
  static ClassAttributes parse(const std::string& text, const std::string& source);
  // The same from parsed JSON.
  static ClassAttributes from_json(const nlohmann::json& json, const std::string& source);
  // The file format again; from_json(to_json()) reproduces every field.
  nlohmann::json to_json() const;

  // Index of the class with this canonical name or name variant; throws InputError listing
  // the classes when there is none.
  std::int64_t class_index(const std::string& name) const;
  // Index of the attribute with this name; throws InputError listing them when there is none.
  std::int64_t attribute_index(const std::string& name) const;
};

// Random captions and descriptions of classes. Deterministic: the text depends only on
// (attributes, cls, seed); the draws come from std::mt19937_64 seeded with `seed` through a
// portable bounded draw (not std::uniform_int_distribution, whose output differs between
// standard libraries). Output is lower-case ASCII words with ",", ":" as punctuation.
// Guarantees (checked when ClassAttributes is loaded): a caption of class c names no other
// class, a description names no class, and every attribute phrase in the text belongs to an
// attribute the class has.
class CaptionGrammar {
 public:
  // Most attributes one caption mentions (a random 1..min(present, kMaxCaptionAttributes)).
  static constexpr std::int64_t kMaxCaptionAttributes = 4;

  // Copies what it needs; throws Error when a class has no attribute or the matrix does not
  // match the names.
  explicit CaptionGrammar(const ClassAttributes& attributes);

  // A class-name variant and a random ordered subset of the class's attributes, each with a
  // random phrase, through one of several templates: "a photo of a boot that covers the
  // ankle", "sneaker, with laces and with a flat sole", "an item with a heel: an ankle boot".
  std::string caption(std::int64_t cls, std::uint64_t seed) const;
  // No class name: every attribute of the class in random order with random phrases and a
  // generic noun, for text zero-shot of unseen classes ("an item worn on the feet, with a
  // heel and with straps").
  std::string description(std::int64_t cls, std::uint64_t seed) const;
  // How many different captions caption(cls, .) can produce (the product of the choices; an
  // upper bound, exact unless two choice paths render the same words).
  std::int64_t distinct_captions_estimate(std::int64_t cls) const;

  std::int64_t num_classes() const { return static_cast<std::int64_t>(classes_.size()); }

 private:
  struct ClassText {
    std::vector<std::string> names;
    std::vector<std::int64_t> present;
  };
  std::vector<ClassText> classes_;
  std::vector<std::vector<std::string>> phrases_;
  std::vector<std::string> generic_;
};

}  // namespace mmkt::data
