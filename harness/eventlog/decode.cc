#include "decode.h"

#include <algorithm>
#include <cstdio>

#include "harness/event_data.h"

namespace tpmlab::decode {
namespace {

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | cp >> 6));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | cp >> 12));
    out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | cp >> 18));
    out.push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool IsPrintable(uint32_t c) { return (c >= 0x20 && c < 0x7F) || c == '\t' || c == '\n' || c == '\r'; }

// --- device paths (UEFI spec ch. 10) ------------------------------------

const char* NodeName(uint8_t type, uint8_t sub) {
  switch (type << 8 | sub) {
    case 0x0101: return "pci";
    case 0x0103: return "memory_mapped";
    case 0x0104: return "vendor_hardware";
    case 0x0105: return "controller";
    case 0x0201: return "acpi";
    case 0x0202: return "acpi_expanded";
    case 0x0203: return "acpi_adr";
    case 0x0301: return "atapi";
    case 0x0302: return "scsi";
    case 0x0305: return "usb";
    case 0x030A: return "vendor_messaging";
    case 0x030B: return "mac_address";
    case 0x030C: return "ipv4";
    case 0x030D: return "ipv6";
    case 0x030F: return "usb_class";
    case 0x0312: return "sata";
    case 0x0317: return "nvme";
    case 0x0318: return "uri";
    case 0x031A: return "sd";
    case 0x031D: return "emmc";
    case 0x0401: return "hard_drive";
    case 0x0402: return "cdrom";
    case 0x0403: return "vendor_media";
    case 0x0404: return "file_path";
    case 0x0405: return "media_protocol";
    case 0x0406: return "fv_file";
    case 0x0407: return "fv";
    case 0x0408: return "relative_offset_range";
    case 0x0409: return "ram_disk";
    case 0x0501: return "bbs";
    default: return nullptr;
  }
}

// EISA ID (as in ACPI _HID): three 5-bit letters and a 16-bit product number.
std::string EisaId(uint32_t id) {
  const uint16_t v = static_cast<uint16_t>(id);
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%c%c%c%04X", '@' + (v >> 10 & 0x1F), '@' + (v >> 5 & 0x1F),
                '@' + (v & 0x1F), id >> 16);
  return buf;
}

// UEFI's text form of one node; fills `node` with its fields. A node too
// short for its subtype falls through to the generic Path(type,sub,hex).
std::string NodeText(uint8_t type, uint8_t sub, ByteView body, json& node) {
  Cursor c(body);
  char buf[160];
  switch (type << 8 | sub) {
    case 0x0101: {
      uint8_t fn = 0, dev = 0;
      if (!c.Le(fn) || !c.Le(dev)) break;
      node["device"] = dev;
      node["function"] = fn;
      std::snprintf(buf, sizeof(buf), "Pci(0x%x,0x%x)", dev, fn);
      return buf;
    }
    case 0x0104:
    case 0x030A:
    case 0x0403: {
      ByteView guid;
      if (!c.Take(16, guid)) break;
      PutGuid(node, "guid", guid);
      const char* prefix = type == 1 ? "VenHw" : type == 3 ? "VenMsg" : "VenMedia";
      return std::string(prefix) + "(" + GuidText(guid) + ")";
    }
    case 0x0201: {
      uint32_t hid = 0, uid = 0;
      if (!c.Le(hid) || !c.Le(uid)) break;
      const std::string eisa = EisaId(hid);
      node["hid"] = eisa;
      node["uid"] = uid;
      if (eisa == "PNP0A03") return "PciRoot(" + Hex64(uid) + ")";
      if (eisa == "PNP0A08") return "PcieRoot(" + Hex64(uid) + ")";
      return "Acpi(" + eisa + "," + Hex64(uid) + ")";
    }
    case 0x0203: {
      uint32_t adr = 0;
      if (!c.Le(adr)) break;
      node["adr"] = adr;
      return "AcpiAdr(" + Hex64(adr) + ")";
    }
    case 0x0302: {
      uint16_t target = 0, lun = 0;
      if (!c.Le(target) || !c.Le(lun)) break;
      node["target"] = target;
      node["lun"] = lun;
      return "Scsi(" + Hex64(target) + "," + Hex64(lun) + ")";
    }
    case 0x0305: {
      uint8_t port = 0, iface = 0;
      if (!c.Le(port) || !c.Le(iface)) break;
      node["parent_port"] = port;
      node["interface"] = iface;
      return "USB(" + Hex64(port) + "," + Hex64(iface) + ")";
    }
    case 0x030B: {
      ByteView mac;
      uint8_t if_type = 0;
      if (!c.Take(32, mac) || !c.Le(if_type)) break;
      node["mac"] = ToHex(mac.first(6));
      node["if_type"] = if_type;
      return "MAC(" + ToHex(mac.first(6)) + "," + Hex64(if_type) + ")";
    }
    case 0x030C: {
      ByteView local, remote;
      if (!c.Take(4, local) || !c.Take(4, remote)) break;
      char ip[2][20];
      for (int k = 0; k < 2; ++k) {
        ByteView a = k == 0 ? remote : local;
        std::snprintf(ip[k], sizeof(ip[k]), "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
      }
      node["remote"] = ip[0];
      node["local"] = ip[1];
      return std::string("IPv4(") + ip[0] + "," + ip[1] + ")";
    }
    case 0x030D: {
      ByteView local, remote;
      if (!c.Take(16, local) || !c.Take(16, remote)) break;
      node["remote"] = ToHex(remote);
      node["local"] = ToHex(local);
      return "IPv6(" + ToHex(remote) + "," + ToHex(local) + ")";
    }
    case 0x0312: {
      uint16_t port = 0, mult = 0, lun = 0;
      if (!c.Le(port) || !c.Le(mult) || !c.Le(lun)) break;
      node["hba_port"] = port;
      node["port_multiplier"] = mult;
      node["lun"] = lun;
      return "Sata(" + Hex64(port) + "," + Hex64(mult) + "," + Hex64(lun) + ")";
    }
    case 0x0317: {
      uint32_t nsid = 0;
      ByteView eui;
      if (!c.Le(nsid) || !c.Take(8, eui)) break;
      node["namespace_id"] = nsid;
      node["eui64"] = ToHex(eui);
      return "NVMe(" + Hex64(nsid) + "," + ToHex(eui) + ")";
    }
    case 0x0318: {
      const std::string uri = EscapedText(body);
      node["uri"] = uri;
      return "Uri(" + uri + ")";
    }
    case 0x031D: {
      uint8_t slot = 0;
      if (!c.Le(slot)) break;
      node["slot"] = slot;
      return "eMMC(" + Hex64(slot) + ")";
    }
    case 0x0401: {
      uint32_t part = 0;
      uint64_t start = 0, size = 0;
      ByteView sig;
      uint8_t format = 0, sig_type = 0;
      if (!c.Le(part) || !c.Le(start) || !c.Le(size) || !c.Take(16, sig) || !c.Le(format) ||
          !c.Le(sig_type)) {
        break;
      }
      node["partition"] = part;
      node["start_lba"] = start;
      node["size_lba"] = size;
      std::string signature;
      if (sig_type == 2) {
        signature = "GPT," + GuidText(sig);
      } else if (sig_type == 1) {
        signature = "MBR," + Hex32(static_cast<uint32_t>(sig[0] | sig[1] << 8 | sig[2] << 16 |
                                                        uint32_t{sig[3]} << 24));
      } else {
        signature = Num(sig_type) + "," + ToHex(sig);
      }
      node["signature"] = signature;
      return "HD(" + Num(part) + "," + signature + "," + Hex64(start) + "," + Hex64(size) + ")";
    }
    case 0x0402: {
      uint32_t entry = 0;
      uint64_t start = 0, size = 0;
      if (!c.Le(entry) || !c.Le(start) || !c.Le(size)) break;
      node["boot_entry"] = entry;
      node["start_lba"] = start;
      node["size_lba"] = size;
      return "CDROM(" + Hex64(entry) + "," + Hex64(start) + "," + Hex64(size) + ")";
    }
    case 0x0404: {
      const std::string path = Utf16ToUtf8(body);
      node["path"] = path;
      return path;
    }
    case 0x0405:
    case 0x0406:
    case 0x0407: {
      ByteView guid;
      if (!c.Take(16, guid)) break;
      PutGuid(node, "guid", guid);
      const char* prefix = sub == 5 ? "Media" : sub == 6 ? "FvFile" : "Fv";
      return std::string(prefix) + "(" + GuidText(guid) + ")";
    }
    case 0x0408: {
      uint32_t reserved = 0;
      uint64_t start = 0, end = 0;
      if (!c.Le(reserved) || !c.Le(start) || !c.Le(end)) break;
      node["start"] = Hex64(start);
      node["end"] = Hex64(end);
      return "Offset(" + Hex64(start) + "," + Hex64(end) + ")";
    }
    case 0x0501: {
      uint16_t device_type = 0, status = 0;
      if (!c.Le(device_type) || !c.Le(status)) break;
      const std::string desc = EscapedText(c.rest());
      node["device_type"] = device_type;
      node["description"] = desc;
      return "BBS(" + Hex64(device_type) + "," + desc + ")";
    }
    default:
      break;
  }
  PutHex(node, body);
  std::snprintf(buf, sizeof(buf), "Path(%u,%u,", type, sub);
  return buf + ToHex(body.first(std::min<size_t>(body.size(), 32))) + (body.size() > 32 ? "...)" : ")");
}

}  // namespace

std::string Num(uint64_t v) { return std::to_string(v); }

std::string Hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string Hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

// Raw bytes, capped so a 24 KB dbx does not flood `show`.
void PutHex(json& j, ByteView b) {
  j["hex"] = ToHex(b.first(std::min(b.size(), kHexCap)));
  if (b.size() > kHexCap) j["hex_truncated"] = true;
}

std::string Clip(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (out.size() >= kSummaryCap) return out + "...";
    if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\r') {
      out += "\\r";
    } else if (ch == '\t') {
      out += "\\t";
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

std::string Utf16ToUtf8(ByteView b) {
  std::string out;
  const size_t n = b.size() / 2;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t u = Unit(b, i);
    if (u == 0) break;
    if (u >= 0xD800 && u < 0xDC00 && i + 1 < n) {
      const uint32_t lo = Unit(b, i + 1);
      if (lo >= 0xDC00 && lo < 0xE000) {
        AppendUtf8(out, 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00));
        ++i;
        continue;
      }
    }
    AppendUtf8(out, u >= 0xD800 && u < 0xE000 ? 0xFFFD : u);
  }
  return out;
}

bool IsAsciiText(ByteView b) {
  size_t n = b.size();
  while (n > 0 && b[n - 1] == 0) --n;
  if (n == 0) return false;
  for (size_t i = 0; i < n; ++i) {
    if (!IsPrintable(b[i])) return false;
  }
  return true;
}

std::optional<std::string> AsciiText(ByteView b) {
  if (!IsAsciiText(b)) return std::nullopt;
  size_t n = b.size();
  while (n > 0 && b[n - 1] == 0) --n;
  return std::string(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
}

// UCS-2 text, ignoring trailing NULs. Only ASCII and Latin-1 characters
// count: a 16-byte GUID otherwise often reads as plausible CJK.
std::optional<std::string> Ucs2Text(ByteView b) {
  if (b.size() < 2 || b.size() % 2 != 0) return std::nullopt;
  size_t n = b.size() / 2;
  while (n > 0 && Unit(b, n - 1) == 0) --n;
  if (n == 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    const uint16_t u = Unit(b, i);
    if (IsPrintable(u)) {
      out.push_back(static_cast<char>(u));
    } else if (u >= 0xA0 && u <= 0xFF) {
      AppendUtf8(out, u);
    } else {
      return std::nullopt;
    }
  }
  return out;
}

std::string EscapedText(ByteView b) {
  size_t n = b.size();
  while (n > 0 && b[n - 1] == 0) --n;
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (b[i] >= 0x20 && b[i] < 0x7F) {
      out.push_back(static_cast<char>(b[i]));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", b[i]);
      out += buf;
    }
  }
  return out;
}

void PutGuid(json& j, const std::string& key, ByteView guid16) {
  const std::string text = GuidText(guid16);
  j[key] = text;
  if (auto name = GuidName(text); !name.empty()) j[key + "_name"] = std::string(name);
}

std::string GuidLabel(ByteView guid16) {
  const std::string text = GuidText(guid16);
  auto name = GuidName(text);
  return name.empty() ? text : std::string(name);
}

std::string At(size_t offset) { return " at byte " + Num(offset) + " of the event data"; }

DevicePath DecodeDevicePath(ByteView dp, size_t base, bool full) {
  DevicePath out;
  Cursor c(dp);
  while (c.left() > 0) {
    const size_t at = base + c.offset();
    uint8_t type = 0, sub = 0;
    uint16_t len = 0;
    ByteView body;
    if (!c.Le(type) || !c.Le(sub) || !c.Le(len)) {
      out.problem = "device path node header truncated" + At(at);
      break;
    }
    if (len < 4) {
      out.problem = "device path node length " + Num(len) + " (< 4)" + At(at);
      break;
    }
    if (!c.Take(len - 4u, body)) {
      out.problem = "device path node of " + Num(len) + " bytes runs past the device path (" +
                    Num(c.left() + 4) + " bytes left)" + At(at);
      break;
    }
    if (type == 0x7F && sub == 0xFF) break;  // end of the whole path
    if (!full) continue;                     // only checking the framing
    if (type == 0x7F) {                      // end of one instance: more follow
      out.text += ",";
      continue;
    }
    json node = {{"type", type}, {"subtype", sub}};
    if (const char* name = NodeName(type, sub)) node["name"] = name;
    const std::string text = NodeText(type, sub, body, node);
    if (!out.text.empty() && out.text.back() != ',') out.text += "/";
    out.text += text;
    out.nodes.push_back(std::move(node));
  }
  return out;
}

void Fail(Out& out, ByteView d, std::string problem) {
  out.failed = true;
  if (!out.full) return;
  out.problem = std::move(problem);
  if (!out.data.contains("hex")) PutHex(out.data, d);
  if (out.summary.empty()) out.summary = "undecodable: " + out.problem;
}

json DevicePathJson(const DevicePath& p) { return {{"text", p.text}, {"nodes", p.nodes}}; }

}  // namespace tpmlab::decode
