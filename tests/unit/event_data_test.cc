// Decoding event data (harness/event_data.h) on hand-built structures:
// each decoder's fields, and a problem (never a crash) for data that does
// not match the structure its type claims.
#define BOOST_TEST_MODULE event_data
#include <boost/test/unit_test.hpp>

#include <string>

#include "harness/event_data.h"

namespace tpmlab {
namespace {

using json = nlohmann::json;

// Little-endian builders for the structures under test.
struct Le {
  Bytes b;
  Le& U8(uint64_t v) { return N(v, 1); }
  Le& U16(uint64_t v) { return N(v, 2); }
  Le& U32(uint64_t v) { return N(v, 4); }
  Le& U64(uint64_t v) { return N(v, 8); }
  Le& Raw(ByteView v) { b.insert(b.end(), v.begin(), v.end()); return *this; }
  Le& Text(std::string_view s) { return Raw(AsBytes(s)); }
  // UTF-16LE of an ASCII string, with a NUL when asked.
  Le& Utf16(std::string_view s, bool nul = false) {
    for (char c : s) U16(static_cast<uint8_t>(c));
    return nul ? U16(0) : *this;
  }
  // An EFI_GUID from its text form (mixed-endian on the wire).
  Le& Guid(std::string_view text) {
    auto hex = [&](size_t at, size_t n) { return std::stoull(std::string(text.substr(at, n)), nullptr, 16); };
    U32(hex(0, 8)).U16(hex(9, 4)).U16(hex(14, 4));
    for (size_t at : {19, 21, 24, 26, 28, 30, 32, 34}) U8(hex(at, 2));
    return *this;
  }
  Le& N(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
};

constexpr std::string_view kGlobal = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
constexpr std::string_view kSecurityDb = "d719b2cb-3d3a-4596-a3bc-dad00e67656f";
constexpr std::string_view kShimLock = "605dab50-e046-4300-abb6-3dd810dd8b23";
constexpr std::string_view kX509 = "a5c059a1-94e4-4aa7-87b5-ab155c2bf072";
constexpr std::string_view kEsp = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";

Bytes Variable(std::string_view guid, std::string_view name, ByteView data) {
  return Le().Guid(guid).U64(name.size()).U64(data.size()).Utf16(name).Raw(data).b;
}

// Device path nodes.
Bytes Node(uint8_t type, uint8_t sub, ByteView body) {
  return Le().U8(type).U8(sub).U16(body.size() + 4).Raw(body).b;
}
Bytes PciRoot() { return Node(2, 1, Le().U32(0x0A0341D0).U32(0).b); }
Bytes Pci(uint8_t dev, uint8_t fn) { return Node(1, 1, Le().U8(fn).U8(dev).b); }
Bytes FilePath(std::string_view path) { return Node(4, 4, Le().Utf16(path, true).b); }
Bytes HardDrive() {
  return Node(4, 1, Le().U32(1).U64(0x800).U64(0x100000).Guid("11111111-2222-3333-4444-555555555555").U8(2).U8(2).b);
}
Bytes End() { return Node(0x7F, 0xFF, {}); }
Bytes Path(std::initializer_list<Bytes> nodes) {
  Le out;
  for (const Bytes& n : nodes) out.Raw(n);
  return out.Raw(End()).b;
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::strict); }

// Every prefix of `data` decodes without throwing, to valid UTF-8 JSON, and
// the check-only walk (EventDataUndecodable) calls exactly the prefixes
// undecodable that DecodeEventData finds a problem in.
void EveryPrefixDecodes(uint32_t type, const Bytes& data) {
  for (size_t n = 0; n <= data.size(); ++n) {
    const ByteView prefix = ByteView(data).first(n);
    DecodedEvent d = DecodeEventData(type, prefix);
    BOOST_CHECK_NO_THROW(Dump(d.data));
    BOOST_CHECK_MESSAGE(EventDataUndecodable(type, prefix) == !d.problem.empty(),
                        EventTypeName(type) << " prefix of " << n << " bytes: problem '" << d.problem << "'");
  }
}

BOOST_AUTO_TEST_CASE(guids_read_mixed_endian_and_well_known_ones_are_named) {
  const Bytes g = Le().Guid(kGlobal).b;
  BOOST_CHECK_EQUAL(ToHex(g), "61dfe48bca93d211aa0d00e098032b8c");  // as firmware writes it
  BOOST_CHECK_EQUAL(GuidText(g), kGlobal);
  BOOST_CHECK_EQUAL(GuidName(kGlobal), "EFI_GLOBAL_VARIABLE");
  BOOST_CHECK_EQUAL(GuidName(kSecurityDb), "EFI_IMAGE_SECURITY_DATABASE");
  BOOST_CHECK_EQUAL(GuidName(kShimLock), "SHIM_LOCK");
  BOOST_CHECK_EQUAL(GuidName("00000000-0000-0000-0000-000000000000"), "");
}

BOOST_AUTO_TEST_CASE(uefi_variables) {
  DecodedEvent sb = DecodeEventData(ev::kEfiVariableDriverConfig, Variable(kGlobal, "SecureBoot", Bytes{1}));
  BOOST_CHECK(sb.problem.empty());
  BOOST_CHECK_EQUAL(sb.data["guid_name"], "EFI_GLOBAL_VARIABLE");
  BOOST_CHECK_EQUAL(sb.data["name"], "SecureBoot");
  BOOST_CHECK_EQUAL(sb.data["value"], 1);
  BOOST_CHECK_EQUAL(sb.summary, "SecureBoot = 1");

  DecodedEvent order = DecodeEventData(ev::kEfiVariableBoot, Variable(kGlobal, "BootOrder", Le().U16(1).U16(0x2A).b));
  BOOST_CHECK_EQUAL(Dump(order.data["boot_order"]), R"(["Boot0001","Boot002A"])");

  const Bytes cert(40, 0x5A);
  const Bytes db = Le().Guid(kX509).U32(28 + 16 + cert.size()).U32(0).U32(16 + cert.size())
                       .Guid(kShimLock).Raw(cert).b;
  DecodedEvent dbv = DecodeEventData(ev::kEfiVariableDriverConfig, Variable(kSecurityDb, "db", db));
  BOOST_CHECK_MESSAGE(dbv.problem.empty(), dbv.problem);
  BOOST_CHECK_EQUAL(dbv.data["guid_name"], "EFI_IMAGE_SECURITY_DATABASE");
  BOOST_CHECK_EQUAL(dbv.data["signature_lists"][0]["type_name"], "EFI_CERT_X509");
  BOOST_CHECK_EQUAL(dbv.data["signature_lists"][0]["count"], 1);

  DecodedEvent sbat = DecodeEventData(ev::kEfiVariableAuthority, Variable(kShimLock, "SbatLevel", AsBytes("sbat,1,2021030218\n")));
  BOOST_CHECK_EQUAL(sbat.data["guid_name"], "SHIM_LOCK");
  BOOST_CHECK_EQUAL(sbat.data["text"], "sbat,1,2021030218\n");
  BOOST_CHECK_EQUAL(sbat.summary, "SbatLevel = sbat,1,2021030218\\n");  // one line

  EveryPrefixDecodes(ev::kEfiVariableDriverConfig, Variable(kSecurityDb, "db", db));
}

BOOST_AUTO_TEST_CASE(boot_variables_decode_their_load_option) {
  const Bytes dp = Path({HardDrive(), FilePath("\\EFI\\BOOT\\BOOTX64.EFI")});
  const Bytes option = Le().U32(1).U16(dp.size()).Utf16("Linux", true).Raw(dp).Text("opt").b;
  DecodedEvent d = DecodeEventData(ev::kEfiVariableBoot, Variable(kGlobal, "Boot0001", option));
  BOOST_CHECK_MESSAGE(d.problem.empty(), d.problem);
  const json& lo = d.data["load_option"];
  BOOST_CHECK_EQUAL(lo["description"], "Linux");
  BOOST_CHECK_EQUAL(lo["active"], true);
  BOOST_CHECK_EQUAL(lo["optional_data_length"], 3);
  BOOST_CHECK_EQUAL(lo["device_path"]["text"],
                    "HD(1,GPT,11111111-2222-3333-4444-555555555555,0x800,0x100000)/\\EFI\\BOOT\\BOOTX64.EFI");
  EveryPrefixDecodes(ev::kEfiVariableBoot, Variable(kGlobal, "Boot0001", option));

  // A description without its NUL runs into the device path: a problem.
  const Bytes broken = Le().U32(1).U16(4).Utf16("Linux").b;
  DecodedEvent bad = DecodeEventData(ev::kEfiVariableBoot, Variable(kGlobal, "Boot0002", broken));
  BOOST_CHECK_NE(bad.problem.find("no terminating NUL"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(variable_lengths_that_run_past_the_event_are_a_problem) {
  Bytes v = Variable(kGlobal, "SecureBoot", Bytes{1});
  v[16] = 0xFF;  // UnicodeNameLength: 255 CHAR16
  DecodedEvent d = DecodeEventData(ev::kEfiVariableDriverConfig, v);
  BOOST_CHECK_NE(d.problem.find("UnicodeNameLength 255"), std::string::npos);
  BOOST_CHECK_NE(d.problem.find("at byte 16"), std::string::npos);
  BOOST_CHECK_EQUAL(d.data["guid_name"], "EFI_GLOBAL_VARIABLE");  // what decoded before the problem

  v = Variable(kGlobal, "SecureBoot", Bytes{1});
  for (int i = 0; i < 8; ++i) v[24 + i] = 0xFF;  // VariableDataLength: 2^64-1
  BOOST_CHECK_NE(DecodeEventData(ev::kEfiVariableBoot, v).problem.find("VariableDataLength"), std::string::npos);

  BOOST_CHECK_NE(DecodeEventData(ev::kEfiVariableBoot, Bytes(20, 0)).problem.find("shorter than its 32-byte header"),
                 std::string::npos);
  auto parsed = ParseUefiVariable(Bytes(5, 0));
  BOOST_REQUIRE(!parsed.ok());
  BOOST_CHECK(parsed.status().offset().has_value());
}

BOOST_AUTO_TEST_CASE(image_load_events_decode_their_device_path) {
  const Bytes dp = Path({PciRoot(), Pci(1, 1), FilePath("\\EFI\\fedora\\shimx64.efi")});
  const Bytes image = Le().U64(0x7E000000).U64(0x1000).U64(0).U64(dp.size()).Raw(dp).b;
  DecodedEvent d = DecodeEventData(ev::kEfiBootServicesApplication, image);
  BOOST_CHECK_MESSAGE(d.problem.empty(), d.problem);
  BOOST_CHECK_EQUAL(d.data["image_location"], "0x7e000000");
  BOOST_CHECK_EQUAL(d.data["image_length"], 0x1000);
  BOOST_CHECK_EQUAL(d.summary, "PciRoot(0x0)/Pci(0x1,0x1)/\\EFI\\fedora\\shimx64.efi");
  const json& nodes = d.data["device_path"]["nodes"];
  BOOST_REQUIRE_EQUAL(nodes.size(), 3u);
  BOOST_CHECK_EQUAL(nodes[0]["type"], 2);
  BOOST_CHECK_EQUAL(nodes[0]["subtype"], 1);
  BOOST_CHECK_EQUAL(nodes[2]["name"], "file_path");
  BOOST_CHECK_EQUAL(nodes[2]["path"], "\\EFI\\fedora\\shimx64.efi");
  EveryPrefixDecodes(ev::kEfiBootServicesApplication, image);

  Bytes long_path = image;
  long_path[24] = 0xFF;  // LengthOfDevicePath past the event
  BOOST_CHECK_NE(DecodeEventData(ev::kEfiBootServicesDriver, long_path).problem.find("device path length"),
                 std::string::npos);
  const Bytes bad_node = Le().U64(0).U64(0).U64(0).U64(4).U8(4).U8(4).U16(2).b;  // node length 2 < 4
  BOOST_CHECK_NE(DecodeEventData(ev::kEfiBootServicesApplication, bad_node).problem.find("(< 4)"), std::string::npos);
  BOOST_CHECK_NE(DecodeEventData(ev::kEfiRuntimeServicesDriver, Bytes(31, 0)).problem.find("32-byte header"),
                 std::string::npos);
}

BOOST_AUTO_TEST_CASE(firmware_blobs) {
  DecodedEvent blob = DecodeEventData(ev::kEfiPlatformFirmwareBlob, Le().U64(0xFF000000).U64(0x10000).b);
  BOOST_CHECK(blob.problem.empty());
  BOOST_CHECK_EQUAL(blob.data["base"], "0xff000000");
  BOOST_CHECK_EQUAL(blob.data["length"], 0x10000);
  BOOST_CHECK(!DecodeEventData(ev::kEfiPlatformFirmwareBlob, Bytes(8, 0)).problem.empty());

  const Bytes blob2 = Le().U8(7).Text("PEI FV1").U64(0xFFE00000).U64(0x20000).b;
  DecodedEvent b2 = DecodeEventData(ev::kEfiPlatformFirmwareBlob2, blob2);
  BOOST_CHECK(b2.problem.empty());
  BOOST_CHECK_EQUAL(b2.data["description"], "PEI FV1");
  BOOST_CHECK_EQUAL(b2.data["base"], "0xffe00000");
  Bytes b2_bad = blob2;
  b2_bad[0] = 200;  // description past the event
  BOOST_CHECK(!DecodeEventData(ev::kEfiPlatformFirmwareBlob2, b2_bad).problem.empty());
  EveryPrefixDecodes(ev::kEfiPlatformFirmwareBlob2, blob2);

  // EV_POST_CODE: a string, or the measured region as a blob.
  BOOST_CHECK_EQUAL(DecodeEventData(ev::kPostCode, AsBytes("ACPI DATA")).data["text"], "ACPI DATA");
  BOOST_CHECK_EQUAL(DecodeEventData(ev::kPostCode, Le().U64(0xFF130000).U64(0xA7F000).b).data["base"], "0xff130000");
  BOOST_CHECK(!DecodeEventData(ev::kPostCode, Bytes{0x01, 0x02, 0x03}).problem.empty());
}

// UEFI_PARTITION_TABLE_HEADER (92 bytes), the partition count, then entries.
Bytes Gpt(uint64_t count, uint32_t entry_size, std::initializer_list<std::string_view> names) {
  Le g;
  g.Text("EFI PART").U32(0x10000).U32(92).U32(0).U32(0).U64(1).U64(999).U64(34).U64(966)
      .Guid("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee").U64(2).U32(128).U32(entry_size).U32(0).U64(count);
  uint64_t lba = 2048;
  for (std::string_view name : names) {
    Le e;
    e.Guid(kEsp).Guid("12345678-1234-1234-1234-123456789abc").U64(lba).U64(lba + 1000).U64(0).Utf16(name);
    e.b.resize(entry_size, 0);
    g.Raw(e.b);
    lba += 2048;
  }
  return g.b;
}

BOOST_AUTO_TEST_CASE(gpt_partitions_are_named) {
  const Bytes gpt = Gpt(2, 128, {"EFI System Partition", "root"});
  DecodedEvent d = DecodeEventData(ev::kEfiGptEvent, gpt);
  BOOST_CHECK_MESSAGE(d.problem.empty(), d.problem);
  BOOST_CHECK_EQUAL(d.data["disk_guid"], "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
  BOOST_REQUIRE_EQUAL(d.data["partitions"].size(), 2u);
  BOOST_CHECK_EQUAL(d.data["partitions"][0]["name"], "EFI System Partition");
  BOOST_CHECK_EQUAL(d.data["partitions"][0]["type_guid_name"], "EFI System Partition");
  BOOST_CHECK_EQUAL(d.data["partitions"][1]["name"], "root");
  BOOST_CHECK_EQUAL(d.data["partitions"][1]["starting_lba"], 4096);
  EveryPrefixDecodes(ev::kEfiGptEvent, gpt);

  // More partitions than the event holds, and a count near 2^64.
  BOOST_CHECK_NE(DecodeEventData(ev::kEfiGptEvent, Gpt(3, 128, {"a", "b"})).problem.find("run past the event"),
                 std::string::npos);
  BOOST_CHECK(!DecodeEventData(ev::kEfiGptEvent, Gpt(~uint64_t{0}, 128, {"a"})).problem.empty());
  BOOST_CHECK(!DecodeEventData(ev::kEfiGptEvent, Gpt(1, 16, {})).problem.empty());  // entries too small
  Bytes bad = gpt;
  bad[0] = 'X';
  BOOST_CHECK_NE(DecodeEventData(ev::kEfiGptEvent, bad).problem.find("EFI PART"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(strings_actions_separators_and_crtm_versions) {
  BOOST_CHECK_EQUAL(DecodeEventData(ev::kEfiAction, AsBytes("Exit Boot Services Invocation")).data["text"],
                    "Exit Boot Services Invocation");
  BOOST_CHECK_EQUAL(DecodeEventData(ev::kAction, AsBytes("Calling INT 19h")).data["text"], "Calling INT 19h");
  BOOST_CHECK(!DecodeEventData(ev::kEfiAction, Bytes{0xFF, 0x01}).problem.empty());
  BOOST_CHECK_EQUAL(DecodeEventData(ev::kIpl, AsBytes(std::string("grub_cmd: ls", 13))).data["text"], "grub_cmd: ls");

  DecodedEvent zero = DecodeEventData(ev::kSeparator, Bytes(4, 0));
  BOOST_CHECK(zero.problem.empty());
  BOOST_CHECK_EQUAL(zero.data["value"], "0x00000000");
  BOOST_CHECK_NE(DecodeEventData(ev::kSeparator, AsBytes("WBCL")).data["note"].get<std::string>().find("WBCL"),
                 std::string::npos);
  BOOST_CHECK(DecodeEventData(ev::kSeparator, Bytes(4, 0xFF)).data.contains("note"));
  BOOST_CHECK(!DecodeEventData(ev::kSeparator, Bytes(3, 0)).problem.empty());

  BOOST_CHECK_EQUAL(DecodeEventData(ev::kSCrtmVersion, Le().Utf16("2.3.5", true).b).data["version"], "2.3.5");
  BOOST_CHECK_EQUAL(DecodeEventData(ev::kSCrtmVersion, Bytes{0, 0}).data["version"], "");  // OVMF
  const Bytes guid = Le().Guid("546bfb1e-1d0c-4055-a4ad-4ef4bf17b83a").b;  // not UCS-2 text
  BOOST_CHECK_EQUAL(DecodeEventData(ev::kSCrtmVersion, guid).data["guid"], "546bfb1e-1d0c-4055-a4ad-4ef4bf17b83a");

  BOOST_CHECK_EQUAL(DecodeEventData(ev::kEfiHcrtmEvent, AsBytes("HCRTM")).data["text"], "HCRTM");
  BOOST_CHECK(!DecodeEventData(ev::kEfiHcrtmEvent, AsBytes(std::string_view("HCRTM\0", 6))).problem.empty());
}

BOOST_AUTO_TEST_CASE(no_action_records) {
  const Bytes locality = Le().Text(std::string_view("StartupLocality\0", 16)).U8(3).b;
  DecodedEvent l = DecodeEventData(ev::kNoAction, locality);
  BOOST_CHECK_EQUAL(l.data["signature"], "StartupLocality");
  BOOST_CHECK_EQUAL(l.data["startup_locality"], 3);
  BOOST_CHECK(!DecodeEventData(ev::kNoAction, ByteView(locality).first(16)).problem.empty());

  auto str = [](Le& le, std::string_view s) { le.U8(s.size() + 1).Text(s).U8(0); };
  Le sp;
  sp.Text("SP800-155 Event3").U32(11129).Guid("a00597d0-4c5e-4738-8032-6f958ca92fad");
  str(sp, "Google, Inc.");
  str(sp, "Google Compute Engine");
  str(sp, "");
  str(sp, "Google, Inc.");
  sp.U32(11129);
  str(sp, "2.7");
  sp.U32(3).U32(4).Text("rim1").U32(2).U32(2).Raw(Bytes{0xC0, 0x01});
  DecodedEvent s = DecodeEventData(ev::kNoAction, sp.b);
  BOOST_CHECK(s.problem.empty());
  BOOST_CHECK_EQUAL(s.data["vendor_id"], 11129);
  BOOST_CHECK_EQUAL(s.data["platform_manufacturer"], "Google, Inc.");
  BOOST_CHECK_EQUAL(s.data["platform_model"], "Google Compute Engine");
  BOOST_CHECK_EQUAL(s.data["firmware_version"], "2.7");
  BOOST_CHECK_EQUAL(s.data["rim_locator"]["text"], "rim1");
  BOOST_CHECK_EQUAL(s.data["platform_cert_locator"]["hex"], "c001");
  BOOST_CHECK(!s.data.contains("truncated_at"));
  // A short record is shown as far as it goes.
  DecodedEvent cut = DecodeEventData(ev::kNoAction, ByteView(sp.b).first(40));
  BOOST_CHECK(cut.data.contains("truncated_at"));
  EveryPrefixDecodes(ev::kNoAction, sp.b);
}

BOOST_AUTO_TEST_CASE(handoff_tables_and_tagged_events) {
  const Bytes tables = Le().U64(1).Guid("f2fd1544-9794-4a2c-992e-e5bbcf20e394").U64(0x6FD17000).b;
  DecodedEvent t = DecodeEventData(ev::kEfiHandoffTables, tables);
  BOOST_CHECK(t.problem.empty());
  BOOST_CHECK_EQUAL(t.data["tables"][0]["guid_name"], "SMBIOS3_TABLE");
  BOOST_CHECK_EQUAL(t.data["tables"][0]["address"], "0x6fd17000");
  Bytes too_many = tables;
  too_many[7] = 0x10;  // 2^60 tables
  BOOST_CHECK(!DecodeEventData(ev::kEfiHandoffTables, too_many).problem.empty());
  const Bytes tables2 = Le().U8(6).Text("SMBIOS").Raw(tables).b;
  BOOST_CHECK_EQUAL(DecodeEventData(ev::kEfiHandoffTables2, tables2).data["description"], "SMBIOS");
  EveryPrefixDecodes(ev::kEfiHandoffTables2, tables2);

  const Bytes tag = Le().U32(0x8F3B22ED).U32(13).Text(std::string_view("Linux initrd\0", 13)).b;
  DecodedEvent g = DecodeEventData(ev::kEventTag, tag);
  BOOST_CHECK(g.problem.empty());
  BOOST_CHECK_EQUAL(g.data["tags"][0]["id"], "0x8f3b22ed");
  BOOST_CHECK_EQUAL(g.data["tags"][0]["text"], "Linux initrd");
  Bytes long_tag = tag;
  long_tag[4] = 200;
  BOOST_CHECK_NE(DecodeEventData(ev::kEventTag, long_tag).problem.find("runs past the event"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(spec_id_header_as_json) {
  SpecIdEvent spec;
  spec.algorithms = {{0x0004, 20}, {0x000B, 32}, {0x1234, 16}};
  spec.vendor_info = {0xDE, 0xAD};
  const json j = SpecIdJson(spec);
  BOOST_CHECK_EQUAL(j["algorithms"][0]["alg"], "sha1");
  BOOST_CHECK_EQUAL(j["algorithms"][1]["alg"], "sha256");
  BOOST_CHECK_EQUAL(j["algorithms"][2]["alg"], "0x1234");
  BOOST_CHECK_EQUAL(j["vendor_info"], "dead");
  BOOST_CHECK_EQUAL(j["spec_version"], "2.0");
}

BOOST_AUTO_TEST_CASE(untyped_data_is_text_or_hex_and_never_a_problem) {
  BOOST_CHECK_EQUAL(DecodeEventData(ev::kCpuMicrocode, AsBytes("Load microcode")).data["text"], "Load microcode");
  DecodedEvent bin = DecodeEventData(0x12345678, Bytes(300, 0x99));
  BOOST_CHECK(bin.problem.empty());
  BOOST_CHECK_EQUAL(bin.data["hex"].get<std::string>().size(), 512u);  // capped at 256 bytes
  BOOST_CHECK_EQUAL(bin.data["hex_truncated"], true);
  BOOST_CHECK(DecodeEventData(ev::kCompactHash, {}).problem.empty());
}

}  // namespace
}  // namespace tpmlab
