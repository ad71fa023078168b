// libFuzzer target: any bytes as a TCG event log. Parsing either fails with
// an offset inside the input, or gives a log that replays, checks, decodes
// to valid UTF-8 JSON and writes back to a log that parses the same. Every
// event's data, and the input itself as the data of an event of a type its
// first byte picks, is walked in both of the decoder's modes: what
// EventDataUndecodable calls undecodable is exactly what DecodeEventData
// finds a problem in.
// Built by tests/fuzz/run_fuzz.sh (clang, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <iterator>

#include "harness/event_data.h"
#include "harness/eventlog.h"
#include "harness/findings.h"
#include "harness/replay.h"

namespace {

// A broken promise of the parser's contract: stop here, with the input saved.
void Require(bool ok) {
  if (!ok) __builtin_trap();
}

// The types with a structure to decode, and one without.
constexpr uint32_t kTypes[] = {
    tpmlab::ev::kSeparator, tpmlab::ev::kAction, tpmlab::ev::kEfiAction, tpmlab::ev::kPostCode,
    tpmlab::ev::kSCrtmContents, tpmlab::ev::kSCrtmVersion, tpmlab::ev::kEfiHcrtmEvent,
    tpmlab::ev::kEfiVariableDriverConfig, tpmlab::ev::kEfiVariableBoot, tpmlab::ev::kEfiVariableBoot2,
    tpmlab::ev::kEfiVariableAuthority, tpmlab::ev::kEfiBootServicesApplication, tpmlab::ev::kEfiBootServicesDriver,
    tpmlab::ev::kEfiRuntimeServicesDriver, tpmlab::ev::kEfiPlatformFirmwareBlob,
    tpmlab::ev::kEfiPlatformFirmwareBlob2, tpmlab::ev::kEfiGptEvent, tpmlab::ev::kEfiHandoffTables,
    tpmlab::ev::kEfiHandoffTables2, tpmlab::ev::kEventTag, tpmlab::ev::kNoAction, tpmlab::ev::kIpl};

// Decodes `data` in full and checks it only; the two must agree.
void BothModes(uint32_t type, tpmlab::ByteView data) {
  const tpmlab::DecodedEvent decoded = tpmlab::DecodeEventData(type, data);
  Require(tpmlab::EventDataUndecodable(type, data) == !decoded.problem.empty());
  // strict: nlohmann throws (and libFuzzer reports) on invalid UTF-8.
  (void)decoded.data.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tpmlab;
  if (size > 0) BothModes(kTypes[data[0] % std::size(kTypes)], ByteView(data + 1, size - 1));
  auto log = ParseEventLog(ByteView(data, size));
  if (!log.ok()) {
    Require(log.status().layer() == Layer::kParse && log.status().offset().has_value() &&
            *log.status().offset() <= size);
    return 0;
  }
  (void)ReplayEventLog(*log);
  (void)CheckEventLog(*log);
  // strict: nlohmann throws (and libFuzzer reports) on invalid UTF-8.
  constexpr auto kStrict = nlohmann::json::error_handler_t::strict;
  (void)SpecIdJson(log->spec()).dump(-1, ' ', false, kStrict);
  for (const Event& e : log->events()) BothModes(e.type, log->Data(e));

  const Bytes written = WriteEventLog(*log);
  auto again = ParseEventLog(ByteView(written));
  Require(again.ok() && again->size() == log->size());
  if (log->format() == LogFormat::kCryptoAgile) Require(*again == *log);
  return 0;
}
