#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmkt/core/build_info.h"
#include "mmkt/core/error.h"
#include "mmkt/data/class_attributes.h"

using mmkt::InputError;
using mmkt::data::CaptionGrammar;
using mmkt::data::ClassAttributes;
using Json = nlohmann::json;
using Words = std::vector<std::string>;

namespace {

const std::string kFashion = MMKT_SOURCE_DIR "/data/fashion_mnist.json";
const std::string kMnist = MMKT_SOURCE_DIR "/data/mnist.json";

// Whole words: runs of [a-z0-9'] (a hyphen splits, so "t-shirt" holds "shirt").
Words words_of(const std::string& s) {
  Words out;
  std::string cur;
  for (char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\'') {
      cur += c;
    } else if (!cur.empty()) {
      out.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

bool has_words(const std::string& text, const std::string& needle) {
  const Words hay = words_of(text), n = words_of(needle);
  return !n.empty() && std::search(hay.begin(), hay.end(), n.begin(), n.end()) != hay.end();
}

// Every name a class goes by: canonical name and caption variants.
std::vector<std::string> all_names(const ClassAttributes& a, std::int64_t c) {
  std::vector<std::string> out = a.class_name_variants[c];
  out.push_back(a.class_names[c]);
  return out;
}

bool mentions_any(const std::string& text, const std::vector<std::string>& phrases) {
  return std::any_of(phrases.begin(), phrases.end(),
                     [&](const std::string& p) { return has_words(text, p); });
}

bool is_caption_ascii(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           std::string(" ,:'-").find(c) != std::string::npos;
  });
}

std::vector<std::int64_t> row(const ClassAttributes& a, std::int64_t c) {
  std::vector<std::int64_t> out;
  for (std::int64_t m = 0; m < a.num_attributes(); ++m)
    if (a.matrix[c][m].item<float>() == 1.0f) out.push_back(m);
  return out;
}

// A small valid file the error tests break one piece at a time.
Json small() {
  return Json::parse(R"({
    "dataset": "toy",
    "generic_names": ["thing"],
    "attributes": [
      {"name": "is_round", "phrases": ["that is round", "with a round outline"]},
      {"name": "has_heel", "phrases": ["with a heel", "that has a heel"], "group": "shoes"},
      {"name": "is_red", "phrases": ["coloured red", "in red"]}
    ],
    "classes": [
      {"name": "ball", "names": ["ball", "sphere"], "attributes": ["is_round", "is_red"]},
      {"name": "boot", "names": ["boot", "ankle boot"], "attributes": ["has_heel"]},
      {"name": "apple", "names": ["apple"], "attributes": ["is_round"]},
      {"name": "pump", "names": ["pump"], "attributes": ["has_heel", "is_red"]}
    ],
    "zero_shot": {"unseen": ["pump"]}
  })");
}

// Runs `fn`, expects an InputError whose message contains every piece.
void expect_input_error(const std::function<void()>& fn, const std::vector<std::string>& pieces) {
  try {
    fn();
    ADD_FAILURE() << "no InputError; expected one containing '" << pieces.front() << "'";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    for (const auto& p : pieces)
      EXPECT_NE(msg.find(p), std::string::npos) << msg << "\n  lacks: " << p;
  }
}

void expect_json_error(const Json& j, const std::vector<std::string>& pieces) {
  std::vector<std::string> all = {"toy.json: "};
  all.insert(all.end(), pieces.begin(), pieces.end());
  expect_input_error([&] { ClassAttributes::from_json(j, "toy.json"); }, all);
}

}  // namespace

// ---- The shipped files. ------------------------------------------------------------------------

TEST(ClassAttributesShipped, FashionMnistLoadsInClassOrder) {
  const auto a = ClassAttributes::load(kFashion);
  EXPECT_EQ(a.dataset, "fashion-mnist");
  const std::vector<std::string> order = {"t-shirt/top", "trouser",   "pullover", "dress",
                                          "coat",        "sandal",    "shirt",    "sneaker",
                                          "bag",         "ankle boot"};
  EXPECT_EQ(a.class_names, order);
  EXPECT_GE(a.num_attributes(), 12);
  EXPECT_LE(a.num_attributes(), 20);
  EXPECT_EQ(a.matrix.sizes(), (std::vector<std::int64_t>{10, a.num_attributes()}));
  EXPECT_EQ(a.matrix.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(((a.matrix == 0) | (a.matrix == 1)).all().item<bool>());
  // Spot checks of the scoring.
  const auto has = [&](const char* cls, const char* attr) {
    return a.matrix[a.class_index(cls)][a.attribute_index(attr)].item<float>() == 1.0f;
  };
  EXPECT_TRUE(has("ankle boot", "has_heel"));
  EXPECT_TRUE(has("sneaker", "has_laces"));
  EXPECT_FALSE(has("sneaker", "has_heel"));
  EXPECT_TRUE(has("shirt", "has_collar"));
  EXPECT_FALSE(has("pullover", "has_collar"));
  EXPECT_TRUE(has("bag", "has_handle"));
  EXPECT_FALSE(has("dress", "has_sleeves"));
  EXPECT_GE(a.unseen.size(), 3u);
}

TEST(ClassAttributesShipped, MnistLoadsInDigitOrder) {
  const auto a = ClassAttributes::load(kMnist);
  EXPECT_EQ(a.dataset, "mnist");
  ASSERT_EQ(a.num_classes(), 10);
  for (int d = 0; d < 10; ++d) EXPECT_EQ(a.class_names[d], std::to_string(d));
  EXPECT_GE(a.num_attributes(), 12);
  EXPECT_LE(a.num_attributes(), 20);
  const auto has = [&](const char* cls, const char* attr) {
    return a.matrix[a.class_index(cls)][a.attribute_index(attr)].item<float>() == 1.0f;
  };
  EXPECT_TRUE(has("eight", "two_loops"));
  EXPECT_FALSE(has("0", "two_loops"));
  EXPECT_TRUE(has("1", "vertical_stroke"));
  EXPECT_TRUE(has("7", "diagonal_stroke"));
  EXPECT_GE(a.unseen.size(), 3u);
}

TEST(ClassAttributesShipped, SignaturesAreUniqueAndEveryClassHasAttributes) {
  for (const auto& path : {kFashion, kMnist}) {
    const auto a = ClassAttributes::load(path);
    std::set<std::vector<std::int64_t>> rows;
    for (std::int64_t c = 0; c < a.num_classes(); ++c) {
      EXPECT_FALSE(row(a, c).empty()) << path << " class " << c;
      EXPECT_EQ(row(a, c), a.present(c));
      EXPECT_TRUE(rows.insert(row(a, c)).second) << path << " class " << a.class_names[c];
    }
    // Every attribute is used by some class, and none by all of them (it would carry nothing).
    const auto per_attr = a.matrix.sum(0);
    EXPECT_TRUE((per_attr >= 1).all().item<bool>()) << path;
    EXPECT_TRUE((per_attr < a.num_classes()).all().item<bool>()) << path;
  }
}

TEST(ClassAttributesShipped, ZeroShotSplitsTransfer) {
  for (const auto& path : {kFashion, kMnist}) {
    const auto a = ClassAttributes::load(path);
    const auto seen = a.seen();
    EXPECT_GE(a.unseen.size(), 3u) << path;
    EXPECT_EQ(seen.size() + a.unseen.size(), static_cast<std::size_t>(a.num_classes()));
    for (auto u : a.unseen) EXPECT_EQ(std::count(seen.begin(), seen.end(), u), 0);
    const auto seen_t = torch::tensor(seen);
    const auto seen_any = a.matrix.index_select(0, seen_t).amax(0);  // [M]
    for (auto u : a.unseen) {
      // Attributes of an unseen class all occur among the seen classes ...
      EXPECT_TRUE((a.matrix[u] <= seen_any).all().item<bool>()) << path << " " << a.class_names[u];
      // ... and its signature differs from every other class's.
      for (std::int64_t c = 0; c < a.num_classes(); ++c) {
        if (c == u) continue;
        EXPECT_FALSE(a.matrix[c].equal(a.matrix[u])) << a.class_names[c];
      }
    }
  }
  EXPECT_EQ(ClassAttributes::load(kFashion).unseen,
            (std::vector<std::int64_t>{3, 5, 6}));  // dress, sandal, shirt
  EXPECT_EQ(ClassAttributes::load(kMnist).unseen, (std::vector<std::int64_t>{2, 5, 9}));
}

TEST(ClassAttributesShipped, ToJsonRoundTrips) {
  for (const auto& path : {kFashion, kMnist}) {
    const auto a = ClassAttributes::load(path);
    const auto b = ClassAttributes::from_json(a.to_json(), "round trip");
    EXPECT_EQ(b.dataset, a.dataset);
    EXPECT_EQ(b.class_names, a.class_names);
    EXPECT_EQ(b.class_name_variants, a.class_name_variants);
    EXPECT_EQ(b.attribute_names, a.attribute_names);
    EXPECT_EQ(b.attribute_phrases, a.attribute_phrases);
    EXPECT_EQ(b.attribute_groups, a.attribute_groups);
    EXPECT_EQ(b.generic_names, a.generic_names);
    EXPECT_EQ(b.unseen, a.unseen);
    EXPECT_TRUE(b.matrix.equal(a.matrix));
  }
}

TEST(ClassAttributesShipped, ClassIndexTakesNamesAndVariants) {
  const auto a = ClassAttributes::load(kFashion);
  EXPECT_EQ(a.class_index("ankle boot"), 9);
  EXPECT_EQ(a.class_index("bootie"), 9);
  EXPECT_EQ(a.class_index("t-shirt/top"), 0);
  EXPECT_EQ(a.class_index("sweater"), 2);
  EXPECT_EQ(a.attribute_index("has_laces"), 11);
  expect_input_error([&] { a.class_index("sandle"); },
                     {"no class 'sandle'", "did you mean 'sandal'"});
  expect_input_error([&] { a.attribute_index("has_lace"); }, {"has_lace", "has_laces"});
}

// ---- Validation errors. ------------------------------------------------------------------------

TEST(ClassAttributesErrors, SmallFileIsValid) {
  const auto a = ClassAttributes::from_json(small(), "toy.json");
  EXPECT_EQ(a.num_classes(), 4);
  EXPECT_EQ(a.unseen, (std::vector<std::int64_t>{3}));
  EXPECT_EQ(a.seen(), (std::vector<std::int64_t>{0, 1, 2}));
  EXPECT_EQ(a.attribute_groups, (std::vector<std::string>{"", "shoes", ""}));
  EXPECT_TRUE(a.matrix.equal(
      torch::tensor({1.f, 0.f, 1.f, 0.f, 1.f, 0.f, 1.f, 0.f, 0.f, 0.f, 1.f, 1.f}).reshape({4, 3})));
  auto j = small();
  j.erase("zero_shot");
  j.erase("generic_names");
  const auto b = ClassAttributes::from_json(j, "toy.json");
  EXPECT_TRUE(b.unseen.empty());
  EXPECT_EQ(b.generic_names, (std::vector<std::string>{"item"}));
}

TEST(ClassAttributesErrors, MalformedJsonReportsByte) {
  expect_input_error([] { ClassAttributes::parse(R"({"dataset": "toy",, })", "bad.json"); },
                     {"bad.json: malformed JSON at byte 19"});
  expect_input_error([] { ClassAttributes::parse("", "empty.json"); },
                     {"empty.json: malformed JSON at byte"});
}

TEST(ClassAttributesErrors, MissingFileNamesIt) {
  expect_input_error([] { ClassAttributes::load("/nonexistent/attrs.json"); },
                     {"/nonexistent/attrs.json"});
}

TEST(ClassAttributesErrors, DuplicateJsonKeyIsNamed) {
  std::string text = small().dump();
  // A second "names" key in classes[1] (nlohmann would keep only the last one).
  const std::string from = R"("name":"boot",)";
  text.replace(text.find(from), from.size(), from + R"("names":["x"],)");
  expect_input_error([&] { ClassAttributes::parse(text, "toy.json"); },
                     {"toy.json: classes[1]: duplicate key 'names'"});
  expect_input_error(
      [] { ClassAttributes::parse(R"({"dataset": "a", "dataset": "b"})", "d.json"); },
      {"d.json: duplicate key 'dataset'"});
}

TEST(ClassAttributesErrors, UnknownKeysAtEveryLevel) {
  auto j = small();
  j["atributes"] = Json::array();
  expect_json_error(j, {"unknown key 'atributes'", "did you mean 'attributes'"});
  j = small();
  j["classes"][2]["atributes"] = j["classes"][2]["attributes"];
  expect_json_error(j, {"classes[2]: unknown key 'atributes'"});
  j = small();
  j["attributes"][1]["phrase"] = Json::array({"x"});
  expect_json_error(j, {"attributes[1]: unknown key 'phrase'", "did you mean 'phrases'"});
  j = small();
  j["zero_shot"]["unsen"] = Json::array();
  expect_json_error(j, {"zero_shot: unknown key 'unsen'"});
}

TEST(ClassAttributesErrors, MissingKeys) {
  auto j = small();
  j["classes"][0].erase("names");
  expect_json_error(j, {"classes[0]: missing key 'names'"});
  j = small();
  j.erase("dataset");
  expect_json_error(j, {"missing key 'dataset'"});
  j = small();
  j["attributes"][2].erase("phrases");
  expect_json_error(j, {"attributes[2]: missing key 'phrases'"});
  j = small();
  j["zero_shot"].erase("unseen");
  expect_json_error(j, {"zero_shot: missing key 'unseen'"});
}

TEST(ClassAttributesErrors, WrongTypes) {
  auto j = small();
  j["dataset"] = 3;
  expect_json_error(j, {"dataset: expected a string, got number"});
  j = small();
  j["classes"][1]["names"] = "boot";
  expect_json_error(j, {"classes[1].names: expected an array, got string"});
  j = small();
  j["classes"][1]["attributes"][0] = true;
  expect_json_error(j, {"classes[1].attributes[0]: expected a string, got boolean"});
  j = small();
  j["attributes"] = Json::object();
  expect_json_error(j, {"attributes: expected an array, got object"});
  expect_json_error(Json::array(), {"expected an object, got array"});
}

TEST(ClassAttributesErrors, DuplicateNames) {
  auto j = small();
  j["classes"][2]["name"] = "ball";
  expect_json_error(j, {"classes[2].name: duplicate class 'ball' (also classes[0])"});
  j = small();
  j["attributes"][2]["name"] = "is_round";
  expect_json_error(j, {"attributes[2].name: duplicate attribute 'is_round' (also attributes[0])"});
  j = small();
  j["classes"][0]["names"] = {"ball", "ball"};
  expect_json_error(j, {"classes[0].names[1]: duplicate 'ball'"});
  j = small();
  j["classes"][0]["attributes"] = {"is_round", "is_round"};
  expect_json_error(j, {"classes[0].attributes[1]: attribute 'is_round' listed twice"});
}

TEST(ClassAttributesErrors, UnknownAttributeSuggestsTheClosest) {
  auto j = small();
  j["classes"][1]["attributes"] = {"has_hell"};
  expect_json_error(
      j, {"classes[1].attributes[0]: unknown attribute 'has_hell'", "did you mean 'has_heel'"});
}

TEST(ClassAttributesErrors, DuplicateSignatureNamesBothClasses) {
  auto j = small();
  j["classes"][3]["attributes"] = {"is_red", "is_round"};
  expect_json_error(j, {"classes[3].attributes", "'pump'", "classes[0] 'ball'", "unique"});
}

TEST(ClassAttributesErrors, EmptyLists) {
  auto j = small();
  j["classes"] = Json::array();
  expect_json_error(j, {"classes: empty"});
  j = small();
  j["attributes"] = Json::array();
  expect_json_error(j, {"attributes: empty"});
  j = small();
  j["classes"][2]["attributes"] = Json::array();
  expect_json_error(j, {"classes[2].attributes: empty"});
  j = small();
  j["attributes"][0]["phrases"] = Json::array();
  expect_json_error(j, {"attributes[0].phrases: empty"});
}

TEST(ClassAttributesErrors, ZeroShotRules) {
  auto j = small();
  j["zero_shot"]["unseen"] = {"pumpp"};
  expect_json_error(j, {"zero_shot.unseen[0]: unknown class 'pumpp'", "did you mean 'pump'"});
  j = small();
  j["zero_shot"]["unseen"] = {"sphere"};
  expect_json_error(j, {"zero_shot.unseen[0]", "name variant", "'ball'"});
  j = small();
  j["zero_shot"]["unseen"] = {"pump", "pump"};
  expect_json_error(j, {"zero_shot.unseen[1]: class 'pump' listed twice"});
  j = small();
  // With the boot unseen too, no seen class has a heel.
  j["zero_shot"]["unseen"] = {"pump", "boot"};
  expect_json_error(
      j, {"zero_shot.unseen[0]", "unseen class 'pump'", "attribute 'has_heel'", "no seen class"});
  j = small();
  j["zero_shot"]["unseen"] = {"ball", "boot", "apple", "pump"};
  expect_json_error(j, {"zero_shot.unseen", "at least one must be seen"});
}

TEST(ClassAttributesErrors, NonUtf8Strings) {
  // Raw bytes: nlohmann's lexer rejects them with a position.
  std::string text = small().dump();
  text.replace(text.find("\"toy\""), 5, "\"to\xff\"");
  expect_input_error([&] { ClassAttributes::parse(text, "toy.json"); },
                     {"toy.json: malformed JSON at byte", "UTF-8"});
  // A json value built in code can hold any bytes.
  auto j = small();
  j["classes"][1]["name"] = std::string("bo\xc3\x28t");
  expect_json_error(j, {"classes[1].name: not valid UTF-8 (byte 2"});
}

TEST(ClassAttributesErrors, CaptionTextMustBeLowerCaseAscii) {
  auto j = small();
  j["classes"][1]["names"][0] = "Boot";
  expect_json_error(j, {"classes[1].names[0]", "'Boot'", "lower-case ASCII"});
  j = small();
  j["attributes"][0]["phrases"][0] = "that is  round";
  expect_json_error(j, {"attributes[0].phrases[0]", "double spaces"});
  j = small();
  j["generic_names"] = {"th\xc3\xa9"};  // valid UTF-8, not ASCII
  expect_json_error(j, {"generic_names[0]", "lower-case ASCII"});
}

TEST(ClassAttributesErrors, NameLeaksAreRejected) {
  // A variant holding another class's name would name that class in its captions.
  auto j = small();
  j["classes"][3]["names"] = {"pump", "red boot"};
  expect_json_error(j,
                    {"classes[3].names[1]", "'red boot'", "contains 'boot'", "classes[1] 'boot'"});
  // Hyphens split words: "ball-gown" names the ball.
  j = small();
  j["classes"][2]["names"] = {"apple", "ball-apple"};
  expect_json_error(j, {"classes[2].names[1]", "contains 'ball'"});
  // A phrase naming a class would leak it into descriptions.
  j = small();
  j["attributes"][0]["phrases"][1] = "round like an apple";
  expect_json_error(j, {"attributes[0].phrases[1]", "contains 'apple'"});
  // A generic noun naming a class.
  j = small();
  j["generic_names"] = {"thing", "sphere thing"};
  expect_json_error(j, {"generic_names[1]", "contains 'sphere'"});
  // A name that is a template word would be in every caption.
  j = small();
  j["classes"][2]["names"] = {"apple", "photo"};
  expect_json_error(j, {"classes[2].names[1]", "caption templates"});
}

TEST(ClassAttributesErrors, AmbiguousPhrasesAreRejected) {
  auto j = small();
  j["attributes"][2]["phrases"][1] = "that is round and red";  // holds is_round's phrase
  expect_json_error(
      j, {"attributes[2].phrases[1]", "contains 'that is round'", "attribute 'is_round'"});
  j = small();
  j["classes"][1]["names"][1] = "boot with a heel";
  expect_json_error(j, {"classes[1].names[1]", "contains 'with a heel'"});
}

// ---- Captions. ---------------------------------------------------------------------------------

TEST(CaptionGrammar, DeterministicPerSeed) {
  const auto a = ClassAttributes::load(kFashion);
  const CaptionGrammar g(a), h(ClassAttributes::load(kFashion));
  std::set<std::string> different;
  for (std::int64_t c = 0; c < a.num_classes(); ++c) {
    for (std::uint64_t seed = 0; seed < 50; ++seed) {
      EXPECT_EQ(g.caption(c, seed), h.caption(c, seed));
      EXPECT_EQ(g.description(c, seed), h.description(c, seed));
    }
    different.insert(g.caption(c, 1));
  }
  EXPECT_EQ(different.size(), 10u);
  EXPECT_NE(g.caption(9, 1), g.caption(9, 2));
  // Pinned outputs: the draws are portable (no std::uniform_int_distribution), so these hold
  // under every standard library; a change to the grammar or the files shows up here.
  EXPECT_EQ(g.caption(9, 7),
            "an ankle boot that covers the ankle, with a heel, and that encloses the foot");
  EXPECT_EQ(
      CaptionGrammar(ClassAttributes::load(kMnist)).description(8, 3),
      "something with a loop at the bottom, with a rounded top, that has a closed loop, with "
      "strokes that cross, curved at the bottom, with a loop at the top, with a pair of loops, "
      "and that is mirror symmetric");
}

TEST(CaptionGrammar, ManyDistinctCaptionsPerClass) {
  for (const auto& path : {kFashion, kMnist}) {
    const auto a = ClassAttributes::load(path);
    const CaptionGrammar g(a);
    for (std::int64_t c = 0; c < a.num_classes(); ++c) {
      std::set<std::string> seen;
      for (std::uint64_t seed = 0; seed < 2000; ++seed) seen.insert(g.caption(c, seed));
      EXPECT_GE(seen.size(), 100u) << path << " class " << a.class_names[c];
      EXPECT_GE(g.distinct_captions_estimate(c), static_cast<std::int64_t>(seen.size()));
      EXPECT_GE(g.distinct_captions_estimate(c), 1000);
    }
  }
}

TEST(CaptionGrammar, CaptionsNameOnlyTheirClassAndOnlyPresentAttributes) {
  for (const auto& path : {kFashion, kMnist}) {
    const auto a = ClassAttributes::load(path);
    const CaptionGrammar g(a);
    for (std::int64_t c = 0; c < a.num_classes(); ++c) {
      const auto present = a.present(c);
      std::vector<int> used(a.num_attributes(), 0);
      for (std::uint64_t seed = 0; seed < 500; ++seed) {
        const std::string cap = g.caption(c, seed);
        ASSERT_TRUE(is_caption_ascii(cap)) << cap;
        EXPECT_TRUE(mentions_any(cap, a.class_name_variants[c])) << cap;
        for (std::int64_t d = 0; d < a.num_classes(); ++d) {
          if (d == c) continue;
          for (const auto& n : all_names(a, d))
            EXPECT_FALSE(has_words(cap, n)) << "'" << cap << "' names class " << a.class_names[d];
        }
        int mentioned = 0;
        for (std::int64_t m = 0; m < a.num_attributes(); ++m) {
          const bool has = std::count(present.begin(), present.end(), m) > 0;
          const bool said = mentions_any(cap, a.attribute_phrases[m]);
          if (has) {
            mentioned += said;
            used[m] += said;
          } else {
            EXPECT_FALSE(said) << "'" << cap << "' mentions absent " << a.attribute_names[m];
          }
        }
        EXPECT_GE(mentioned, 1) << cap;
        EXPECT_LE(mentioned, CaptionGrammar::kMaxCaptionAttributes) << cap;
      }
      // Over many seeds every present attribute gets mentioned.
      for (auto m : present)
        EXPECT_GT(used[m], 0) << a.class_names[c] << " " << a.attribute_names[m];
    }
  }
}

TEST(CaptionGrammar, UnseenNamesNeverAppearInSeenCaptions) {
  const auto a = ClassAttributes::load(kFashion);
  const CaptionGrammar g(a);
  for (auto c : a.seen())
    for (std::uint64_t seed = 0; seed < 300; ++seed) {
      const std::string cap = g.caption(c, seed);
      for (auto u : a.unseen)
        for (const auto& n : all_names(a, u)) EXPECT_FALSE(has_words(cap, n)) << cap;
      // Substring check too: not even "shirt" inside another word.
      EXPECT_EQ(cap.find("shirt"), std::string::npos) << cap;
      EXPECT_EQ(cap.find("sandal"), std::string::npos) << cap;
      EXPECT_EQ(cap.find("dress"), std::string::npos) << cap;
    }
}

TEST(CaptionGrammar, DescriptionsNameNoClassAndListAllAttributes) {
  for (const auto& path : {kFashion, kMnist}) {
    const auto a = ClassAttributes::load(path);
    const CaptionGrammar g(a);
    for (std::int64_t c = 0; c < a.num_classes(); ++c) {
      const auto present = a.present(c);
      std::set<std::string> distinct;
      for (std::uint64_t seed = 0; seed < 200; ++seed) {
        const std::string text = g.description(c, seed);
        distinct.insert(text);
        ASSERT_TRUE(is_caption_ascii(text)) << text;
        for (std::int64_t d = 0; d < a.num_classes(); ++d)
          for (const auto& n : all_names(a, d))
            EXPECT_FALSE(has_words(text, n)) << "'" << text << "' names " << a.class_names[d];
        for (std::int64_t m = 0; m < a.num_attributes(); ++m) {
          const bool has = std::count(present.begin(), present.end(), m) > 0;
          EXPECT_EQ(mentions_any(text, a.attribute_phrases[m]), has)
              << "'" << text << "' / " << a.attribute_names[m];
        }
      }
      EXPECT_GE(distinct.size(), 20u);
    }
  }
}

TEST(CaptionGrammar, ArticlesAndTemplatesOnASmallSet) {
  auto j = small();
  j["classes"][2]["names"] = {"apple"};
  j["attributes"][0]["phrases"] = {"that is round"};
  const auto a = ClassAttributes::from_json(j, "toy.json");
  const CaptionGrammar g(a);
  // apple has one name, one attribute with one phrase: only the template (and generic) vary.
  std::set<std::string> all;
  for (std::uint64_t seed = 0; seed < 500; ++seed) all.insert(g.caption(2, seed));
  EXPECT_EQ(static_cast<std::int64_t>(all.size()), g.distinct_captions_estimate(2));
  EXPECT_TRUE(all.count("an apple that is round"));
  EXPECT_TRUE(all.count("a photo of an apple that is round"));
  EXPECT_TRUE(all.count("a thing that is round: an apple"));
  for (const auto& cap : all) EXPECT_EQ(cap.find(" a apple"), std::string::npos) << cap;
  EXPECT_EQ(g.description(2, 0).find("apple"), std::string::npos);
  EXPECT_THROW(g.caption(4, 0), mmkt::Error);
  EXPECT_THROW(g.caption(-1, 0), mmkt::Error);
}
