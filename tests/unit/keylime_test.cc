// Keylime reference values (harness/keylime.h) from hand-built logs: each
// field of the measured-boot reference state holds the sha256 digest of the
// event Keylime's create_mb_policy takes it from, fields whose events are
// missing stay empty or absent, and the PCR policy has Keylime's shape.
#define BOOST_TEST_MODULE keylime
#include <boost/test/unit_test.hpp>

#include <regex>
#include <string>

#include "harness/keylime.h"

namespace tpmlab {
namespace {

using nlohmann::ordered_json;

struct Le {
  Bytes b;
  Le& U8(uint64_t v) { return N(v, 1); }
  Le& U16(uint64_t v) { return N(v, 2); }
  Le& U32(uint64_t v) { return N(v, 4); }
  Le& U64(uint64_t v) { return N(v, 8); }
  Le& Raw(ByteView v) { b.insert(b.end(), v.begin(), v.end()); return *this; }
  Le& Text(std::string_view s) { return Raw(AsBytes(s)); }
  Le& Utf16(std::string_view s, bool nul = false) {
    for (char c : s) U16(static_cast<uint8_t>(c));
    return nul ? U16(0) : *this;
  }
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
constexpr std::string_view kX509 = "a5c059a1-94e4-4aa7-87b5-ab155c2bf072";
constexpr std::string_view kSha256Type = "c1c41626-504c-4092-aca9-41f936934328";
constexpr std::string_view kOwner = "77fa9abd-0359-4d32-bd60-28f4e78f784b";

Bytes Variable(std::string_view guid, std::string_view name, ByteView data) {
  return Le().Guid(guid).U64(name.size()).U64(data.size()).Utf16(name).Raw(data).b;
}
// One EFI_SIGNATURE_LIST of signatures of equal size, each {owner; data}.
Bytes SignatureList(std::string_view type, const std::vector<Bytes>& datas) {
  Le l;
  const size_t sig_size = 16 + datas.front().size();
  l.Guid(type).U32(28 + sig_size * datas.size()).U32(0).U32(sig_size);
  for (const Bytes& d : datas) l.Guid(kOwner).Raw(d);
  return l.b;
}
Bytes Node(uint8_t type, uint8_t sub, ByteView body) { return Le().U8(type).U8(sub).U16(body.size() + 4).Raw(body).b; }
Bytes End() { return Le().U8(0x7F).U8(0xFF).U16(4).b; }
Bytes ImageLoad(const Bytes& path) {
  Bytes dp = path;
  const Bytes end = End();
  dp.insert(dp.end(), end.begin(), end.end());
  return Le().U64(0x1000).U64(0x2000).U64(0).U64(dp.size()).Raw(dp).b;
}
Bytes FilePath(std::string_view p) { return ImageLoad(Node(4, 4, Le().Utf16(p, true).b)); }
Bytes FirmwareApp() {
  Bytes fv = Node(4, 7, Le().Guid("8fc151ae-c96f-4bc9-8c33-107992c7735b").b);
  const Bytes file = Node(4, 6, Le().Guid("821aca26-29ea-4993-839f-597fc021708d").b);
  fv.insert(fv.end(), file.begin(), file.end());
  return ImageLoad(fv);
}

// Events whose digests are H(data) in sha1 and sha256, so the test knows each.
struct LogBuilder {
  EventLog log = EventLog::CryptoAgile({HashAlg::kSha1, HashAlg::kSha256});
  void Add(uint32_t pcr, uint32_t type, ByteView data) {
    log.Append(pcr, type, {{0x0004, *Hash(HashAlg::kSha1, data)}, {0x000B, *Hash(HashAlg::kSha256, data)}}, data);
  }
};
std::string Sha256(ByteView data) { return "0x" + ToHex(*Hash(HashAlg::kSha256, data)); }

const Bytes kCrtm = Le().Utf16("BIOS 1.0", true).b;
const Bytes kBlob1 = Le().U64(0xFFE00000).U64(0x200000).b;
const Bytes kBlob2 = Le().U8(3).Text("DXE").U64(0xFF800000).U64(0x600000).b;
const Bytes kPkCert = {0x30, 0x82, 0x00, 0x02, 0xAA, 0xBB};
const Bytes kDbxHash(32, 0x5A);

LogBuilder SecureBootLog(uint8_t secure_boot = 1) {
  LogBuilder b;
  b.Add(0, ev::kSCrtmVersion, kCrtm);
  b.Add(0, ev::kEfiPlatformFirmwareBlob, kBlob1);
  b.Add(0, ev::kEfiPlatformFirmwareBlob2, kBlob2);
  b.Add(2, ev::kEfiPlatformFirmwareBlob, Le().U64(0xC0000).U64(0x10000).b);  // an option ROM: not PCR 0
  b.Add(7, ev::kEfiVariableDriverConfig, Variable(kGlobal, "SecureBoot", Bytes{secure_boot}));
  b.Add(7, ev::kEfiVariableDriverConfig, Variable(kGlobal, "PK", SignatureList(kX509, {kPkCert})));
  b.Add(7, ev::kEfiVariableDriverConfig, Variable(kSecurityDb, "dbx", SignatureList(kSha256Type, {kDbxHash, Bytes(32, 0x6B)})));
  b.Add(4, ev::kEfiBootServicesApplication, FirmwareApp());  // the firmware's boot menu: skipped
  b.Add(4, ev::kEfiBootServicesApplication, FilePath("\\EFI\\debian\\shimx64.efi"));
  b.Add(14, ev::kIpl, AsBytes(std::string_view("MokList\0", 8)));
  b.Add(4, ev::kEfiBootServicesApplication, FilePath("\\EFI\\debian\\grubx64.efi"));
  b.Add(9, ev::kIpl, AsBytes("/boot/vmlinuz-6.1"));
  b.Add(4, ev::kEfiBootServicesApplication, Node(1, 1, Le().U8(0).U8(2).b));  // the kernel, from memory
  b.Add(8, ev::kIpl, AsBytes("kernel_cmdline: BOOT_IMAGE=/boot/vmlinuz-6.1 root=UUID=2f1c ro quiet"));
  b.Add(9, ev::kIpl, AsBytes("/boot/initrd.img-6.1"));
  return b;
}

BOOST_AUTO_TEST_CASE(every_field_holds_the_digest_of_the_event_keylime_takes_it_from) {
  LogBuilder b = SecureBootLog();
  auto r = keylime::MeasuredBootRefstate(b.log);
  BOOST_REQUIRE(r.ok());
  const ordered_json& j = r->json;
  std::vector<std::string> keys;
  for (const auto& item : j.items()) keys.push_back(item.key());
  const std::vector<std::string> order = {"has_secureboot", "scrtm_and_bios", "pk", "kek", "db", "dbx",
                                          "vendor_db", "mokdig", "mokxdig", "kernels"};
  BOOST_TEST(keys == order, boost::test_tools::per_element());
  BOOST_TEST(j["has_secureboot"] == true);
  BOOST_TEST(j["scrtm_and_bios"][0]["scrtm"]["sha256"] == Sha256(kCrtm));
  BOOST_TEST(j["scrtm_and_bios"][0]["platform_firmware"].size() == 2u);  // PCR 0's only
  BOOST_TEST(j["scrtm_and_bios"][0]["platform_firmware"][0]["sha256"] == Sha256(kBlob1));
  BOOST_TEST(j["scrtm_and_bios"][0]["platform_firmware"][1]["sha256"] == Sha256(kBlob2));
  BOOST_TEST(j["pk"].size() == 1u);
  BOOST_TEST(j["pk"][0]["SignatureOwner"] == std::string(kOwner));
  BOOST_TEST(j["pk"][0]["SignatureData"] == "0x" + ToHex(kPkCert));
  BOOST_TEST(j["dbx"].size() == 2u);
  BOOST_TEST(j["dbx"][0]["SignatureData"] == "0x" + ToHex(kDbxHash));
  BOOST_TEST(j["kek"].empty());
  BOOST_TEST(j["db"].empty());
  BOOST_TEST(j["vendor_db"].empty());
  BOOST_TEST(j["mokdig"].size() == 1u);
  BOOST_TEST(j["mokdig"][0]["sha256"] == Sha256(AsBytes(std::string_view("MokList\0", 8))));
  BOOST_TEST(j["mokxdig"].empty());
  const auto& k = j["kernels"][0];
  BOOST_TEST(k["shim_authcode_sha256"] == Sha256(FilePath("\\EFI\\debian\\shimx64.efi")));
  BOOST_TEST(k["grub_authcode_sha256"] == Sha256(FilePath("\\EFI\\debian\\grubx64.efi")));
  BOOST_TEST(k["kernel_authcode_sha256"] == Sha256(Node(1, 1, Le().U8(0).U8(2).b)));
  BOOST_TEST(k["initrd_plain_sha256"] == Sha256(AsBytes("/boot/initrd.img-6.1")));
  BOOST_TEST(!k.contains("vmlinuz_plain_sha256"));  // only without Secure Boot
  // Keylime matches "kernel_cmdline: " + this regex against the event.
  const std::string cmdline = k["kernel_cmdline"];
  BOOST_TEST(cmdline == "BOOT_IMAGE=/boot/vmlinuz\\-6\\.1\\ root=UUID=2f1c\\ ro\\ quiet");
  BOOST_TEST(std::regex_match("kernel_cmdline: BOOT_IMAGE=/boot/vmlinuz-6.1 root=UUID=2f1c ro quiet",
                              std::regex("kernel_cmdline: " + cmdline)));
  BOOST_TEST(!std::regex_match("kernel_cmdline: BOOT_IMAGE=/boot/vmlinuzX6.1 root=UUID=2f1c ro quiet",
                               std::regex("kernel_cmdline: " + cmdline)));
}

BOOST_AUTO_TEST_CASE(without_secure_boot_the_kernel_is_grubs_plain_digest) {
  LogBuilder b = SecureBootLog(0);
  auto r = keylime::MeasuredBootRefstate(b.log);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->json["has_secureboot"] == false);
  // Three applications from disk, where Keylime expects shim and GRUB only: no kernels entry, and a note.
  BOOST_TEST(!r->json.contains("kernels"));
  BOOST_TEST(std::any_of(r->notes.begin(), r->notes.end(), [](const std::string& n) { return n.find("kernels: 3") == 0; }));

  LogBuilder two;
  two.Add(7, ev::kEfiVariableDriverConfig, Variable(kGlobal, "SecureBoot", Bytes{0}));
  two.Add(4, ev::kEfiBootServicesApplication, FilePath("\\EFI\\shim.efi"));
  two.Add(4, ev::kEfiBootServicesApplication, FilePath("\\EFI\\grub.efi"));
  two.Add(9, ev::kIpl, AsBytes("/boot/vmlinuz-6.1"));
  auto r2 = keylime::MeasuredBootRefstate(two.log);
  BOOST_REQUIRE(r2.ok());
  const auto& k = r2->json["kernels"][0];
  BOOST_TEST(k["vmlinuz_plain_sha256"] == Sha256(AsBytes("/boot/vmlinuz-6.1")));
  BOOST_TEST(!k.contains("kernel_authcode_sha256"));
  BOOST_TEST(!k.contains("initrd_plain_sha256"));  // the log names no initrd
  BOOST_TEST(!k.contains("kernel_cmdline"));
}

BOOST_AUTO_TEST_CASE(a_log_without_firmware_events_leaves_the_fields_empty) {
  LogBuilder b;
  b.Add(4, ev::kSeparator, Bytes(4, 0));
  auto r = keylime::MeasuredBootRefstate(b.log);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->json["has_secureboot"] == false);
  BOOST_TEST(!r->json["scrtm_and_bios"][0].contains("scrtm"));
  BOOST_TEST(r->json["scrtm_and_bios"][0]["platform_firmware"].empty());
  BOOST_TEST(r->json["pk"].empty());
  BOOST_TEST(!r->json.contains("kernels"));
}

BOOST_AUTO_TEST_CASE(a_log_without_sha256_is_refused) {
  EventLog log = EventLog::CryptoAgile({HashAlg::kSha1});
  log.Append(0, ev::kSeparator, {{0x0004, Bytes(20, 1)}}, Bytes(4, 0));
  auto r = keylime::MeasuredBootRefstate(log);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().message().find("sha256") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_broken_signature_list_keeps_what_parsed_and_says_where) {
  LogBuilder b;
  Bytes lists = SignatureList(kX509, {kPkCert});
  lists.push_back(0x01);  // a second list that stops after one byte
  b.Add(7, ev::kEfiVariableDriverConfig, Variable(kGlobal, "KEK", lists));
  auto r = keylime::MeasuredBootRefstate(b.log);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->json["kek"].size() == 1u);
  BOOST_TEST(std::any_of(r->notes.begin(), r->notes.end(), [](const std::string& n) {
    return n.find("kek: EFI_SIGNATURE_LIST header truncated at byte 50") == 0;
  }));
}

BOOST_AUTO_TEST_CASE(regex_escape_is_pythons) {
  // Python 3.7+ re.escape: ()[]{}?*+-|^$\.&~# and whitespace; '=' '/' ':' ',' '_' stay.
  BOOST_TEST(keylime::RegexEscape("a-b.c d=e/f:g,h_i") == "a\\-b\\.c\\ d=e/f:g,h_i");
  BOOST_TEST(keylime::RegexEscape("()[]{}?*+|^$\\&~#\t") == "\\(\\)\\[\\]\\{\\}\\?\\*\\+\\|\\^\\$\\\\\\&\\~\\#\\\t");
  BOOST_TEST(keylime::RegexEscape(std::string("\x01\xff", 2)) == "\\x01\\xff");
}

BOOST_AUTO_TEST_CASE(tpm_policy_lists_every_banks_value_per_pcr) {
  PcrValues golden;
  for (HashAlg bank : {HashAlg::kSha256, HashAlg::kSha1}) {
    for (int i = 0; i < kPcrCount; ++i) golden[bank][i] = Bytes(bank == HashAlg::kSha1 ? 20 : 32, static_cast<uint8_t>(i));
  }
  auto p = keylime::TpmPolicy(golden, 0x4081, true);  // PCRs 0, 7, 14
  BOOST_REQUIRE(p.ok());
  BOOST_TEST(p->size() == 4u);
  BOOST_TEST((*p)["7"].size() == 2u);
  BOOST_TEST((*p)["7"][0] == ToHex(golden[HashAlg::kSha1][7]));  // TPM_ALG_ID order: sha1 first
  BOOST_TEST((*p)["7"][1] == ToHex(golden[HashAlg::kSha256][7]));
  BOOST_TEST((*p)["mask"] == "0x4081");
  auto tenant = keylime::TpmPolicy(golden, 0x4081, false);
  BOOST_REQUIRE(tenant.ok());
  BOOST_TEST(!tenant->contains("mask"));  // keylime_tenant's readPolicy refuses a key that is not a PCR
  BOOST_TEST(!keylime::TpmPolicy(golden, 1u << 10, false).ok());
  BOOST_TEST(!keylime::TpmPolicy(golden, 1u << 16, false).ok());
}

}  // namespace
}  // namespace tpmlab
