// TCG PC Client event logs: the crypto-agile format (a Spec ID Event03 header,
// then TCG_PCR_EVENT2 records) and the older SHA1 format (TCG_PCR_EVENT only).
// Pure functions over bytes; all fields little-endian.
//
// An EventLog keeps every event's digests and data in one byte store and the
// events as small records pointing into it, so a 100,000-event log costs a
// handful of allocations, not hundreds of thousands. A log read from a
// regular file uses the file's pages, mapped read-only, as its store: the
// bytes are never copied.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "harness/tpm_types.h"

namespace tpmlab {

// Event types (TCG PC Client Platform Firmware Profile).
namespace ev {
inline constexpr uint32_t kPrebootCert = 0x00000000;
inline constexpr uint32_t kPostCode = 0x00000001;
inline constexpr uint32_t kNoAction = 0x00000003;
inline constexpr uint32_t kSeparator = 0x00000004;
inline constexpr uint32_t kAction = 0x00000005;
inline constexpr uint32_t kEventTag = 0x00000006;
inline constexpr uint32_t kSCrtmContents = 0x00000007;
inline constexpr uint32_t kSCrtmVersion = 0x00000008;
inline constexpr uint32_t kCpuMicrocode = 0x00000009;
inline constexpr uint32_t kPlatformConfigFlags = 0x0000000A;
inline constexpr uint32_t kTableOfDevices = 0x0000000B;
inline constexpr uint32_t kCompactHash = 0x0000000C;
inline constexpr uint32_t kIpl = 0x0000000D;
inline constexpr uint32_t kIplPartitionData = 0x0000000E;
inline constexpr uint32_t kNonhostCode = 0x0000000F;
inline constexpr uint32_t kNonhostConfig = 0x00000010;
inline constexpr uint32_t kNonhostInfo = 0x00000011;
inline constexpr uint32_t kOmitBootDeviceEvents = 0x00000012;
inline constexpr uint32_t kEfiEventBase = 0x80000000;
inline constexpr uint32_t kEfiVariableDriverConfig = 0x80000001;
inline constexpr uint32_t kEfiVariableBoot = 0x80000002;
inline constexpr uint32_t kEfiBootServicesApplication = 0x80000003;
inline constexpr uint32_t kEfiBootServicesDriver = 0x80000004;
inline constexpr uint32_t kEfiRuntimeServicesDriver = 0x80000005;
inline constexpr uint32_t kEfiGptEvent = 0x80000006;
inline constexpr uint32_t kEfiAction = 0x80000007;
inline constexpr uint32_t kEfiPlatformFirmwareBlob = 0x80000008;
inline constexpr uint32_t kEfiHandoffTables = 0x80000009;
inline constexpr uint32_t kEfiPlatformFirmwareBlob2 = 0x8000000A;
inline constexpr uint32_t kEfiHandoffTables2 = 0x8000000B;
inline constexpr uint32_t kEfiVariableBoot2 = 0x8000000C;
inline constexpr uint32_t kEfiGpt2Event = 0x8000000D;
inline constexpr uint32_t kEfiHcrtmEvent = 0x80000010;
inline constexpr uint32_t kEfiVariableAuthority = 0x800000E0;
inline constexpr uint32_t kEfiSpdmFirmwareBlob = 0x800000E1;
inline constexpr uint32_t kEfiSpdmFirmwareConfig = 0x800000E2;
}  // namespace ev

// "EV_NO_ACTION"; unknown types read "EV_UNKNOWN_0x…".
std::string EventTypeName(uint32_t type);
bool IsKnownEventType(uint32_t type);

enum class LogFormat { kCryptoAgile, kSha1 };
const char* LogFormatName(LogFormat format);  // "crypto-agile", "sha1"

struct AlgorithmSize {
  uint16_t alg = 0;
  uint16_t digest_size = 0;
  bool operator==(const AlgorithmSize&) const = default;
};

// TCG_EfiSpecIDEvent: the first event of a crypto-agile log.
struct SpecIdEvent {
  uint32_t platform_class = 0;
  uint8_t version_minor = 0;
  uint8_t version_major = 2;
  uint8_t errata = 0;
  uint8_t uintn_size = 2;
  std::vector<AlgorithmSize> algorithms;
  Bytes vendor_info;
  bool operator==(const SpecIdEvent&) const = default;
};

struct Event {
  uint32_t pcr = 0;
  uint32_t type = 0;
  uint32_t first_digest = 0;  // index into the log's digest table
  uint32_t digest_count = 0;
  uint64_t data_offset = 0;   // into the log's byte store
  uint32_t data_size = 0;
  uint64_t log_offset = 0;    // where the event starts in the parsed bytes
};

class EventLog {
 public:
  struct DigestRef {
    uint16_t alg = 0;
    uint16_t size = 0;
    uint64_t offset = 0;  // into the byte store
  };

  // An empty crypto-agile log for these banks (a Spec ID header, no events).
  static EventLog CryptoAgile(const std::vector<HashAlg>& banks);

  LogFormat format() const { return format_; }
  const SpecIdEvent& spec() const { return spec_; }
  const std::vector<Event>& events() const { return events_; }
  size_t size() const { return events_.size(); }

  ByteView Data(const Event& e) const { return {Store() + e.data_offset, e.data_size}; }
  const DigestRef& DigestAt(const Event& e, uint32_t i) const { return digests_[e.first_digest + i]; }
  ByteView DigestBytes(const DigestRef& d) const { return {Store() + d.offset, d.size}; }
  // The event's digest for one algorithm, when it carries one.
  std::optional<ByteView> DigestFor(const Event& e, uint16_t alg) const;

  // Appends an event; `digests` pairs a TPM_ALG_ID with its digest.
  void Append(uint32_t pcr, uint32_t type, const std::vector<std::pair<uint16_t, Bytes>>& digests,
              ByteView data);

  // Same format, header, and events (pcr, type, digests, data) in order.
  bool operator==(const EventLog& other) const;

 private:
  friend Result<EventLog> ParseEventLog(Bytes bytes);
  friend Result<EventLog> ReadEventLogFile(const std::string& path);
  static Result<EventLog> Parse(EventLog log);  // the header and events of its store

  const uint8_t* Store() const { return mapped_ ? mapped_.get() : store_.data(); }
  ByteView StoreBytes() const { return mapped_ ? ByteView(mapped_.get(), mapped_size_) : ByteView(store_); }

  LogFormat format_ = LogFormat::kCryptoAgile;
  SpecIdEvent spec_;
  Bytes store_;
  // The file's pages instead of store_ (unmapped with the last copy of the
  // log); Append copies them into store_ first.
  std::shared_ptr<const uint8_t> mapped_;
  size_t mapped_size_ = 0;
  std::vector<DigestRef> digests_;
  std::vector<Event> events_;
};

/// Parses a log. A log whose framing is broken (sizes, counts, algorithms
/// not in the Spec ID event) is a parse error naming the byte offset; a
/// zero-filled tail ends the log. Never allocates from an unchecked size.
Result<EventLog> ParseEventLog(Bytes bytes);
inline Result<EventLog> ParseEventLog(ByteView bytes) {
  return ParseEventLog(Bytes(bytes.begin(), bytes.end()));
}
Result<EventLog> ReadEventLogFile(const std::string& path);

/// Writes a crypto-agile log (a SHA1-format log is written in crypto-agile
/// form with one sha1 bank). write(parse(b)) == b for logs tpmlab wrote.
Bytes WriteEventLog(const EventLog& log);

}  // namespace tpmlab
