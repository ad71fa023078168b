// Status and Result: how every layer of tpmlab reports failure.
//
// An error carries three things as data, apart from its message:
//  - the layer that produced it (tpm, transport, emulator, parse, ...), so a
//    drift report never mistakes "the TPM returned an error" for "the socket
//    dropped";
//  - its kind (bad input, TPM refusal, transport, ...), which decides the
//    exit code and the Python exception; it defaults from the layer;
//  - where in an input it is (file, line, column, byte offset), so the CLI
//    and Python read the place instead of parsing it back out of the text.
// C++ code passes these values up; the CLI turns them into exit codes and the
// Python binding into exceptions, each in exactly one place.
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

// What an error is, whichever layer noticed it. Exit codes and Python
// exception classes come from the kind (harness/cli/exit_codes.h).
enum class ErrorKind : uint8_t {
  kNone,            // no error
  kBadInput,        // a file, argument or bytes given to tpmlab are wrong: nothing ran
  kTpmRefusal,      // the TPM answered with an error response code
  kTransport,       // bytes did not reach the TPM or come back
  kEmulator,        // the swtpm process died or refused a control command
  kMissingPackage,  // something tpmlab needs is not installed
  kStore,           // the results database failed
  kInternal,        // a harness invariant or a use error inside tpmlab
};

const char* ErrorKindName(ErrorKind kind);
// The kind an error of `layer` is unless it says otherwise.
ErrorKind DefaultKind(Layer layer);

// Where in an input an error is. Every part is optional: a YAML error knows
// file, line and column; a binary log knows a byte offset.
struct Location {
  Location() = default;
  explicit Location(std::string in_file) : file(std::move(in_file)) {}
  Location(std::string in_file, uint32_t at_line, uint32_t at_column)
      : file(std::move(in_file)), line(at_line), column(at_column) {}
  static Location AtOffset(uint64_t byte_offset) {
    Location where;
    where.offset = byte_offset;
    return where;
  }

  std::string file;                // empty when not known
  std::optional<uint32_t> line;    // 1-based
  std::optional<uint32_t> column;  // 1-based
  std::optional<uint64_t> offset;  // bytes from the start of the input

  bool empty() const { return file.empty() && !line && !column && !offset; }
  // "file:line:column", as much of it as is known ("" when none).
  std::string ToString() const;
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }

  static Status Error(Layer layer, std::string message) {
    Status s;
    s.layer_ = layer;
    s.kind_ = DefaultKind(layer);
    s.message_ = std::move(message);
    return s;
  }
  // An error at a place in an input: the message is "file:line:column: reason"
  // (as tpmlab has always written them) and the place is also kept as data.
  static Status ErrorAt(Layer layer, Location where, std::string reason) {
    const std::string place = where.ToString();
    Status s = Error(layer, place.empty() ? reason : place + ": " + reason);
    s.reason_ = std::move(reason);
    s.location_ = std::move(where);
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
    s.location_.offset = offset;
    return s;
  }
  static Status Timeout(std::string message) {
    Status s = Error(Layer::kTransport, std::move(message));
    s.timed_out_ = true;
    return s;
  }

  // The same error as another kind (a parse error in a file the user gave is
  // bad input; one in the TPM's own answer is not).
  Status WithKind(ErrorKind kind) const {
    Status s = *this;
    if (!ok()) s.kind_ = kind;
    return s;
  }
  // The same error, placed: the parts of `where` that are known replace
  // those kept so far. The message is left as it is.
  Status At(const Location& where) const {
    Status s = *this;
    if (ok()) return s;
    if (!where.file.empty()) s.location_.file = where.file;
    if (where.line) s.location_.line = where.line;
    if (where.column) s.location_.column = where.column;
    if (where.offset) s.location_.offset = where.offset;
    return s;
  }

  bool ok() const { return layer_ == Layer::kNone; }
  Layer layer() const { return layer_; }
  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }
  // The message without the place ErrorAt put in front of it; the message
  // itself when it was built without one.
  const std::string& reason() const { return reason_ ? *reason_ : message_; }
  const Location& location() const { return location_; }
  uint32_t tpm_rc() const { return tpm_rc_; }
  std::optional<uint64_t> offset() const { return location_.offset; }
  bool timed_out() const { return timed_out_; }

  // "transport: connect 127.0.0.1:2321: Connection refused"
  std::string ToString() const;

  // Adds context in front of the message, keeping layer, kind, place and codes.
  Status Wrap(const std::string& context) const {
    Status s = *this;
    if (ok()) return s;
    s.message_ = context + ": " + message_;
    if (s.reason_) s.reason_ = context + ": " + *s.reason_;
    return s;
  }

 private:
  Layer layer_ = Layer::kNone;
  ErrorKind kind_ = ErrorKind::kNone;
  std::string message_;
  std::optional<std::string> reason_;  // set by ErrorAt only
  Location location_;
  uint32_t tpm_rc_ = 0;
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
