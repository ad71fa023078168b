#include "harness/event_data.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <optional>

#include "decode.h"

namespace tpmlab {
namespace {

using namespace decode;

// --- per-type decoders ----------------------------------------------------

void Generic(ByteView d, Out& out) {
  if (!out.full) return;  // never fails
  if (auto text = AsciiText(d)) {
    out.data["text"] = *text;
    out.summary = Clip(*text);
  } else if (auto ucs2 = Ucs2Text(d)) {
    out.data["text"] = *ucs2;
    out.data["encoding"] = "ucs-2";
    out.summary = Clip(*ucs2);
  } else if (!d.empty()) {
    PutHex(out.data, d);
    out.summary = d.size() <= 32 ? ToHex(d) : Num(d.size()) + " bytes";
  } else {
    out.summary = "(no data)";
  }
}

void Separator(ByteView d, Out& out) {
  Cursor c(d);
  uint32_t v = 0;
  if (d.size() != 4 || !c.Le(v)) return Fail(out, d, "separator data is " + Num(d.size()) + " bytes, not 4");
  if (!out.full) return;
  out.data["value"] = Hex32(v);
  out.data["hex"] = ToHex(d);
  if (v == 0) {
    out.summary = "00000000";
  } else if (v == 0xFFFFFFFF) {
    out.data["note"] = "FFFFFFFF: the firmware signals a measurement error";
    out.summary = "ffffffff (error)";
  } else if (std::memcmp(d.data(), "WBCL", 4) == 0) {
    out.data["note"] = "WBCL: Windows boot configuration log separator";
    out.summary = "WBCL";
  } else {
    out.summary = ToHex(d);
  }
}

void ActionText(ByteView d, Out& out) {
  if (!IsAsciiText(d)) return Fail(out, d, "action data is not printable ASCII");
  if (!out.full) return;
  const std::string text = *AsciiText(d);
  out.data["text"] = text;
  out.summary = Clip(text);
}

void Blob(ByteView d, Out& out) {
  Cursor c(d);
  uint64_t base = 0, length = 0;
  if (!c.Le(base) || !c.Le(length)) {
    return Fail(out, d, "UEFI_PLATFORM_FIRMWARE_BLOB is " + Num(d.size()) + " bytes, not 16");
  }
  if (!out.full) return;
  out.data["base"] = Hex64(base);
  out.data["length"] = length;
  if (c.left() > 0) out.data["trailing_bytes"] = c.left();
  out.summary = "base " + Hex64(base) + " length " + Hex64(length);
}

void Blob2(ByteView d, Out& out) {
  Cursor c(d);
  uint8_t size = 0;
  ByteView desc;
  uint64_t base = 0, length = 0;
  if (!c.Le(size) || !c.Take(size, desc) || !c.Le(base) || !c.Le(length)) {
    return Fail(out, d, "UEFI_PLATFORM_FIRMWARE_BLOB2 of " + Num(d.size()) +
                            " bytes is too short for its description size " + Num(size));
  }
  if (!out.full) return;
  const std::string text = EscapedText(desc);
  out.data["description"] = text;
  out.data["base"] = Hex64(base);
  out.data["length"] = length;
  if (c.left() > 0) out.data["trailing_bytes"] = c.left();
  out.summary = "\"" + text + "\" base " + Hex64(base) + " length " + Hex64(length);
}

// EV_POST_CODE and EV_S_CRTM_CONTENTS: a string ("ACPI DATA", "Boot Guard
// Measured S-CRTM") or the measured region as a blob.
void TextOrBlob(ByteView d, Out& out) {
  if (IsAsciiText(d)) {
    if (!out.full) return;
    const std::string text = *AsciiText(d);
    out.data["text"] = text;
    out.summary = Clip(text);
  } else if (d.size() == 16) {
    Blob(d, out);
  } else if (!d.empty() && size_t{d[0]} + 17 == d.size()) {
    Blob2(d, out);
  } else {
    Fail(out, d, "neither text nor a UEFI_PLATFORM_FIRMWARE_BLOB(2)");
  }
}

// The PFP allows a UCS-2 string or a GUID. Real firmware also logs an
// empty string (OVMF: one NUL) and vendor records such as the "M60" blob
// of the go-attestation SHA1 fixtures: shown, not flagged.
void CrtmVersion(ByteView d, Out& out) {
  if (!out.full) return;  // never fails
  const bool all_nul = !d.empty() && d.size() % 2 == 0 && std::all_of(d.begin(), d.end(), [](uint8_t b) { return b == 0; });
  if (all_nul) {
    out.data["version"] = "";
    out.data["encoding"] = "ucs-2";
    out.summary = "(empty version string)";
  } else if (auto text = Ucs2Text(d)) {
    out.data["version"] = *text;
    out.data["encoding"] = "ucs-2";
    out.summary = Clip(*text);
  } else if (d.size() == 16) {
    PutGuid(out.data, "guid", d);
    out.summary = GuidText(d);
  } else if (auto ascii = AsciiText(d)) {
    out.data["version"] = *ascii;
    out.data["encoding"] = "ascii";
    out.summary = Clip(*ascii);
  } else {
    size_t label = 0;
    while (label < d.size() && d[label] >= 0x20 && d[label] < 0x7F) ++label;
    out.data["note"] = "vendor-specific: neither UCS-2 text nor a GUID";
    PutHex(out.data, d);
    out.summary = "vendor data, " + Num(d.size()) + " bytes";
    if (label >= 3) out.summary += " starting \"" + std::string(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(label)) + "\"";
  }
}

void Hcrtm(ByteView d, Out& out) {
  if (d.size() != 5 || std::memcmp(d.data(), "HCRTM", 5) != 0) {
    return Fail(out, d, "H-CRTM event data must be the 5 bytes \"HCRTM\"");
  }
  if (!out.full) return;
  out.data["text"] = "HCRTM";
  out.summary = "HCRTM";
}

void ImageLoad(ByteView d, Out& out) {
  Cursor c(d);
  uint64_t location = 0, length = 0, link = 0, dp_length = 0;
  if (!c.Le(location) || !c.Le(length) || !c.Le(link) || !c.Le(dp_length)) {
    return Fail(out, d, "UEFI_IMAGE_LOAD_EVENT is " + Num(d.size()) + " bytes, shorter than its 32-byte header");
  }
  if (out.full) {
    out.data["image_location"] = Hex64(location);
    out.data["image_length"] = length;
    out.data["link_time_address"] = Hex64(link);
    out.data["device_path_length"] = dp_length;
  }
  ByteView dp = c.rest();
  std::string problem;
  if (dp_length > c.left()) {
    problem = "device path length " + Num(dp_length) + " runs past the event (" + Num(c.left()) +
              " bytes left)" + At(24);
  } else {
    dp = dp.first(dp_length);
    if (out.full && c.left() > dp_length) out.data["trailing_bytes"] = c.left() - dp_length;
  }
  DevicePath path = DecodeDevicePath(dp, 32, out.full);
  if (out.full) {
    out.data["device_path"] = DevicePathJson(path);
    out.summary = path.text.empty() ? "image of " + Num(length) + " bytes" : Clip(path.text);
  }
  if (problem.empty()) problem = path.problem;
  if (!problem.empty()) Fail(out, d, problem);
}

// --- GPT, handoff tables, tags, EV_NO_ACTION --------------------------------

// UEFI_GPT_DATA {UEFI_PARTITION_TABLE_HEADER (92 bytes); u64
// NumberOfPartitions; entries of the header's SizeOfPartitionEntry}.
void Gpt(ByteView d, Out& out) {
  Cursor c(d);
  ByteView signature, disk;
  uint32_t revision = 0, header_size = 0, header_crc = 0, reserved = 0, entries = 0, entry_size = 0,
           entries_crc = 0;
  uint64_t my_lba = 0, alt_lba = 0, first = 0, last = 0, entry_lba = 0, count = 0;
  if (!c.Take(8, signature) || !c.Le(revision) || !c.Le(header_size) || !c.Le(header_crc) ||
      !c.Le(reserved) || !c.Le(my_lba) || !c.Le(alt_lba) || !c.Le(first) || !c.Le(last) ||
      !c.Take(16, disk) || !c.Le(entry_lba) || !c.Le(entries) || !c.Le(entry_size) ||
      !c.Le(entries_crc)) {
    return Fail(out, d, "UEFI_PARTITION_TABLE_HEADER is " + Num(d.size()) + " bytes, need 92");
  }
  json& j = out.data;
  if (out.full) {
    j["disk_guid"] = GuidText(disk);
    j["revision"] = Hex32(revision);
    j["my_lba"] = my_lba;
    j["alternate_lba"] = alt_lba;
    j["first_usable_lba"] = first;
    j["last_usable_lba"] = last;
    j["partition_entry_lba"] = entry_lba;
    j["number_of_partition_entries"] = entries;
    j["partition_entry_size"] = entry_size;
  }
  if (std::memcmp(signature.data(), "EFI PART", 8) != 0) {
    return Fail(out, d, "GPT header signature is \"" + EscapedText(signature) + "\", not \"EFI PART\"" + At(0));
  }
  if (!c.Le(count)) return Fail(out, d, "NumberOfPartitions missing" + At(92));
  if (out.full) j["number_of_partitions"] = count;
  constexpr size_t kNameAt = 56, kNameBytes = 72;  // after two GUIDs and three u64s
  if (entry_size < kNameAt) {
    return Fail(out, d, "partition entry size " + Num(entry_size) + " is smaller than " + Num(kNameAt) + At(84));
  }
  std::string problem;
  if (count > c.left() / entry_size) {
    problem = Num(count) + " partitions of " + Num(entry_size) + " bytes run past the event (" +
              Num(c.left()) + " bytes left)" + At(92);
    count = c.left() / entry_size;
  }
  if (!out.full) {
    if (!problem.empty()) Fail(out, d, problem);
    return;
  }
  json parts = json::array();
  std::string names;
  for (uint64_t i = 0; i < count; ++i) {
    ByteView e;
    (void)c.Take(entry_size, e);
    Cursor pc(e);
    ByteView type, unique;
    uint64_t start = 0, end = 0, attributes = 0;
    (void)(pc.Take(16, type) && pc.Take(16, unique) && pc.Le(start) && pc.Le(end) && pc.Le(attributes));
    const std::string name = Utf16ToUtf8(e.subspan(kNameAt, std::min(kNameBytes, e.size() - kNameAt)));
    json p = {{"name", name}, {"unique_guid", GuidText(unique)}, {"starting_lba", start},
              {"ending_lba", end}, {"attributes", Hex64(attributes)}};
    PutGuid(p, "type_guid", type);
    parts.push_back(std::move(p));
    names += (i ? ", \"" : "\"") + name + "\"";
  }
  j["partitions"] = std::move(parts);
  if (c.left() > 0) j["trailing_bytes"] = c.left();
  out.summary = Clip("disk " + GuidText(disk) + ", " + Num(count) + " partitions: " + names);
  if (!problem.empty()) Fail(out, d, problem);
}

// UEFI_HANDOFF_TABLE_POINTERS(2): [u8 size; description;] u64 count;
// {GUID; u64 address}[count].
void HandoffTables(bool v2, ByteView d, Out& out) {
  Cursor c(d);
  if (v2) {
    uint8_t size = 0;
    ByteView desc;
    if (!c.Le(size) || !c.Take(size, desc)) return Fail(out, d, "table description runs past the event" + At(0));
    if (out.full) out.data["description"] = EscapedText(desc);
  }
  uint64_t count = 0;
  if (!c.Le(count)) return Fail(out, d, "NumberOfTables missing" + At(c.offset()));
  if (count > c.left() / 24) {
    return Fail(out, d, Num(count) + " tables of 24 bytes run past the event (" + Num(c.left()) +
                            " bytes left)" + At(c.offset() - 8));
  }
  if (!out.full) return;
  json tables = json::array();
  std::string text;
  for (uint64_t i = 0; i < count; ++i) {
    ByteView guid;
    uint64_t address = 0;
    (void)(c.Take(16, guid) && c.Le(address));
    json t = {{"address", Hex64(address)}};
    PutGuid(t, "guid", guid);
    tables.push_back(std::move(t));
    text += (i ? ", " : "") + GuidLabel(guid) + " at " + Hex64(address);
  }
  out.data["tables"] = std::move(tables);
  out.summary = Clip(text);
}

// TCG_PCClientTaggedEvent list: {u32 id; u32 size; u8 data[size]}...
void EventTags(ByteView d, Out& out) {
  Cursor c(d);
  json tags = json::array();
  std::string text;
  while (c.left() > 0) {
    const size_t at = c.offset();
    uint32_t id = 0, size = 0;
    ByteView data;
    if (!c.Le(id) || !c.Le(size)) return Fail(out, d, "tagged event header truncated" + At(at));
    if (!c.Take(size, data)) {
      return Fail(out, d, "tagged event of " + Num(size) + " bytes runs past the event (" +
                              Num(c.left()) + " bytes left)" + At(at + 4));
    }
    if (!out.full) continue;
    json t = {{"id", Hex32(id)}, {"size", size}};
    // systemd-boot and systemd-stub tag what they measure into PCR 9/12.
    if (id == 0x8F3B22EC) t["name"] = "systemd initrd";
    if (id == 0x8F3B22ED) t["name"] = "systemd load options";
    if (auto s = AsciiText(data)) {
      t["text"] = *s;
    } else {
      PutHex(t, data);
    }
    text += (text.empty() ? "" : ", ") + Hex32(id) + (t.contains("text") ? " \"" + t["text"].get<std::string>() + "\"" : "");
    tags.push_back(std::move(t));
  }
  if (!out.full) return;
  out.data["tags"] = std::move(tags);
  out.summary = Clip(text);
}

// TCG_Sp800_155_PlatformId_Event2/3: vendor and firmware identity, and in
// Event3 where the reference manifest and platform certificate live.
// Decoded as far as the data goes; a short record is shown, not flagged.
void Sp800155(const std::string& signature, ByteView d, Out& out) {
  json& j = out.data;
  Cursor c(d.subspan(16));
  std::string summary = signature;
  auto truncated = [&] { j["truncated_at"] = 16 + c.offset(); };
  auto str = [&](const char* key) {
    uint8_t n = 0;
    ByteView s;
    if (!c.Le(n) || !c.Take(n, s)) return false;
    j[key] = EscapedText(s);
    return true;
  };
  uint32_t vendor = 0;
  ByteView guid;
  if (!c.Le(vendor) || !c.Take(16, guid)) return truncated();
  j["vendor_id"] = vendor;
  j["reference_manifest_guid"] = GuidText(guid);
  if (!str("platform_manufacturer") || !str("platform_model") || !str("platform_version") ||
      !str("firmware_manufacturer")) {
    return truncated();
  }
  out.summary = Clip(summary + ": " + j["platform_manufacturer"].get<std::string>() + " " +
                     j["platform_model"].get<std::string>());
  uint32_t fw_id = 0;
  if (!c.Le(fw_id)) return truncated();
  j["firmware_manufacturer_id"] = fw_id;
  if (!str("firmware_version")) return truncated();
  out.summary += ", firmware " + j["firmware_version"].get<std::string>();
  if (signature != "SP800-155 Event3") return;
  for (const char* key : {"rim_locator", "platform_cert_locator"}) {
    uint32_t type = 0, size = 0;
    ByteView locator;
    if (!c.Le(type) || !c.Le(size) || !c.Take(size, locator)) return truncated();
    json l = {{"type", type}};
    if (auto text = AsciiText(locator)) {
      l["text"] = *text;
    } else {
      PutHex(l, locator);
    }
    j[key] = std::move(l);
  }
}

// The signature an EV_NO_ACTION record opens with: printable ASCII padded
// with NULs to 16 bytes ("StartupLocality\0", "SP800-155 Event3").
std::optional<std::string> NoActionSignature(ByteView d) {
  if (d.size() < 16) return std::nullopt;
  size_t n = 0;
  while (n < 16 && d[n] >= 0x20 && d[n] < 0x7F) ++n;
  if (n < 4) return std::nullopt;
  for (size_t i = n; i < 16; ++i) {
    if (d[i] != 0) return std::nullopt;
  }
  return std::string(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(n));
}

void NoAction(ByteView d, Out& out) {
  auto sig = NoActionSignature(d);
  if (!sig) return Generic(d, out);
  if (out.full) {
    out.data["signature"] = *sig;
    out.summary = *sig;
  }
  if (*sig == "StartupLocality") {
    if (d.size() < 17) return Fail(out, d, "StartupLocality event has no locality byte" + At(16));
    if (!out.full) return;
    out.data["startup_locality"] = d[16];
    out.summary += " " + Num(d[16]);
  } else if (!out.full) {
    return;  // the rest never fails
  } else if (sig->rfind("SP800-155 Event", 0) == 0) {
    Sp800155(*sig, d, out);
  } else if (d.size() > 16) {
    PutHex(out.data, d.subspan(16));
  }
}

}  // namespace

std::string GuidText(ByteView g) {
  if (g.size() < 16) return ToHex(g);
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                uint32_t{g[0]} | uint32_t{g[1]} << 8 | uint32_t{g[2]} << 16 | uint32_t{g[3]} << 24,
                g[4] | g[5] << 8, g[6] | g[7] << 8, g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
  return buf;
}

std::string_view GuidName(std::string_view guid) {
  struct Known {
    std::string_view guid, name;
  };
  static constexpr Known kKnown[] = {
      {"8be4df61-93ca-11d2-aa0d-00e098032b8c", "EFI_GLOBAL_VARIABLE"},
      {"d719b2cb-3d3a-4596-a3bc-dad00e67656f", "EFI_IMAGE_SECURITY_DATABASE"},
      {"605dab50-e046-4300-abb6-3dd810dd8b23", "SHIM_LOCK"},
      {"77fa9abd-0359-4d32-bd60-28f4e78f784b", "MICROSOFT"},
      {"c1c41626-504c-4092-aca9-41f936934328", "EFI_CERT_SHA256"},
      {"a5c059a1-94e4-4aa7-87b5-ab155c2bf072", "EFI_CERT_X509"},
      {"3c5766e8-269c-4e34-aa14-ed776e85b3b6", "EFI_CERT_RSA2048"},
      {"826ca512-cf10-4ac9-b187-be01496631bd", "EFI_CERT_SHA1"},
      {"3bd2a492-96c0-4079-b420-fcf98ef103ed", "EFI_CERT_X509_SHA256"},
      {"eb9d2d30-2d88-11d3-9a16-0090273fc14d", "ACPI_TABLE"},
      {"8868e871-e4f1-11d3-bc22-0080c73c8881", "ACPI_20_TABLE"},
      {"eb9d2d31-2d88-11d3-9a16-0090273fc14d", "SMBIOS_TABLE"},
      {"f2fd1544-9794-4a2c-992e-e5bbcf20e394", "SMBIOS3_TABLE"},
      {"c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "EFI System Partition"},
      {"21686148-6449-6e6f-744e-656564454649", "BIOS boot"},
      {"ebd0a0a2-b9e5-4433-87c0-68b6b72699c7", "Microsoft basic data"},
      {"e3c9e316-0b5c-4db8-817d-f92df00215ae", "Microsoft reserved"},
      {"de94bba4-06d1-4d40-a16a-bfd50179d6ac", "Windows recovery"},
      {"0fc63daf-8483-4772-8e79-3d69d8477de4", "Linux filesystem"},
      {"0657fd6d-a4ab-43c4-84e5-0933c84b4f4f", "Linux swap"},
      {"e6d6d379-f507-44c2-a23c-238f2a3df928", "Linux LVM"},
      {"a19d880f-05fc-4d3b-a006-743f0f84911e", "Linux RAID"},
      {"4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "Linux root (x86-64)"},
      {"bc13c2ff-59e6-4262-a352-b275fd6f7172", "Linux extended boot"},
  };
  for (const auto& k : kKnown) {
    if (k.guid == guid) return k.name;
  }
  return {};
}

json SpecIdJson(const SpecIdEvent& spec) {
  json algs = json::array();
  for (const auto& a : spec.algorithms) {
    auto alg = HashAlgFromId(a.alg);
    char id[8];
    std::snprintf(id, sizeof(id), "0x%04x", a.alg);
    algs.push_back({{"alg", alg ? std::string(HashAlgName(*alg)) : std::string(id)},
                    {"id", a.alg}, {"digest_size", a.digest_size}});
  }
  return {{"signature", "Spec ID Event03"},
          {"platform_class", spec.platform_class},
          {"spec_version", Num(spec.version_major) + "." + Num(spec.version_minor)},
          {"errata", spec.errata},
          {"uintn_size", spec.uintn_size},
          {"algorithms", std::move(algs)},
          {"vendor_info", ToHex(spec.vendor_info)}};
}

namespace {

// The one walk: the decoder `type` names, in `out`'s mode.
void Walk(uint32_t type, ByteView d, Out& out) {
  switch (type) {
    case ev::kSeparator: Separator(d, out); break;
    case ev::kAction:
    case ev::kEfiAction: ActionText(d, out); break;
    case ev::kPostCode:
    case ev::kSCrtmContents: TextOrBlob(d, out); break;
    case ev::kSCrtmVersion: CrtmVersion(d, out); break;
    case ev::kEfiHcrtmEvent: Hcrtm(d, out); break;
    case ev::kEfiVariableDriverConfig:
    case ev::kEfiVariableBoot:
    case ev::kEfiVariableBoot2:
    case ev::kEfiVariableAuthority: Variable(type, d, out); break;
    case ev::kEfiBootServicesApplication:
    case ev::kEfiBootServicesDriver:
    case ev::kEfiRuntimeServicesDriver: ImageLoad(d, out); break;
    case ev::kEfiPlatformFirmwareBlob: Blob(d, out); break;
    case ev::kEfiPlatformFirmwareBlob2: Blob2(d, out); break;
    case ev::kEfiGptEvent: Gpt(d, out); break;
    case ev::kEfiHandoffTables: HandoffTables(false, d, out); break;
    case ev::kEfiHandoffTables2: HandoffTables(true, d, out); break;
    case ev::kEventTag: EventTags(d, out); break;
    case ev::kNoAction: NoAction(d, out); break;
    default: Generic(d, out); break;
  }
}

}  // namespace

bool EventDataUndecodable(uint32_t type, ByteView d) {
  Out out(false);
  Walk(type, d, out);
  return out.failed;
}

DecodedEvent DecodeEventData(uint32_t type, ByteView d) {
  Out out(true);
  Walk(type, d, out);
  DecodedEvent decoded;
  decoded.data = std::move(out.data);
  decoded.summary = std::move(out.summary);
  decoded.problem = std::move(out.problem);
  return decoded;
}

}  // namespace tpmlab
