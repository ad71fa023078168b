// UEFI_VARIABLE_DATA events (EV_EFI_VARIABLE_*): the variable's framing,
// then its value decoded by what the variable is (BootOrder, Boot####
// load options, signature databases, authorities), in the walk's two modes
// (decode.h).
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>

#include "decode.h"
#include "harness/event_data.h"

namespace tpmlab {
namespace decode {
namespace {

bool IsLoadOptionName(const std::string& name) {
  for (const char* prefix : {"Boot", "Driver", "SysPrep", "PlatformRecovery"}) {
    const size_t n = std::strlen(prefix);
    if (name.size() == n + 4 && name.compare(0, n, prefix) == 0 &&
        std::all_of(name.begin() + static_cast<std::ptrdiff_t>(n), name.end(),
                    [](char ch) { return std::isxdigit(static_cast<unsigned char>(ch)) != 0; })) {
      return true;
    }
  }
  return false;
}

bool IsSignatureDatabase(const std::string& name) {
  for (const char* db : {"PK", "KEK", "db", "dbx", "dbt", "dbr", "MokList", "MokListX", "MokListRT",
                         "MokListXRT", "vendor_db"}) {
    if (name == db) return true;
  }
  return false;
}

// A DER SEQUENCE with a two-byte length that spans `v` (an X.509 certificate).
bool IsDerSequence(ByteView v) {
  return v.size() >= 4 && v[0] == 0x30 && v[1] == 0x82 && (size_t{v[2]} << 8 | v[3]) + 4 == v.size();
}

std::string BootName(uint16_t n) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "Boot%04X", n);
  return buf;
}

// EFI_LOAD_OPTION {u32 Attributes; u16 FilePathListLength; CHAR16
// Description[] (NUL-terminated); device path; optional data}.
std::string LoadOption(ByteView v, size_t base, Out& out) {
  Cursor c(v);
  uint32_t attributes = 0;
  uint16_t path_length = 0;
  if (!c.Le(attributes) || !c.Le(path_length)) return "EFI_LOAD_OPTION header truncated" + At(base);
  size_t units = 0;
  const ByteView rest = c.rest();
  while (units < rest.size() / 2 && Unit(rest, units) != 0) ++units;
  if (units == rest.size() / 2) return "EFI_LOAD_OPTION description has no terminating NUL" + At(base + 6);
  ByteView desc, dp;
  (void)c.Take(2 * units + 2, desc);
  std::string description;
  json option;
  if (out.full) {
    description = Utf16ToUtf8(desc);
    option = {{"attributes", Hex32(attributes)}, {"active", (attributes & 1) != 0}, {"description", description}};
  }
  if (!c.Take(path_length, dp)) {
    if (out.full) out.data["load_option"] = option;
    return "EFI_LOAD_OPTION device path of " + Num(path_length) + " bytes runs past the variable (" +
           Num(c.left()) + " bytes left)" + At(base + c.offset());
  }
  DevicePath path = DecodeDevicePath(dp, base + c.offset() - path_length, out.full);
  if (out.full) {
    option["device_path"] = DevicePathJson(path);
    option["optional_data_length"] = c.left();
    out.data["load_option"] = option;
    out.summary += ": \"" + description + "\" " + path.text;
  }
  return path.problem;
}

// A list of EFI_SIGNATURE_LIST {GUID type; u32 list size; u32 header size;
// u32 signature size; header; signatures of {GUID owner; data}}.
std::string SignatureLists(ByteView v, size_t base, Out& out) {
  json lists = out.full ? json::array() : json();
  Cursor c(v);
  std::string problem;
  size_t total = 0;
  while (c.left() > 0) {
    const size_t at = base + c.offset();
    ByteView type, body;
    uint32_t list_size = 0, header_size = 0, sig_size = 0;
    if (!c.Take(16, type) || !c.Le(list_size) || !c.Le(header_size) || !c.Le(sig_size)) {
      problem = "EFI_SIGNATURE_LIST header truncated" + At(at);
      break;
    }
    if (list_size < 28 || !c.Take(list_size - 28u, body)) {
      problem = "EFI_SIGNATURE_LIST size " + Num(list_size) + " does not fit the variable" + At(at);
      break;
    }
    if (header_size > body.size() || sig_size < 16 || (body.size() - header_size) % sig_size != 0) {
      problem = "EFI_SIGNATURE_LIST with header " + Num(header_size) + " and signatures of " +
                Num(sig_size) + " bytes does not divide its " + Num(body.size()) + " bytes" + At(at);
      break;
    }
    if (!out.full) continue;
    const size_t count = (body.size() - header_size) / sig_size;
    json list = {{"signature_size", sig_size}, {"count", count}};
    PutGuid(list, "type", type);
    lists.push_back(std::move(list));
    total += count;
  }
  if (!out.full) return problem;
  out.data["signature_lists"] = std::move(lists);
  out.summary += ": " + Num(total) + " signatures in " + Num(out.data["signature_lists"].size()) + " lists";
  return problem;
}

// UEFI_VARIABLE_DATA {GUID; u64 name length in CHAR16; u64 data length;
// CHAR16 name[]; u8 data[]}, framed without building any string: the
// problem names the byte offset where the structure stops making sense.
struct VariableFrame {
  ByteView guid, name, data;
  size_t trailing = 0;
};
Result<VariableFrame> FrameVariable(ByteView d) {
  Cursor c(d);
  VariableFrame f;
  uint64_t name_length = 0, data_length = 0;
  if (!c.Take(16, f.guid) || !c.Le(name_length) || !c.Le(data_length)) {
    return Status::Parse("UEFI_VARIABLE_DATA is " + Num(d.size()) + " bytes, shorter than its 32-byte header",
                         d.size());
  }
  if (name_length > c.left() / 2) {
    return Status::Parse("UnicodeNameLength " + Num(name_length) + " (CHAR16) runs past the event (" +
                             Num(c.left()) + " bytes left)", 16);
  }
  (void)c.Take(2 * name_length, f.name);
  if (!c.Take(data_length, f.data)) {
    return Status::Parse("VariableDataLength " + Num(data_length) + " runs past the event (" +
                             Num(c.left()) + " bytes left)", 24);
  }
  f.trailing = c.left();
  return f;
}

}  // namespace

void Variable(uint32_t type, ByteView d, Out& out) {
  auto frame = FrameVariable(d);
  if (!frame.ok()) {
    if (out.full && d.size() >= 16) PutGuid(out.data, "guid", d.first(16));
    return Fail(out, d, frame.status().message() + At(frame.status().offset().value_or(0)));
  }
  static constexpr uint8_t kGlobal[16] = {0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
                                          0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c};
  const bool global = std::memcmp(frame->guid.data(), kGlobal, 16) == 0;  // EFI_GLOBAL_VARIABLE
  const std::string name = Utf16ToUtf8(frame->name);
  const ByteView v = frame->data;
  json& j = out.data;
  if (out.full) {
    const std::string guid = GuidText(frame->guid);
    j["guid"] = guid;
    if (auto known = GuidName(guid); !known.empty()) j["guid_name"] = std::string(known);
    j["name"] = name;
    j["data_length"] = v.size();
    if (frame->trailing > 0) j["trailing_bytes"] = frame->trailing;
    out.summary = name.empty() ? guid : name;
  }
  const size_t base = d.size() - frame->trailing - v.size();  // where VariableData starts
  std::string problem;

  if (global && name == "BootOrder" && v.size() % 2 == 0) {
    if (!out.full) return;
    json order = json::array();
    std::string text;
    for (size_t i = 0; i < v.size() / 2; ++i) {
      order.push_back(BootName(Unit(v, i)));
      text += (i ? "," : "") + BootName(Unit(v, i));
    }
    j["boot_order"] = std::move(order);
    out.summary += " = " + text;
  } else if (global && (name == "BootNext" || name == "BootCurrent") && v.size() == 2) {
    if (!out.full) return;
    j["value"] = BootName(Unit(v, 0));
    out.summary += " = " + BootName(Unit(v, 0));
  } else if (global && IsLoadOptionName(name)) {
    problem = LoadOption(v, base, out);
  } else if (type == ev::kEfiVariableAuthority && IsDerSequence(v)) {
    // shim logs the bare certificate it verified with ("Shim", "MokList").
    if (!out.full) return;
    j["certificate_length"] = v.size();
    out.summary += ": certificate, " + Num(v.size()) + " bytes";
  } else if (type == ev::kEfiVariableAuthority && v.size() >= 16 && !IsAsciiText(v)) {
    // EFI_SIGNATURE_DATA: the owner and the certificate or hash that verified an image.
    if (!out.full) return;
    PutGuid(j, "signature_owner", v.first(16));
    j["signature_length"] = v.size() - 16;
    out.summary += ": signature by " + GuidLabel(v.first(16)) + ", " + Num(v.size() - 16) + " bytes";
  } else if (IsSignatureDatabase(name) && !v.empty()) {
    problem = SignatureLists(v, base, out);
  } else if (!out.full) {
    return;  // the rest never fails
  } else if (v.size() == 1) {
    j["value"] = v[0];
    out.summary += " = " + Num(v[0]);
  } else if (auto text = AsciiText(v)) {
    j["text"] = *text;
    out.summary += " = " + Clip(*text);
  } else if (v.empty()) {
    out.summary += " (empty)";
  } else {
    j["value_hex"] = ToHex(v.first(std::min(v.size(), kHexCap)));
    if (v.size() > kHexCap) j["value_hex_truncated"] = true;
    out.summary += ": " + Num(v.size()) + " bytes";
  }
  if (!problem.empty()) Fail(out, d, problem);
}

}  // namespace decode

Result<UefiVariable> ParseUefiVariable(ByteView d) {
  auto frame = decode::FrameVariable(d);
  if (!frame.ok()) return frame.status();
  return UefiVariable{GuidText(frame->guid), decode::Utf16ToUtf8(frame->name), frame->data, frame->trailing};
}

}  // namespace tpmlab
