// Byte layouts of the UEFI structures a PC Client firmware logs (UEFI spec
// and TCG PC Client Platform Firmware Profile), built little-endian.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "drivers/bytes.h"
#include "harness/firmware_model.h"

namespace tpmlab::uefi {

using Guid = std::array<uint8_t, 16>;

// "8BE4DF61-93CA-11D2-AA0D-00E098032B8C" in EFI_GUID byte order (first three
// fields little-endian). A malformed string gives the all-zero GUID.
Guid ParseGuid(const std::string& text);

inline const Guid kGlobalVariable = ParseGuid("8BE4DF61-93CA-11D2-AA0D-00E098032B8C");
inline const Guid kImageSecurityDatabase = ParseGuid("D719B2CB-3D3A-4596-A3BC-DAD00E67656F");
inline const Guid kShimLock = ParseGuid("605DAB50-E046-4300-ABB6-3DD810DD8B23");
inline const Guid kCertX509 = ParseGuid("A5C059A1-94E4-4AA7-87B5-AB155C2BF072");
inline const Guid kTpmlabOwner = ParseGuid("7470D16C-61B0-4C61-9E5A-7470D16C61B0");

inline const Bytes kSeparatorData = {0, 0, 0, 0};

Bytes Ucs2(const std::string& ascii, bool nul_terminated);
Bytes CString(const std::string& s);
// UEFI_VARIABLE_DATA
Bytes VariableData(const Guid& guid, const std::string& name, ByteView data);
// EFI_SIGNATURE_LIST per entry (X.509 type), concatenated.
Bytes SignatureList(const std::vector<std::string>& entries);
// One EFI_SIGNATURE_DATA (what EV_EFI_VARIABLE_AUTHORITY records).
Bytes SignatureData(const std::string& entry);
// UEFI_PLATFORM_FIRMWARE_BLOB2
Bytes FirmwareBlob2(const std::string& description, uint64_t base, uint64_t length);
// "StartupLocality\0" + locality
Bytes StartupLocality(uint8_t locality);
Bytes BootOrder(const std::vector<uint16_t>& order);
std::string BootVariableName(uint16_t number);  // "Boot0001"
// EFI_LOAD_OPTION: active, description, a file path device path.
Bytes LoadOption(const std::string& description, const std::string& path);
// UEFI_IMAGE_LOAD_EVENT with a file path (or a PCI device) device path.
Bytes ImageLoadEvent(uint64_t length, const std::string& path);
// UEFI_GPT_DATA: header, partition count, 128-byte entries.
Bytes GptEvent(const std::string& disk_guid, const std::vector<GptPartition>& partitions);
// TCG_PCClientTaggedEvent
Bytes TaggedEvent(uint32_t id, const std::string& data);

}  // namespace tpmlab::uefi
