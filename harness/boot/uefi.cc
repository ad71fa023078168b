#include "uefi.h"

#include <cstdio>

namespace tpmlab::uefi {
namespace {

void Le(Bytes& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void Put(Bytes& out, ByteView b) { out.insert(out.end(), b.begin(), b.end()); }

Bytes EndNode() { return {0x7F, 0xFF, 0x04, 0x00}; }

// A media file path node (type 4, subtype 4) followed by the end node.
Bytes FilePathDevicePath(const std::string& path) {
  Bytes out;
  const Bytes name = Ucs2(path, true);
  out.push_back(0x04);
  out.push_back(0x04);
  Le(out, 4 + name.size(), 2);
  Put(out, name);
  Put(out, EndNode());
  return out;
}

// A PCI device node (type 1, subtype 1), as an option ROM's image has.
Bytes PciDevicePath() {
  Bytes out = {0x01, 0x01, 0x06, 0x00, 0x00, 0x02};  // function 0, device 2
  Put(out, EndNode());
  return out;
}

}  // namespace

Guid ParseGuid(const std::string& t) {
  Guid g{};
  unsigned a = 0, b = 0, c = 0, d[8] = {};
  if (std::sscanf(t.c_str(), "%8x-%4x-%4x-%2x%2x-%2x%2x%2x%2x%2x%2x", &a, &b, &c, &d[0], &d[1], &d[2],
                  &d[3], &d[4], &d[5], &d[6], &d[7]) != 11) {
    return g;
  }
  for (int i = 0; i < 4; ++i) g[i] = static_cast<uint8_t>(a >> (8 * i));
  for (int i = 0; i < 2; ++i) g[4 + i] = static_cast<uint8_t>(b >> (8 * i));
  for (int i = 0; i < 2; ++i) g[6 + i] = static_cast<uint8_t>(c >> (8 * i));
  for (int i = 0; i < 8; ++i) g[8 + i] = static_cast<uint8_t>(d[i]);
  return g;
}

Bytes Ucs2(const std::string& ascii, bool nul_terminated) {
  Bytes out;
  for (char ch : ascii) {
    out.push_back(static_cast<uint8_t>(ch));
    out.push_back(0);
  }
  if (nul_terminated) out.insert(out.end(), {0, 0});
  return out;
}

Bytes CString(const std::string& s) {
  Bytes out(s.begin(), s.end());
  out.push_back(0);
  return out;
}

Bytes VariableData(const Guid& guid, const std::string& name, ByteView data) {
  Bytes out(guid.begin(), guid.end());
  Le(out, name.size(), 8);
  Le(out, data.size(), 8);
  Put(out, Ucs2(name, false));
  Put(out, data);
  return out;
}

Bytes SignatureData(const std::string& entry) {
  Bytes out(kTpmlabOwner.begin(), kTpmlabOwner.end());
  Put(out, AsBytes(entry));
  return out;
}

Bytes SignatureList(const std::vector<std::string>& entries) {
  Bytes out;
  for (const auto& e : entries) {
    const Bytes sig = SignatureData(e);
    Put(out, kCertX509);
    Le(out, 28 + sig.size(), 4);  // SignatureListSize
    Le(out, 0, 4);                // SignatureHeaderSize
    Le(out, sig.size(), 4);       // SignatureSize
    Put(out, sig);
  }
  return out;
}

Bytes FirmwareBlob2(const std::string& description, uint64_t base, uint64_t length) {
  Bytes out;
  out.push_back(static_cast<uint8_t>(description.size()));
  Put(out, AsBytes(description));
  Le(out, base, 8);
  Le(out, length, 8);
  return out;
}

Bytes StartupLocality(uint8_t locality) {
  Bytes out = CString("StartupLocality");
  out.push_back(locality);
  return out;
}

Bytes BootOrder(const std::vector<uint16_t>& order) {
  Bytes out;
  for (uint16_t n : order) Le(out, n, 2);
  return out;
}

std::string BootVariableName(uint16_t number) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "Boot%04X", number);
  return buf;
}

Bytes LoadOption(const std::string& description, const std::string& path) {
  const Bytes device_path = FilePathDevicePath(path);
  Bytes out;
  Le(out, 1, 4);  // LOAD_OPTION_ACTIVE
  Le(out, device_path.size(), 2);
  Put(out, Ucs2(description, true));
  Put(out, device_path);
  return out;
}

Bytes ImageLoadEvent(uint64_t length, const std::string& path) {
  const Bytes device_path = path.empty() ? PciDevicePath() : FilePathDevicePath(path);
  Bytes out;
  Le(out, 0x7E000000, 8);  // ImageLocationInMemory
  Le(out, length, 8);      // ImageLengthInMemory
  Le(out, 0, 8);           // ImageLinkTimeAddress
  Le(out, device_path.size(), 8);
  Put(out, device_path);
  return out;
}

Bytes GptEvent(const std::string& disk_guid, const std::vector<GptPartition>& partitions) {
  constexpr uint32_t kEntrySize = 128;
  Bytes out;
  // UEFI_PARTITION_TABLE_HEADER (92 bytes)
  Put(out, AsBytes("EFI PART"));
  Le(out, 0x00010000, 4);  // revision 1.0
  Le(out, 92, 4);          // header size
  Le(out, 0, 4);           // header CRC32 (not checked by verifiers)
  Le(out, 0, 4);           // reserved
  Le(out, 1, 8);           // MyLBA
  Le(out, 0, 8);           // AlternateLBA
  Le(out, 34, 8);          // FirstUsableLBA
  uint64_t last = 34;
  for (const auto& p : partitions) last = std::max(last, p.last_lba);
  Le(out, last, 8);        // LastUsableLBA
  Put(out, ParseGuid(disk_guid));
  Le(out, 2, 8);           // PartitionEntryLBA
  Le(out, partitions.size(), 4);
  Le(out, kEntrySize, 4);
  Le(out, 0, 4);           // entry array CRC32
  // UEFI_GPT_DATA: number of partitions, then the entries.
  Le(out, partitions.size(), 8);
  for (size_t i = 0; i < partitions.size(); ++i) {
    const auto& p = partitions[i];
    Put(out, ParseGuid(p.type_guid));
    Guid unique = ParseGuid(p.type_guid);
    unique[15] = static_cast<uint8_t>(unique[15] ^ (i + 1));  // distinct per partition
    Put(out, unique);
    Le(out, p.first_lba, 8);
    Le(out, p.last_lba, 8);
    Le(out, 0, 8);  // attributes
    Bytes name = Ucs2(p.name, false);
    name.resize(72, 0);
    Put(out, name);
  }
  return out;
}

Bytes TaggedEvent(uint32_t id, const std::string& data) {
  Bytes out;
  Le(out, id, 4);
  Le(out, data.size(), 4);
  Put(out, AsBytes(data));
  return out;
}

}  // namespace tpmlab::uefi
