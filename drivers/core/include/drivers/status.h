// Status and Result: how every layer of tpmlab reports failure.
//
// Errors carry the layer that produced them, so a drift report never mistakes
// "the TPM returned an error" for "the socket dropped". C++ code passes these
// values up; the CLI turns them into exit codes and the Python binding into
// exceptions, each in exactly one place.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace tpmlab {

enum class Layer : uint8_t {
  kNone,       // no error
  kTpm,        // the TPM answered with a response code
  kTransport,  // bytes did not get there or back (socket, device, timeout)
  kEmulator,   // the swtpm process: died, control channel refused
  kEnvironment,  // something tpmlab needs is not installed (names the package)
  kParse,      // bytes from a file or the TPM that do not decode
  kScenario,   // a scenario or bench description is wrong
  kStore,      // the results database
  kHarness,    // a harness invariant or a use error
};

const char* LayerName(Layer layer);

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }

  static Status Error(Layer layer, std::string message) {
    Status s;
    s.layer_ = layer;
    s.message_ = std::move(message);
    return s;
  }
  // A TPM response code that is not TPM_RC_SUCCESS.
  static Status Tpm(uint32_t response_code, std::string message) {
    Status s = Error(Layer::kTpm, std::move(message));
    s.tpm_rc_ = response_code;
    return s;
  }
  // A malformed input at a byte offset (or a line, for text files).
  static Status Parse(std::string message, std::optional<uint64_t> offset = {}) {
    Status s = Error(Layer::kParse, std::move(message));
    s.offset_ = offset;
    return s;
  }
  static Status Timeout(std::string message) {
    Status s = Error(Layer::kTransport, std::move(message));
    s.timed_out_ = true;
    return s;
  }

  bool ok() const { return layer_ == Layer::kNone; }
  Layer layer() const { return layer_; }
  const std::string& message() const { return message_; }
  uint32_t tpm_rc() const { return tpm_rc_; }
  std::optional<uint64_t> offset() const { return offset_; }
  bool timed_out() const { return timed_out_; }

  // "transport: connect 127.0.0.1:2321: Connection refused"
  std::string ToString() const;

  // Adds context in front of the message, keeping layer and codes.
  Status Wrap(const std::string& context) const {
    Status s = *this;
    if (!ok()) s.message_ = context + ": " + message_;
    return s;
  }

 private:
  Layer layer_ = Layer::kNone;
  std::string message_;
  uint32_t tpm_rc_ = 0;
  std::optional<uint64_t> offset_;
  bool timed_out_ = false;
};

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}            // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}     // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

namespace internal {
inline Status AsStatus(Status s) { return s; }
template <typename T>
Status AsStatus(const Result<T>& r) { return r.status(); }
}  // namespace internal

}  // namespace tpmlab

#define TPMLAB_CONCAT_INNER(a, b) a##b
#define TPMLAB_CONCAT(a, b) TPMLAB_CONCAT_INNER(a, b)

// Returns the Status of `expr` from the enclosing function when it failed.
#define TRY(expr)                                                        \
  do {                                                                   \
    ::tpmlab::Status try_status_ = ::tpmlab::internal::AsStatus(expr);   \
    if (!try_status_.ok()) return try_status_;                          \
  } while (0)

// Declares (or assigns) `lhs` from a Result, or returns its Status from the
// enclosing function. It expands to several statements: inside an `if`, use braces.
#define TRY_ASSIGN(lhs, expr) \
  TRY_ASSIGN_IMPL(TPMLAB_CONCAT(try_result_, __LINE__), lhs, expr)
#define TRY_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                    \
  if (!tmp.ok()) return tmp.status();   \
  lhs = std::move(tmp).value()
