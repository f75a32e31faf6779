// Loading and validation of class-attribute files, and the caption grammar. See
// class_attributes.h and data/README.md (the file format and how the shipped files were scored).
#include "mmkt/data/class_attributes.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mmkt/core/error.h"
#include "mmkt/io/files.h"
#include "mmkt/text/utf8.h"

namespace mmkt::data {
namespace {

using Json = nlohmann::json;
using Words = std::vector<std::string>;

// ---- Caption templates. ----------------------------------------------------------------------
// Placeholders: {an} = article + class-name variant, {n} = bare variant, {ag} = article +
// generic noun, {m} = the attribute phrases joined ("A", "A and B", "A, B and C").
const std::vector<std::string>& caption_templates() {
  static const std::vector<std::string> kTemplates = {
      "{an} {m}",
      "a photo of {an} {m}",
      "a picture of {an}, {m}",
      "an image of {an} {m}",
      "{n}, {m}",
      "{n} {m}",
      "this is {an} {m}",
      "here is {an} {m}",
      "{ag} {m}: {an}",
      "{ag} {m}, namely {an}",
      "{an}: {ag} {m}",
      "a small grey picture of {an} {m}",
      "a photo of {an}, {m}",
  };
  return kTemplates;
}

// Descriptions name no class: a generic noun (or "something") and every attribute.
const std::vector<std::string>& description_templates() {
  static const std::vector<std::string> kTemplates = {
      "{ag} {m}",
      "something {m}",
      "a photo of something {m}",
      "a picture of {ag} {m}",
      "an image of {ag}, {m}",
      "this is {ag} {m}",
  };
  return kTemplates;
}

bool uses_generic(const std::string& tmpl) { return tmpl.find("{ag}") != std::string::npos; }

// ---- Words. ------------------------------------------------------------------------------------
// Words are maximal runs of [a-z0-9'] (hyphens split: "t-shirt" holds the word "shirt", as a
// subword tokenizer would see it).
bool is_word_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\''; }

Words words_of(const std::string& s) {
  Words out;
  std::string cur;
  for (char c : s) {
    if (is_word_char(c)) {
      cur += c;
    } else if (!cur.empty()) {
      out.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// True when `needle` occurs in `hay` as a contiguous run of whole words.
bool contains_words(const Words& hay, const Words& needle) {
  if (needle.empty() || needle.size() > hay.size()) return false;
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

// Literal word runs of the templates (between placeholders), plus the articles: a class name
// inside one of them would appear in every caption.
std::vector<std::pair<Words, std::string>> template_fragments() {
  std::vector<std::pair<Words, std::string>> out = {{{"a"}, "a"}, {{"an"}, "an"}};
  auto add = [&](const std::string& tmpl) {
    std::string lit;
    for (std::size_t i = 0; i <= tmpl.size(); ++i) {
      if (i == tmpl.size() || tmpl[i] == '{') {
        const Words w = words_of(lit);
        if (!w.empty()) out.emplace_back(w, lit);
        lit.clear();
        if (i < tmpl.size()) i = tmpl.find('}', i);
      } else {
        lit += tmpl[i];
      }
    }
  };
  for (const auto& t : caption_templates()) add(t);
  for (const auto& t : description_templates()) add(t);
  return out;
}

// "a" or "an" before `text`, by its first word; numerals as read aloud ("an 8", "an 11").
std::string article(const std::string& text) {
  const Words w = words_of(text);
  const std::string first = w.empty() ? text : w.front();
  if (first.empty()) return "a";
  auto starts = [&](const char* p) { return first.rfind(p, 0) == 0; };
  if (first[0] >= '0' && first[0] <= '9')
    return first[0] == '8' || first == "11" || first == "18" ? "an" : "a";
  for (const char* p : {"one", "once", "uni", "use", "usu", "eu", "ewe"})
    if (starts(p)) return "a";
  for (const char* p : {"hour", "honest", "honor", "honour", "heir"})
    if (starts(p)) return "an";
  return std::string("aeiou").find(first[0]) != std::string::npos ? "an" : "a";
}

// ---- Portable draws. -------------------------------------------------------------------------
// Uniform in [0, n) by rejection: the same numbers under every standard library.
std::uint64_t draw(std::mt19937_64& rng, std::uint64_t n) {
  const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n
  while (true) {
    const std::uint64_t r = rng();
    if (r >= threshold) return r % n;
  }
}

template <typename T>
const T& pick(std::mt19937_64& rng, const std::vector<T>& v) {
  return v[draw(rng, v.size())];
}

// "A", "A and B" / "A, B", "A, B and C" / "A, B, and C".
std::string join_phrases(const std::vector<std::string>& p, std::uint64_t style) {
  std::string out;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (i > 0) {
      const bool last = i + 1 == p.size();
      if (!last) {
        out += ", ";
      } else if (p.size() == 2) {
        out += style == 0 ? " and " : ", ";
      } else {
        out += style == 0 ? " and " : ", and ";
      }
    }
    out += p[i];
  }
  return out;
}

std::string render(const std::string& tmpl, const std::string& name, const std::string& generic,
                   const std::string& mods) {
  std::string out;
  for (std::size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] != '{') {
      out += tmpl[i];
      continue;
    }
    const std::size_t end = tmpl.find('}', i);
    const std::string key = tmpl.substr(i + 1, end - i - 1);
    if (key == "an")
      out += article(name) + " " + name;
    else if (key == "n")
      out += name;
    else if (key == "ag")
      out += article(generic) + " " + generic;
    else if (key == "m")
      out += mods;
    i = end;
  }
  return out;
}

// ---- Validation. -----------------------------------------------------------------------------
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// " (did you mean 'x'?)" for the closest candidate within two edits, else "".
std::string suggestion(const std::string& got, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_d = 3;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(got, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

std::string join_list(const std::vector<std::string>& v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out;
}

std::string idx(const std::string& path, std::size_t i) {
  return path + "[" + std::to_string(i) + "]";
}
std::string key(const std::string& path, const std::string& k) {
  return path.empty() ? k : path + "." + k;
}

class Checker {
 public:
  explicit Checker(std::string source) : source_(std::move(source)) {}

  template <typename... Args>
  [[noreturn]] void fail(const std::string& path, Args&&... args) const {
    if (path.empty()) fail_input(source_, ": ", std::forward<Args>(args)...);
    fail_input(source_, ": ", path, ": ", std::forward<Args>(args)...);
  }

  // `j` is an object whose keys are all in required + optional and that has every required key.
  void object(const Json& j, const std::string& path, const std::vector<std::string>& required,
              const std::vector<std::string>& optional = {}) const {
    if (!j.is_object()) fail(path, "expected an object, got ", j.type_name());
    std::vector<std::string> all = required;
    all.insert(all.end(), optional.begin(), optional.end());
    for (const auto& item : j.items()) {
      if (std::find(all.begin(), all.end(), item.key()) == all.end()) {
        fail(path, "unknown key '", printable(item.key()), "'", suggestion(item.key(), all),
             "; expected keys: ", join_list(all));
      }
    }
    for (const auto& k : required)
      if (!j.contains(k)) fail(path, "missing key '", k, "'");
  }

  std::string string(const Json& j, const std::string& path) const {
    if (!j.is_string()) fail(path, "expected a string, got ", j.type_name());
    const auto& s = j.get_ref<const std::string&>();
    if (const auto bad = text::find_invalid_utf8(s))
      fail(path, "not valid UTF-8 (byte ", *bad, " of the string)");
    if (s.empty()) fail(path, "empty string");
    return s;
  }

  // A string that appears in captions: lower-case ASCII words separated by single spaces.
  std::string caption_text(const Json& j, const std::string& path) const {
    const std::string s = string(j, path);
    for (char c : s) {
      if (!(is_word_char(c) || c == ' ' || c == '-'))
        fail(path, "'", s, "' may hold only lower-case ASCII letters, digits, spaces, hyphens ",
             "and apostrophes (it is used in captions)");
    }
    if (s.front() == ' ' || s.back() == ' ' || s.find("  ") != std::string::npos)
      fail(path, "'", s, "' has leading, trailing or double spaces");
    if (words_of(s).empty()) fail(path, "'", s, "' holds no word");
    return s;
  }

  const Json& array(const Json& j, const std::string& path, bool non_empty) const {
    if (!j.is_array()) fail(path, "expected an array, got ", j.type_name());
    if (non_empty && j.empty()) fail(path, "empty; at least one entry is needed");
    return j;
  }

  // A non-empty array of distinct caption strings.
  std::vector<std::string> caption_texts(const Json& j, const std::string& path) const {
    array(j, path, true);
    std::vector<std::string> out;
    for (std::size_t i = 0; i < j.size(); ++i) {
      std::string s = caption_text(j[i], idx(path, i));
      const auto it = std::find(out.begin(), out.end(), s);
      if (it != out.end())
        fail(idx(path, i), "duplicate '", s, "' (also ", idx(path, it - out.begin()), ")");
      out.push_back(std::move(s));
    }
    return out;
  }

 private:
  // Keys may hold any bytes; keep the message readable.
  static std::string printable(const std::string& s) {
    if (!text::find_invalid_utf8(s)) return s;
    return "<not UTF-8>";
  }
  std::string source_;
};

// Parses with a callback that rejects duplicate object keys (nlohmann keeps the last one
// silently, which would hide e.g. a second "attributes" list).
struct DuplicateKey {
  std::string path;
  std::string key;
};

Json parse_strict(const std::string& text, const std::string& source) {
  struct Frame {
    bool is_array = false;
    std::string key;
    std::int64_t count = 0;
    std::set<std::string> keys;
  };
  std::vector<Frame> stack;
  auto path_of_top = [&] {
    std::string path;
    for (std::size_t i = 0; i + 1 < stack.size(); ++i) {
      const Frame& f = stack[i];
      path = f.is_array ? idx(path, static_cast<std::size_t>(f.count - 1)) : key(path, f.key);
    }
    return path;
  };
  const Json::parser_callback_t callback = [&](int, Json::parse_event_t event, Json& parsed) {
    using E = Json::parse_event_t;
    switch (event) {
      case E::object_start:
      case E::array_start:
        if (!stack.empty() && stack.back().is_array) ++stack.back().count;
        stack.push_back(Frame{event == E::array_start, "", 0, {}});
        break;
      case E::key: {
        Frame& f = stack.back();
        f.key = parsed.get<std::string>();
        if (!f.keys.insert(f.key).second) throw DuplicateKey{path_of_top(), f.key};
        break;
      }
      case E::value:
        if (!stack.empty() && stack.back().is_array) ++stack.back().count;
        break;
      case E::object_end:
      case E::array_end:
        stack.pop_back();
        break;
    }
    return true;
  };
  try {
    return Json::parse(text, callback);
  } catch (const Json::parse_error& e) {
    fail_input(source, ": malformed JSON at byte ", e.byte, ": ", e.what());
  } catch (const DuplicateKey& d) {
    Checker(source).fail(d.path, "duplicate key '", d.key, "'");
  }
}

}  // namespace

// ---- ClassAttributes. -------------------------------------------------------------------------

std::vector<std::int64_t> ClassAttributes::seen() const {
  std::vector<std::int64_t> out;
  for (std::int64_t c = 0; c < num_classes(); ++c)
    if (std::find(unseen.begin(), unseen.end(), c) == unseen.end()) out.push_back(c);
  return out;
}

std::vector<std::int64_t> ClassAttributes::present(std::int64_t cls) const {
  MMKT_CHECK(matrix.defined() && matrix.dim() == 2 && matrix.size(0) == num_classes() &&
                 matrix.size(1) == num_attributes(),
             "class-attribute matrix of '", dataset, "' does not match its names");
  MMKT_CHECK(cls >= 0 && cls < num_classes(), "class index ", cls, " out of range [0, ",
             num_classes(), ") of '", dataset, "'");
  const torch::Tensor row = matrix[cls].to(torch::kCPU, torch::kFloat32).contiguous();
  const float* p = row.data_ptr<float>();
  std::vector<std::int64_t> out;
  for (std::int64_t m = 0; m < num_attributes(); ++m)
    if (p[m] > 0.5f) out.push_back(m);
  return out;
}

ClassAttributes ClassAttributes::load(const std::string& path) {
  return parse(io::read_file(path), path);
}

ClassAttributes ClassAttributes::parse(const std::string& text, const std::string& source) {
  return from_json(parse_strict(text, source), source);
}

ClassAttributes ClassAttributes::from_json(const nlohmann::json& j, const std::string& source) {
  const Checker check(source);
  check.object(j, "", {"dataset", "classes", "attributes"}, {"zero_shot", "generic_names"});
  ClassAttributes out;
  out.dataset = check.string(j["dataset"], "dataset");

  // Attributes first: classes refer to them by name.
  const Json& attrs = check.array(j["attributes"], "attributes", true);
  for (std::size_t m = 0; m < attrs.size(); ++m) {
    const std::string path = idx("attributes", m);
    check.object(attrs[m], path, {"name", "phrases"}, {"group"});
    std::string name = check.string(attrs[m]["name"], key(path, "name"));
    const auto it = std::find(out.attribute_names.begin(), out.attribute_names.end(), name);
    if (it != out.attribute_names.end())
      check.fail(key(path, "name"), "duplicate attribute '", name, "' (also ",
                 idx("attributes", it - out.attribute_names.begin()), ")");
    out.attribute_names.push_back(std::move(name));
    out.attribute_phrases.push_back(check.caption_texts(attrs[m]["phrases"], key(path, "phrases")));
    out.attribute_groups.push_back(
        attrs[m].contains("group") ? check.string(attrs[m]["group"], key(path, "group")) : "");
  }
  const std::int64_t num_attr = static_cast<std::int64_t>(out.attribute_names.size());

  const Json& classes = check.array(j["classes"], "classes", true);
  std::vector<std::vector<std::int64_t>> rows;
  for (std::size_t c = 0; c < classes.size(); ++c) {
    const std::string path = idx("classes", c);
    check.object(classes[c], path, {"name", "names", "attributes"});
    std::string name = check.string(classes[c]["name"], key(path, "name"));
    const auto it = std::find(out.class_names.begin(), out.class_names.end(), name);
    if (it != out.class_names.end())
      check.fail(key(path, "name"), "duplicate class '", name, "' (also ",
                 idx("classes", it - out.class_names.begin()), ")");
    out.class_names.push_back(std::move(name));
    out.class_name_variants.push_back(check.caption_texts(classes[c]["names"], key(path, "names")));

    const std::string apath = key(path, "attributes");
    const Json& list = check.array(classes[c]["attributes"], apath, false);
    if (list.empty())
      check.fail(apath, "empty; every class needs at least one attribute (captions and ",
                 "descriptions are built from them)");
    std::vector<std::int64_t> row;
    for (std::size_t k = 0; k < list.size(); ++k) {
      const std::string a = check.string(list[k], idx(apath, k));
      const auto at = std::find(out.attribute_names.begin(), out.attribute_names.end(), a);
      if (at == out.attribute_names.end())
        check.fail(idx(apath, k), "unknown attribute '", a, "'",
                   suggestion(a, out.attribute_names));
      const std::int64_t m = at - out.attribute_names.begin();
      if (std::find(row.begin(), row.end(), m) != row.end())
        check.fail(idx(apath, k), "attribute '", a, "' listed twice");
      row.push_back(m);
    }
    std::sort(row.begin(), row.end());
    // Unique signatures: two classes with the same attributes cannot be told apart by them.
    for (std::size_t d = 0; d < rows.size(); ++d) {
      if (rows[d] == row) {
        std::vector<std::string> names;
        for (auto m : row) names.push_back(out.attribute_names[m]);
        check.fail(apath, "class '", out.class_names[c], "' has the same attributes as ",
                   idx("classes", d), " '", out.class_names[d], "' (", join_list(names),
                   "); every class needs a unique attribute signature");
      }
    }
    rows.push_back(std::move(row));
  }
  const std::int64_t num_cls = static_cast<std::int64_t>(out.class_names.size());

  if (j.contains("generic_names")) {
    out.generic_names = check.caption_texts(j["generic_names"], "generic_names");
  } else {
    out.generic_names = {"item"};
  }

  // Text rules. A caption of class c is built from c's name variants, phrases of c's
  // attributes, generic nouns and template words, so: no variant of c contains a variant of
  // another class; no phrase, generic noun or template word run contains any class name; no
  // phrase contains a phrase of another attribute (a caption would seem to mention an absent
  // attribute); no name variant or generic noun contains a phrase.
  struct Named {
    Words words;
    std::string text;
    std::int64_t cls;
    std::string path;
  };
  std::vector<Named> variants;
  for (std::int64_t c = 0; c < num_cls; ++c)
    for (std::size_t i = 0; i < out.class_name_variants[c].size(); ++i)
      variants.push_back({words_of(out.class_name_variants[c][i]), out.class_name_variants[c][i], c,
                          idx(key(idx("classes", c), "names"), i)});
  std::vector<Named> phrases;  // cls = attribute index here
  for (std::int64_t m = 0; m < num_attr; ++m)
    for (std::size_t i = 0; i < out.attribute_phrases[m].size(); ++i)
      phrases.push_back({words_of(out.attribute_phrases[m][i]), out.attribute_phrases[m][i], m,
                         idx(key(idx("attributes", m), "phrases"), i)});
  std::vector<Named> generics;
  for (std::size_t i = 0; i < out.generic_names.size(); ++i)
    generics.push_back(
        {words_of(out.generic_names[i]), out.generic_names[i], -1, idx("generic_names", i)});

  const auto fragments = template_fragments();
  for (const auto& v : variants) {
    for (const auto& u : variants) {
      if (u.cls != v.cls && contains_words(v.words, u.words))
        check.fail(v.path, "name '", v.text, "' of class '", out.class_names[v.cls], "' contains '",
                   u.text, "', a name of ", idx("classes", u.cls), " '", out.class_names[u.cls],
                   "' (", u.path, "); a caption of one class must never name another");
    }
    for (const auto& [frag, lit] : fragments) {
      if (contains_words(frag, v.words))
        check.fail(v.path, "name '", v.text, "' also occurs in the caption templates ('", lit,
                   "'); every caption would name this class");
    }
    for (const auto& p : phrases) {
      if (contains_words(v.words, p.words))
        check.fail(v.path, "name '", v.text, "' contains '", p.text, "', a phrase of attribute '",
                   out.attribute_names[p.cls], "' (", p.path, ")");
    }
  }
  for (const auto& p : phrases) {
    for (const auto& v : variants) {
      if (contains_words(p.words, v.words))
        check.fail(p.path, "phrase '", p.text, "' contains '", v.text, "', a name of ",
                   idx("classes", v.cls), " '", out.class_names[v.cls],
                   "'; phrases must not name a class");
    }
    for (const auto& q : phrases) {
      if (q.cls != p.cls && contains_words(p.words, q.words))
        check.fail(p.path, "phrase '", p.text, "' of attribute '", out.attribute_names[p.cls],
                   "' contains '", q.text, "', a phrase of attribute '", out.attribute_names[q.cls],
                   "' (", q.path, "); captions could not tell them apart");
    }
  }
  for (const auto& g : generics) {
    for (const auto& v : variants) {
      if (contains_words(g.words, v.words))
        check.fail(g.path, "generic name '", g.text, "' contains '", v.text, "', a name of ",
                   idx("classes", v.cls), " '", out.class_names[v.cls], "'");
    }
    for (const auto& p : phrases) {
      if (contains_words(g.words, p.words))
        check.fail(g.path, "generic name '", g.text, "' contains '", p.text,
                   "', a phrase of attribute '", out.attribute_names[p.cls], "'");
    }
  }

  if (j.contains("zero_shot")) {
    const Json& zs = j["zero_shot"];
    check.object(zs, "zero_shot", {"unseen"});
    const Json& list = check.array(zs["unseen"], "zero_shot.unseen", false);
    std::vector<std::int64_t> unseen;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string path = idx("zero_shot.unseen", i);
      const std::string name = check.string(list[i], path);
      const auto it = std::find(out.class_names.begin(), out.class_names.end(), name);
      if (it == out.class_names.end()) {
        for (std::int64_t c = 0; c < num_cls; ++c) {
          const auto& vs = out.class_name_variants[c];
          if (std::find(vs.begin(), vs.end(), name) != vs.end())
            check.fail(path, "'", name, "' is a name variant; use the class name '",
                       out.class_names[c], "'");
        }
        check.fail(path, "unknown class '", name, "'", suggestion(name, out.class_names),
                   "; classes: ", join_list(out.class_names));
      }
      const std::int64_t c = it - out.class_names.begin();
      if (std::find(unseen.begin(), unseen.end(), c) != unseen.end())
        check.fail(path, "class '", name, "' listed twice");
      unseen.push_back(c);
    }
    if (static_cast<std::int64_t>(unseen.size()) >= num_cls)
      check.fail("zero_shot.unseen", "every class is unseen; at least one must be seen");
    // Every attribute of an unseen class must be learnable from the seen classes.
    std::vector<bool> seen_attr(num_attr, false);
    for (std::int64_t c = 0; c < num_cls; ++c)
      if (std::find(unseen.begin(), unseen.end(), c) == unseen.end())
        for (auto m : rows[c]) seen_attr[m] = true;
    for (std::size_t i = 0; i < unseen.size(); ++i) {
      for (auto m : rows[unseen[i]]) {
        if (!seen_attr[m])
          check.fail(idx("zero_shot.unseen", i), "unseen class '", out.class_names[unseen[i]],
                     "' has attribute '", out.attribute_names[m],
                     "', which no seen class has; attributes of unseen classes must be learnt ",
                     "from seen ones");
      }
    }
    std::sort(unseen.begin(), unseen.end());
    out.unseen = std::move(unseen);
  }

  out.matrix = torch::zeros({num_cls, num_attr}, torch::kFloat32);
  auto acc = out.matrix.accessor<float, 2>();
  for (std::int64_t c = 0; c < num_cls; ++c)
    for (auto m : rows[c]) acc[c][m] = 1.0f;
  return out;
}

nlohmann::json ClassAttributes::to_json() const {
  Json j;
  j["dataset"] = dataset;
  Json attrs = Json::array();
  for (std::int64_t m = 0; m < num_attributes(); ++m) {
    Json a = {{"name", attribute_names[m]}, {"phrases", attribute_phrases[m]}};
    if (m < static_cast<std::int64_t>(attribute_groups.size()) && !attribute_groups[m].empty())
      a["group"] = attribute_groups[m];
    attrs.push_back(std::move(a));
  }
  j["attributes"] = std::move(attrs);
  Json classes = Json::array();
  for (std::int64_t c = 0; c < num_classes(); ++c) {
    Json names = Json::array();
    for (auto m : present(c)) names.push_back(attribute_names[m]);
    classes.push_back(
        {{"name", class_names[c]}, {"names", class_name_variants[c]}, {"attributes", names}});
  }
  j["classes"] = std::move(classes);
  j["generic_names"] = generic_names;
  Json unseen_names = Json::array();
  for (auto c : unseen) unseen_names.push_back(class_names.at(c));
  j["zero_shot"] = {{"unseen", unseen_names}};
  return j;
}

std::int64_t ClassAttributes::class_index(const std::string& name) const {
  for (std::int64_t c = 0; c < num_classes(); ++c)
    if (class_names[c] == name) return c;
  for (std::int64_t c = 0; c < num_classes(); ++c) {
    const auto& vs = class_name_variants[c];
    if (std::find(vs.begin(), vs.end(), name) != vs.end()) return c;
  }
  fail_input("dataset '", dataset, "' has no class '", name, "'", suggestion(name, class_names),
             "; classes: ", join_list(class_names));
}

std::int64_t ClassAttributes::attribute_index(const std::string& name) const {
  for (std::int64_t m = 0; m < num_attributes(); ++m)
    if (attribute_names[m] == name) return m;
  fail_input("dataset '", dataset, "' has no attribute '", name, "'",
             suggestion(name, attribute_names), "; attributes: ", join_list(attribute_names));
}

// ---- CaptionGrammar. --------------------------------------------------------------------------

CaptionGrammar::CaptionGrammar(const ClassAttributes& attributes)
    : phrases_(attributes.attribute_phrases), generic_(attributes.generic_names) {
  MMKT_CHECK(attributes.class_name_variants.size() == attributes.class_names.size() &&
                 attributes.attribute_phrases.size() == attributes.attribute_names.size(),
             "class attributes of '", attributes.dataset, "' are inconsistent");
  if (generic_.empty()) generic_ = {"item"};
  for (std::int64_t c = 0; c < attributes.num_classes(); ++c) {
    ClassText t{attributes.class_name_variants[c], attributes.present(c)};
    MMKT_CHECK(!t.names.empty(), "class '", attributes.class_names[c], "' has no name variant");
    MMKT_CHECK(!t.present.empty(), "class '", attributes.class_names[c],
               "' has no attribute to caption");
    classes_.push_back(std::move(t));
  }
  for (const auto& p : phrases_) MMKT_CHECK(!p.empty(), "an attribute has no phrase");
}

std::string CaptionGrammar::caption(std::int64_t cls, std::uint64_t seed) const {
  MMKT_CHECK(cls >= 0 && cls < num_classes(), "class index ", cls, " out of range [0, ",
             num_classes(), ")");
  const ClassText& c = classes_[cls];
  std::mt19937_64 rng(seed);
  const std::string& name = pick(rng, c.names);
  const std::uint64_t max_k = std::min<std::uint64_t>(c.present.size(), kMaxCaptionAttributes);
  const std::uint64_t k = 1 + draw(rng, max_k);
  std::vector<std::int64_t> attrs = c.present;
  for (std::uint64_t i = 0; i < k; ++i)  // partial Fisher-Yates: a random ordered k-subset
    std::swap(attrs[i], attrs[i + draw(rng, attrs.size() - i)]);
  std::vector<std::string> parts;
  for (std::uint64_t i = 0; i < k; ++i) parts.push_back(pick(rng, phrases_[attrs[i]]));
  const std::string mods = join_phrases(parts, draw(rng, 2));
  const std::string& tmpl = pick(rng, caption_templates());
  const std::string generic = uses_generic(tmpl) ? pick(rng, generic_) : "";
  return render(tmpl, name, generic, mods);
}

std::string CaptionGrammar::description(std::int64_t cls, std::uint64_t seed) const {
  MMKT_CHECK(cls >= 0 && cls < num_classes(), "class index ", cls, " out of range [0, ",
             num_classes(), ")");
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> attrs = classes_[cls].present;
  for (std::size_t i = 0; i + 1 < attrs.size(); ++i)
    std::swap(attrs[i], attrs[i + draw(rng, attrs.size() - i)]);
  std::vector<std::string> parts;
  for (auto m : attrs) parts.push_back(pick(rng, phrases_[m]));
  const std::string mods = join_phrases(parts, draw(rng, 2));
  const std::string& tmpl = pick(rng, description_templates());
  const std::string generic = uses_generic(tmpl) ? pick(rng, generic_) : "";
  return render(tmpl, "", generic, mods);
}

std::int64_t CaptionGrammar::distinct_captions_estimate(std::int64_t cls) const {
  MMKT_CHECK(cls >= 0 && cls < num_classes(), "class index ", cls, " out of range [0, ",
             num_classes(), ")");
  const ClassText& c = classes_[cls];
  // Ordered k-subsets with a phrase each: k! * e_k(p_1..p_n), e_k the elementary symmetric
  // polynomial of the phrase counts; joins: one form for k = 1, two otherwise.
  std::vector<double> e(c.present.size() + 1, 0.0);
  e[0] = 1.0;
  for (auto m : c.present) {
    const double p = static_cast<double>(phrases_[m].size());
    for (std::size_t k = e.size() - 1; k >= 1; --k) e[k] += e[k - 1] * p;
  }
  double mods = 0.0, factorial = 1.0;
  const std::size_t max_k = std::min<std::size_t>(c.present.size(), kMaxCaptionAttributes);
  for (std::size_t k = 1; k <= max_k; ++k) {
    factorial *= static_cast<double>(k);
    mods += factorial * e[k] * (k == 1 ? 1.0 : 2.0);
  }
  double templates = 0.0;
  for (const auto& t : caption_templates())
    templates += uses_generic(t) ? static_cast<double>(generic_.size()) : 1.0;
  const double total = static_cast<double>(c.names.size()) * templates * mods;
  const double cap = static_cast<double>(std::numeric_limits<std::int64_t>::max());
  return total >= cap ? std::numeric_limits<std::int64_t>::max()
                      : static_cast<std::int64_t>(std::llround(total));
}

}  // namespace mmkt::data
