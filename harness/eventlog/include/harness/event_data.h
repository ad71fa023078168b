// What the data of one event says, decoded by its type: UEFI variables,
// image loads and their device paths, firmware blobs, the GPT, handoff
// tables, action strings, separators, EV_NO_ACTION records (StartupLocality,
// SP800-155), tagged events. For `tpmlab eventlog show` and the findings.
//
// The data came from a file: every read is bounds-checked, and data that
// does not match the structure its type claims is reported, not fatal.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "harness/eventlog.h"

namespace tpmlab {

struct DecodedEvent {
  // Fields per type, snake_case. Types with no structure give {"text": …}
  // when the data is printable ASCII, else {"hex": …}.
  nlohmann::json data = nlohmann::json::object();
  // One line for people: "SecureBoot = 1", "PciRoot(0x0)/…/\EFI\BOOT\BOOTX64.EFI".
  std::string summary;
  // Why data whose type claims a structure did not decode (empty when it
  // did), naming the byte offset inside the event data. `data` then holds
  // what decoded before the problem, plus the raw bytes.
  std::string problem;
};

/// Decodes `data` as the data of an event of `type`. Never fails.
DecodedEvent DecodeEventData(uint32_t type, ByteView data);
inline DecodedEvent DecodeEventData(const EventLog& log, const Event& e) {
  return DecodeEventData(e.type, log.Data(e));
}

/// Whether DecodeEventData(type, data).problem would be non-empty: the same
/// structure checks, with no JSON and no strings built (the findings run it
/// on every event, and decode in full only the events it flags).
bool EventDataUndecodable(uint32_t type, ByteView data);

/// The Spec ID header of a crypto-agile log.
nlohmann::json SpecIdJson(const SpecIdEvent& spec);

/// "8be4df61-93ca-11d2-aa0d-00e098032b8c" from an EFI_GUID's 16 mixed-endian
/// bytes (u32, u16, u16 little-endian, then 8 bytes in order).
std::string GuidText(ByteView guid16);
/// The name of a well-known GUID ("EFI_GLOBAL_VARIABLE"), or "".
std::string_view GuidName(std::string_view guid_text);

/// UEFI_VARIABLE_DATA: the parts the digest checks need.
struct UefiVariable {
  std::string guid;        // GuidText of VariableName
  std::string name;        // UnicodeName as UTF-8
  ByteView data;           // VariableData
  size_t trailing = 0;     // bytes after VariableData (shim adds one to some)
};
/// Parses UEFI_VARIABLE_DATA {GUID; u64 name length in CHAR16; u64 data
/// length; CHAR16 name[]; u8 data[]}. A parse error names the byte offset
/// inside `event_data` where the structure stops making sense.
Result<UefiVariable> ParseUefiVariable(ByteView event_data);

}  // namespace tpmlab
