// The event log checks (harness/findings.h): a small well-formed UEFI boot
// has no finding; each finding code is triggered once by one change to it,
// and not by its fixed counterpart. The public fixtures give exactly the
// findings listed here (none for logs known to be good).
#define BOOST_TEST_MODULE findings
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "harness/findings.h"
#include "needs.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;

constexpr HashAlg kBanks[] = {HashAlg::kSha1, HashAlg::kSha256};

Bytes Utf16(std::string_view s, bool nul) {
  Bytes out;
  for (char c : s) out.insert(out.end(), {static_cast<uint8_t>(c), 0});
  if (nul) out.insert(out.end(), {0, 0});
  return out;
}

void Put64(Bytes& b, uint64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// UEFI_VARIABLE_DATA with the EFI global variable GUID.
Bytes Variable(std::string_view name, const Bytes& data) {
  Bytes v = {0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c};
  Put64(v, name.size());
  Put64(v, data.size());
  const Bytes n = Utf16(name, false);
  v.insert(v.end(), n.begin(), n.end());
  v.insert(v.end(), data.begin(), data.end());
  return v;
}

// A GPT event: "EFI PART" header, no partitions.
Bytes Gpt() {
  Bytes g(92, 0);
  std::copy_n("EFI PART", 8, g.begin());
  g[84] = 128;  // SizeOfPartitionEntry
  Put64(g, 0);
  return g;
}

// One event of a log being built: its digests are H(hashed) in both banks.
struct Spec {
  uint32_t pcr;
  uint32_t type;
  Bytes data;
  Bytes hashed;  // what the digests cover; the data itself when empty and `own`
  bool own = true;
};

Spec Ev(uint32_t pcr, uint32_t type, Bytes data) { return {pcr, type, data, {}, true}; }
Spec Ev(uint32_t pcr, uint32_t type, std::string_view text) { return Ev(pcr, type, Bytes(AsBytes(text).begin(), AsBytes(text).end())); }
// An event whose digest covers something else (a PE image, a firmware region).
Spec Measured(uint32_t pcr, uint32_t type, Bytes data, std::string_view what) {
  return {pcr, type, std::move(data), Bytes(AsBytes(what).begin(), AsBytes(what).end()), false};
}

// A short UEFI boot, in the order OVMF logs it, whose recomputable digests
// all match: S-CRTM version, firmware, Secure Boot, BootOrder (hashed over
// its VariableData, as edk2 does), "Calling EFI Application", separators,
// GPT, a boot application, its authority, a grub command, the EBS actions.
std::vector<Spec> GoodBoot() {
  std::vector<Spec> s;
  s.push_back(Ev(0, ev::kSCrtmVersion, Utf16("1.0", true)));
  s.push_back(Measured(0, ev::kEfiPlatformFirmwareBlob, Bytes(16, 1), "firmware volume"));
  s.push_back(Ev(7, ev::kEfiVariableDriverConfig, Variable("SecureBoot", {1})));
  s.push_back({1, ev::kEfiVariableBoot, Variable("BootOrder", {1, 0}), {1, 0}, false});
  s.push_back(Ev(4, ev::kEfiAction, "Calling EFI Application from Boot Option"));
  for (uint32_t pcr = 0; pcr < 8; ++pcr) s.push_back(Ev(pcr, ev::kSeparator, Bytes(4, 0)));
  s.push_back(Ev(5, ev::kEfiGptEvent, Gpt()));
  s.push_back(Measured(4, ev::kEfiBootServicesApplication, Bytes(32, 0), "PE image"));
  s.push_back(Measured(7, ev::kEfiVariableAuthority, Variable("db", Bytes(20, 7)), "EFI_SIGNATURE_DATA"));
  s.push_back({8, ev::kIpl, Bytes(AsBytes(std::string_view("grub_cmd: linux /vmlinuz\0", 25)).begin(),
                                  AsBytes(std::string_view("grub_cmd: linux /vmlinuz\0", 25)).end()),
               Bytes(AsBytes("linux /vmlinuz").begin(), AsBytes("linux /vmlinuz").end()), false});
  s.push_back(Ev(5, ev::kEfiAction, "Exit Boot Services Invocation"));
  s.push_back(Ev(5, ev::kEfiAction, "Exit Boot Services Returned with Success"));
  return s;
}

EventLog Build(const std::vector<Spec>& specs) {
  EventLog log = EventLog::CryptoAgile({std::begin(kBanks), std::end(kBanks)});
  for (const Spec& s : specs) {
    std::vector<std::pair<uint16_t, Bytes>> digests;
    for (HashAlg bank : kBanks) digests.push_back({static_cast<uint16_t>(bank), *Hash(bank, s.own ? s.data : s.hashed)});
    log.Append(s.pcr, s.type, digests, s.data);
  }
  return log;
}

std::string Describe(const std::vector<Finding>& findings) {
  std::string out;
  for (const auto& f : findings) out += "\n  " + f.code + ": " + f.message;
  return out;
}

size_t IndexOf(const std::vector<Spec>& s, uint32_t pcr, uint32_t type) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i].pcr == pcr && s[i].type == type) return i;
  }
  BOOST_FAIL("no such event");
  return 0;
}

// `change` applied to the good boot gives exactly one finding, of `code`.
Finding OnlyFinding(const std::string& code, const std::function<void(std::vector<Spec>&)>& change) {
  std::vector<Spec> s = GoodBoot();
  change(s);
  const auto findings = CheckEventLog(Build(s));
  BOOST_REQUIRE_MESSAGE(findings.size() == 1 && findings[0].code == code,
                        "expected exactly one " << code << ", got" << Describe(findings));
  return findings[0];
}

BOOST_AUTO_TEST_CASE(a_good_boot_has_no_finding) {
  const auto findings = CheckEventLog(Build(GoodBoot()));
  BOOST_CHECK_MESSAGE(findings.empty(), "findings:" << Describe(findings));
}

BOOST_AUTO_TEST_CASE(digest_mismatch_for_every_recomputable_type) {
  // Each of these types carries what its digest covers; changing a byte of
  // the data (not the digest) must be noticed.
  for (auto [pcr, type] : {std::pair{0u, ev::kSCrtmVersion}, {7u, ev::kEfiVariableDriverConfig}, {1u, ev::kEfiVariableBoot},
                           {4u, ev::kEfiAction}, {3u, ev::kSeparator}, {5u, ev::kEfiGptEvent}, {8u, ev::kIpl}}) {
    BOOST_TEST_CONTEXT("PCR" << pcr << " " << EventTypeName(type)) {
      size_t at = 0;
      const Finding f = OnlyFinding("EVENT_DIGEST_MISMATCH", [&](std::vector<Spec>& s) {
        at = IndexOf(s, pcr, type);
        if (s[at].own) s[at].hashed = s[at].data, s[at].own = false;  // keep the digest...
        s[at].data[type == ev::kEfiGptEvent ? 30 : s[at].data.size() - 1] ^= 0x01;  // ...change the data
        if (type == ev::kSeparator) s[at].data = Bytes(4, 0), s[at].hashed = {0, 0, 0, 1};
        if (type == ev::kIpl) s[at].hashed.push_back('x');
      });
      BOOST_CHECK_EQUAL(f.event_index, at);
      BOOST_CHECK_EQUAL(f.pcr, pcr);
      BOOST_CHECK_EQUAL(f.type, type);
      BOOST_CHECK_NE(f.message.find("sha1, sha256 digest does not match"), std::string::npos);
      BOOST_CHECK_EQUAL(f.offset, Build([&] { auto s = GoodBoot(); return s; }()).events()[at].log_offset);
    }
  }
}

BOOST_AUTO_TEST_CASE(digest_mismatch_names_only_the_banks_that_differ) {
  EventLog log = EventLog::CryptoAgile({HashAlg::kSha1, HashAlg::kSha256});
  const Bytes sep(4, 0);
  log.Append(0, ev::kSeparator, {{0x0004, *Hash(HashAlg::kSha1, sep)}, {0x000B, Bytes(32, 0xEE)}}, sep);
  log.Append(1, ev::kSeparator, {{0x000B, *Hash(HashAlg::kSha256, sep)}}, sep);  // partial, right
  const auto findings = CheckEventLog(log);
  BOOST_REQUIRE_EQUAL(findings.size(), 1u);
  BOOST_CHECK_NE(findings[0].message.find("the sha256 digest"), std::string::npos);
  BOOST_CHECK_EQUAL(findings[0].message.find("sha1,"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(boot_variables_may_hash_the_whole_structure_too) {
  std::vector<Spec> s = GoodBoot();
  s[IndexOf(s, 1, ev::kEfiVariableBoot)].own = true;  // H(UEFI_VARIABLE_DATA), as the PFP says
  BOOST_CHECK(CheckEventLog(Build(s)).empty());
}

BOOST_AUTO_TEST_CASE(duplicate_separator) {
  const Finding f = OnlyFinding("DUPLICATE_SEPARATOR", [](auto& s) { s.push_back(Ev(7, ev::kSeparator, Bytes(4, 0))); });
  BOOST_CHECK_NE(f.message.find("the first is event"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(separator_values_other_than_zero) {
  Finding f = OnlyFinding("SEPARATOR_VALUE", [](auto& s) { s[IndexOf(s, 2, ev::kSeparator)].data = Bytes(4, 0xFF); });
  BOOST_CHECK_NE(f.message.find("FFFFFFFF"), std::string::npos);
  f = OnlyFinding("SEPARATOR_VALUE", [](auto& s) { s.push_back(Ev(12, ev::kSeparator, "WBCL")); });
  BOOST_CHECK_NE(f.message.find("WBCL"), std::string::npos);
  f = OnlyFinding("SEPARATOR_VALUE", [](auto& s) { s[IndexOf(s, 6, ev::kSeparator)].data = {1, 2, 3, 4}; });
  BOOST_CHECK_NE(f.message.find("01020304"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(missing_exit_boot_services) {
  const auto drop_ebs = [](std::vector<Spec>& s) { s.resize(s.size() - 2); };
  const Finding f = OnlyFinding("MISSING_EXIT_BOOT_SERVICES", drop_ebs);
  BOOST_CHECK_EQUAL(f.pcr, 5u);
  BOOST_CHECK_EQUAL(f.type, ev::kSeparator);
  // Either action is enough...
  std::vector<Spec> s = GoodBoot();
  s.pop_back();
  BOOST_CHECK(CheckEventLog(Build(s)).empty());
  // ...and a log without a boot application (a BIOS log, or one cut early) has no reason to have them.
  s = GoodBoot();
  drop_ebs(s);
  s.erase(s.begin() + static_cast<std::ptrdiff_t>(IndexOf(s, 4, ev::kEfiBootServicesApplication)));
  BOOST_CHECK(CheckEventLog(Build(s)).empty());
}

BOOST_AUTO_TEST_CASE(duplicate_s_crtm_version) {
  const Finding f = OnlyFinding("DUPLICATE_S_CRTM_VERSION",
                                [](auto& s) { s.insert(s.begin() + 1, Ev(0, ev::kSCrtmVersion, Utf16("1.1", true))); });
  BOOST_CHECK_EQUAL(f.event_index, 1u);
  BOOST_CHECK_NE(f.message.find("different data"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(events_after_a_separator) {
  const Finding f = OnlyFinding("EVENT_AFTER_SEPARATOR", [](auto& s) {
    s.push_back(Measured(0, ev::kEfiPlatformFirmwareBlob, Bytes(16, 2), "late firmware"));
  });
  BOOST_CHECK_EQUAL(f.pcr, 0u);
  // What real firmware measures after the separators is allowed (fixtures).
  std::vector<Spec> s = GoodBoot();
  s.push_back(Ev(1, ev::kEfiVariableBoot, Variable("BootNext", {1, 0})));
  s.push_back(Ev(1, ev::kPlatformConfigFlags, "FeatureTME=0"));
  s.push_back(Measured(4, ev::kEfiBootServicesApplication, Bytes(32, 0), "grub"));
  s.push_back(Ev(7, ev::kEfiVariableDriverConfig, Variable("SbatLevel", {'s'})));
  s.push_back(Ev(9, ev::kIpl, "(hd0,gpt1)/grub.cfg"));  // PCR 8+ have no firmware separator rule
  BOOST_CHECK_MESSAGE(CheckEventLog(Build(s)).empty(), Describe(CheckEventLog(Build(s))));
  // EV_NO_ACTION is never extended, so it may come anywhere.
  s.push_back(Ev(0, ev::kNoAction, "anything"));
  BOOST_CHECK(CheckEventLog(Build(s)).empty());
}

BOOST_AUTO_TEST_CASE(unknown_event_type) {
  const Finding f = OnlyFinding("UNKNOWN_EVENT_TYPE", [](auto& s) { s.push_back(Ev(9, 0x12345678, "x")); });
  BOOST_CHECK_NE(f.message.find("EV_UNKNOWN_0x12345678"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(undecodable_event_data) {
  const Finding f = OnlyFinding("EVENT_DATA_UNDECODABLE", [](auto& s) {
    s[IndexOf(s, 0, ev::kEfiPlatformFirmwareBlob)].data.resize(8);  // blob digests are not recomputable
  });
  BOOST_CHECK_NE(f.message.find("UEFI_PLATFORM_FIRMWARE_BLOB is 8 bytes"), std::string::npos);
}

// --- the fixtures -----------------------------------------------------------

const fs::path kFixtures = test::FixturesDir() / "eventlogs";

// What the checks say about each public fixture; the rest have nothing.
// Event 23 of both arch-linux copies is sd-boot's PCR8 command line, which
// tpm2-tools flags as "Event 24's digest does not match its payload" (it
// counts the Spec ID event); gdc-host's S-CRTM version digest is not of its
// data; the logs without ExitBootServices actions end before the kernel
// added them, or never had them (ebs_event_missing_eventlog is the case
// go-attestation's workaround is for); the Windows logs use WBCL separators.
const std::map<std::string, std::map<std::string, int>> kExpected = {
    {"arch-linux-workstation.bin", {{"EVENT_DIGEST_MISMATCH", 1}, {"MISSING_EXIT_BOOT_SERVICES", 1}}},
    {"tpm2tools-event-arch-linux.bin", {{"EVENT_DIGEST_MISMATCH", 1}, {"MISSING_EXIT_BOOT_SERVICES", 1}}},
    {"gdc-host.bin", {{"EVENT_DIGEST_MISMATCH", 1}}},
    {"crypto_agile_eventlog.bin", {{"MISSING_EXIT_BOOT_SERVICES", 1}}},
    {"debian-10.bin", {{"MISSING_EXIT_BOOT_SERVICES", 1}}},
    {"ebs_event_missing_eventlog.bin", {{"MISSING_EXIT_BOOT_SERVICES", 1}}},
    {"glinux-alex.bin", {{"MISSING_EXIT_BOOT_SERVICES", 1}}},
    {"lenovo_locality3_bios_measurements.bin", {{"MISSING_EXIT_BOOT_SERVICES", 1}}},
    {"tpm2tools-event-postcode.bin", {{"MISSING_EXIT_BOOT_SERVICES", 1}}},
    {"tpm2tools-event-uefi-sha1-log.bin", {{"MISSING_EXIT_BOOT_SERVICES", 1}}},
    {"option_rom_eventlog.bin", {{"SEPARATOR_VALUE", 3}}},
    {"windows_gcp_shielded_vm.bin", {{"SEPARATOR_VALUE", 3}}},
};

BOOST_AUTO_TEST_CASE(fixtures_give_exactly_the_known_findings, TPMLAB_NEEDS("fixtures", kFixtures / "expected.json")) {
  std::ifstream in(kFixtures / "expected.json");
  const auto expected = nlohmann::json::parse(in);
  for (const auto& [name, want] : expected.items()) {
    if (want.at("expect") != "replays") continue;
    BOOST_TEST_CONTEXT(name) {
      auto log = ReadEventLogFile((kFixtures / name).string());
      BOOST_REQUIRE(log.ok());
      const auto findings = CheckEventLog(*log);
      std::map<std::string, int> got;
      for (const auto& f : findings) ++got[f.code];
      auto it = kExpected.find(name);
      const std::map<std::string, int> none;
      BOOST_CHECK_MESSAGE(got == (it == kExpected.end() ? none : it->second), "findings:" << Describe(findings));
      if (name.find("arch-linux") != std::string::npos) {
        for (const auto& f : findings) {
          if (f.code == "EVENT_DIGEST_MISMATCH") BOOST_CHECK_EQUAL(f.event_index, 23u);
        }
      }
    }
  }
}

}  // namespace
}  // namespace tpmlab
