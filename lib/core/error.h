// Error types shared by the whole library. Errors carry the context a user needs to act on
// them (file, position, key, what was expected); apps catch them at the edge and print one line.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace mmkt {

// Base error of mmkt. The message is complete and human-readable.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Bad input from the user: a file, a config key, a command-line value.
class InputError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}
}  // namespace detail

// Throw an Error whose message is the concatenation of the arguments.
template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(detail::concat(std::forward<Args>(args)...));
}

// Throw an InputError whose message is the concatenation of the arguments.
template <typename... Args>
[[noreturn]] void fail_input(Args&&... args) {
  throw InputError(detail::concat(std::forward<Args>(args)...));
}

// Run `fn`; if it throws, rethrow the same kind of error with `context` prepended
// ("loading run runs/a: <original message>").
template <typename Fn>
auto with_context(const std::string& context, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const InputError& e) {
    throw InputError(context + ": " + e.what());
  } catch (const Error& e) {
    throw Error(context + ": " + e.what());
  }
}

}  // namespace mmkt

// Checks on input and invariants that stay on in Release builds (unlike assert).
#define MMKT_CHECK(cond, ...)               \
  do {                                      \
    if (!(cond)) ::mmkt::fail(__VA_ARGS__); \
  } while (0)
#define MMKT_CHECK_INPUT(cond, ...)               \
  do {                                            \
    if (!(cond)) ::mmkt::fail_input(__VA_ARGS__); \
  } while (0)
