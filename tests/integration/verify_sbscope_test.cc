// Secure Boot from verified events only, and one replay scope, on a real
// swtpm. The test is the platform firmware: it extends the events of a log it
// builds by hand (the baseline model's boot, then one change) into the TPM,
// takes a real snapshot (a real quote over the real PCRs) and judges it.
//
// Secure Boot is read as go-attestation's ParseSecurebootState reads it: a
// SecureBoot variable whose digest is not of its data, a second one, or one
// after PCR 7's separator leave the state unknown (SECURE_BOOT_DISABLED
// saying so); a value other than 1, or no variable, is not enabled; a
// variable of another vendor GUID is not the SecureBoot variable; a log that
// does not replay is not read at all. The replay scope is Keylime's: an IMA
// extend of PCR 10 raises nothing (verify, doctor, drift); an unlogged extend
// of PCR 11 is PCR_REPLAY_MISMATCH.
#define BOOST_TEST_MODULE verify_sbscope
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "harness/doctor.h"
#include "harness/drift.h"
#include "harness/event_data.h"
#include "harness/enrollment.h"
#include "harness/verify.h"
#include "platform.h"

namespace tpmlab::testing {
namespace {

// One measurement: what the TPM is extended with, what the log shows.
struct Record {
  uint32_t pcr = 0;
  uint32_t type = 0;
  Bytes data;                          // the event data as logged
  std::map<HashAlg, Bytes> digests;    // extended, and logged
  bool logged = true;
};

Bytes Le64(uint64_t v) {
  Bytes out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return out;
}

// EFI_GUID bytes (u32, u16, u16 little-endian, then 8 bytes in order).
const Bytes kGlobalVariable = {0x61, 0xDF, 0xE4, 0x8B, 0xCA, 0x93, 0xD2, 0x11,
                               0xAA, 0x0D, 0x00, 0xE0, 0x98, 0x03, 0x2B, 0x8C};
// shim's 605dab50-e046-4300-abb6-3dd810dd8b23: a real vendor, not the global one.
const Bytes kShimLock = {0x50, 0xAB, 0x5D, 0x60, 0x46, 0xE0, 0x00, 0x43,
                         0xAB, 0xB6, 0x3D, 0xD8, 0x10, 0xDD, 0x8B, 0x23};

// UEFI_VARIABLE_DATA {GUID, name length, data length, CHAR16 name, data}.
Bytes Variable(const Bytes& guid, const std::string& name, const Bytes& value) {
  Bytes d = guid;
  const Bytes name_length = Le64(name.size()), data_length = Le64(value.size());
  d.insert(d.end(), name_length.begin(), name_length.end());
  d.insert(d.end(), data_length.begin(), data_length.end());
  for (char c : name) {
    d.push_back(static_cast<uint8_t>(c));
    d.push_back(0);
  }
  d.insert(d.end(), value.begin(), value.end());
  return d;
}

std::map<HashAlg, Bytes> DigestsOf(ByteView data) {
  std::map<HashAlg, Bytes> out;
  for (HashAlg bank : kBanks) out[bank] = Require(Hash(bank, data));
  return out;
}

Record SecureBootRecord(uint8_t value, const Bytes& guid = kGlobalVariable) {
  const Bytes data = Variable(guid, "SecureBoot", {value});
  return {7, ev::kEfiVariableDriverConfig, data, DigestsOf(data)};
}

// The baseline model's boot as records (its digests as the model computed
// them), with its SecureBoot variable event replaced by `secure_boot` (none
// when empty) at the same place.
std::vector<Record> BaselineWith(const std::vector<Record>& secure_boot) {
  const EventLog log = MeasuredBootLog(Model("baseline"), {}, kBanks);
  std::vector<Record> out;
  bool replaced = false;
  for (const Event& e : log.events()) {
    Record r{e.pcr, e.type, Bytes(log.Data(e).begin(), log.Data(e).end()), {}};
    for (uint32_t k = 0; k < e.digest_count; ++k) {
      const auto& d = log.DigestAt(e, k);
      const ByteView bytes = log.DigestBytes(d);
      r.digests[*HashAlgFromId(d.alg)] = Bytes(bytes.begin(), bytes.end());
    }
    if (e.pcr == 7 && e.type == ev::kEfiVariableDriverConfig) {
      auto var = ParseUefiVariable(log.Data(e));
      if (var.ok() && var->name == "SecureBoot") {
        out.insert(out.end(), secure_boot.begin(), secure_boot.end());
        replaced = true;
        continue;
      }
    }
    out.push_back(std::move(r));
  }
  BOOST_REQUIRE_MESSAGE(replaced, "the baseline model logs no SecureBoot variable");
  return out;
}

std::vector<Record>::iterator Find(std::vector<Record>& records, uint32_t pcr, uint32_t type) {
  auto it = std::find_if(records.begin(), records.end(),
                         [&](const Record& r) { return r.pcr == pcr && r.type == type; });
  BOOST_REQUIRE(it != records.end());
  return it;
}

// A DUT the test boots: each Boot is an orderly reset (so the clock is safe),
// then the records extended and logged.
struct Lab {
  Lab() { REQUIRE_OK(dut->Startup(BootOptions{})); }

  Snapshot Boot(const std::vector<Record>& records, const std::vector<HashAlg>& log_banks = kBanks) {
    REQUIRE_OK(dut->PowerCycle(PowerCycleKind::kReset, BootOptions{}));
    log = EventLog::CryptoAgile(log_banks);
    for (const Record& r : records) {
      if (r.type != ev::kNoAction) REQUIRE_OK(dut.tpm().Extend(static_cast<int>(r.pcr), r.digests));
      if (!r.logged) continue;
      std::vector<std::pair<uint16_t, Bytes>> digests;
      for (HashAlg bank : log_banks) {
        // A bank the TPM lacks gets the hash of the data (what it would log).
        auto it = r.digests.find(bank);
        digests.emplace_back(static_cast<uint16_t>(bank),
                             it != r.digests.end() ? it->second : Require(Hash(bank, r.data)));
      }
      log.Append(r.pcr, r.type, digests, r.data);
    }
    return Snap();
  }

  Snapshot Snap() {
    Snapshot s = Require(TakeSnapshot(dut.tpm(), SnapshotOptions{}));
    BOOST_TEST(s.quote_check.verified(), s.quote_check.failure);
    BOOST_TEST(s.clock().safe);
    s.eventlog = WriteEventLog(log);
    return s;
  }

  // Judged against an enrollment of this very boot, so only the log checks
  // can tell anything.
  static Verdict Judge(const Snapshot& s) {
    const Enrollment e = EnrollFromSnapshot(s, "dut0");
    return Verify(s, nullptr, &e);
  }

  void ExtendUnlogged(int pcr, const std::string& what) { REQUIRE_OK(dut.tpm().Extend(pcr, DigestsOf(AsBytes(what)))); }

  EmulatedDut dut;
  EventLog log;
};

std::string Describe(const Verdict& v) { return VerdictToJson(v).dump(); }

std::multiset<std::string> Codes(const Verdict& v) {
  std::multiset<std::string> out;
  for (const Alarm& a : v.alarms) out.insert(a.code);
  return out;
}
using CodeList = std::multiset<std::string>;

const Alarm& First(const Verdict& v, const std::string& code) {
  auto it = std::find_if(v.alarms.begin(), v.alarms.end(), [&](const Alarm& a) { return a.code == code; });
  BOOST_REQUIRE_MESSAGE(it != v.alarms.end(), "no " << code << ": " << Describe(v));
  return *it;
}

std::string NotRunReason(const Verdict& v, const std::string& code) {
  for (const std::string& line : v.not_run) {
    if (line.rfind(code + ": ", 0) == 0) return line.substr(code.size() + 2);
  }
  return "";
}

std::set<std::string> Pcrs(const Verdict& v, const std::string& code) {
  std::set<std::string> out;
  for (const Alarm& a : v.alarms) {
    if (a.code == code) out.insert(a.evidence.at("bank") + ":" + a.evidence.at("pcr"));
  }
  return out;
}

// "cannot be established" and what the detail must say.
void RequireUnestablished(const Verdict& v, const std::string& detail) {
  const Alarm& a = First(v, alarm::kSecureBootDisabled);
  BOOST_TEST(a.message.find("cannot be established") != std::string::npos, a.message);
  BOOST_TEST(a.evidence.at("detail").find(detail) != std::string::npos, a.evidence.at("detail"));
}

BOOST_AUTO_TEST_SUITE(secure_boot)

BOOST_AUTO_TEST_CASE(the_hand_built_baseline_boot_is_clean) {
  Lab lab;
  const Verdict v = Lab::Judge(lab.Boot(BaselineWith({SecureBootRecord(1)})));
  BOOST_TEST(v.alarms.empty(), Describe(v));
  BOOST_TEST(NotRunReason(v, alarm::kSecureBootDisabled).empty(), Describe(v));
}

// The TPM was extended with SecureBoot = 0; the log shows 1 with the digests
// of 0. The replay matches (the digests are what was extended), the data
// lies: no "enabled" from it.
BOOST_AUTO_TEST_CASE(a_variable_whose_digest_is_not_of_its_data_is_not_trusted) {
  Lab lab;
  Record lie = SecureBootRecord(0);
  lie.data = SecureBootRecord(1).data;
  const Verdict v = Lab::Judge(lab.Boot(BaselineWith({lie})));
  BOOST_TEST((Codes(v) == CodeList{alarm::kEventDigestMismatch, alarm::kSecureBootDisabled}), Describe(v));
  RequireUnestablished(v, "digest of the SecureBoot variable");
  BOOST_TEST(!v.Has(alarm::kPcrReplayMismatch));
}

BOOST_AUTO_TEST_CASE(a_secureboot_variable_of_another_vendor_is_not_the_secureboot_variable) {
  Lab lab;
  // The only "SecureBoot" is shim's: no SecureBoot variable, so not enabled.
  Verdict v = Lab::Judge(lab.Boot(BaselineWith({SecureBootRecord(1, kShimLock)})));
  BOOST_TEST((Codes(v) == CodeList{alarm::kSecureBootDisabled}), Describe(v));
  BOOST_TEST(First(v, alarm::kSecureBootDisabled).message == "Host Secure Boot was disabled");
  BOOST_TEST(First(v, alarm::kSecureBootDisabled).evidence.at("detail").find("no SecureBoot variable") !=
             std::string::npos);
  // Beside the global one it is neither a second SecureBoot nor its value.
  v = Lab::Judge(lab.Boot(BaselineWith({SecureBootRecord(0, kShimLock), SecureBootRecord(1)})));
  BOOST_TEST(v.alarms.empty(), Describe(v));
  v = Lab::Judge(lab.Boot(BaselineWith({SecureBootRecord(0), SecureBootRecord(1, kShimLock)})));
  BOOST_TEST((Codes(v) == CodeList{alarm::kSecureBootDisabled}), Describe(v));
  BOOST_TEST(First(v, alarm::kSecureBootDisabled).evidence.at("actual") == "00");
}

BOOST_AUTO_TEST_CASE(only_the_value_1_is_enabled) {
  Lab lab;
  Verdict v = Lab::Judge(lab.Boot(BaselineWith({SecureBootRecord(2)})));
  BOOST_TEST((Codes(v) == CodeList{alarm::kSecureBootDisabled}), Describe(v));
  BOOST_TEST(First(v, alarm::kSecureBootDisabled).message == "Host Secure Boot was disabled");
  BOOST_TEST(First(v, alarm::kSecureBootDisabled).evidence.at("actual") == "02");
  // Two bytes, even 01 00: not the one-byte variable (go-attestation: an error).
  const Bytes two = Variable(kGlobalVariable, "SecureBoot", {1, 0});
  v = Lab::Judge(lab.Boot(BaselineWith({{7, ev::kEfiVariableDriverConfig, two, DigestsOf(two)}})));
  BOOST_TEST((Codes(v) == CodeList{alarm::kSecureBootDisabled}), Describe(v));
  RequireUnestablished(v, "holds 2 bytes, not 1");
}

BOOST_AUTO_TEST_CASE(no_secureboot_variable_is_not_enabled) {
  Lab lab;
  const Verdict v = Lab::Judge(lab.Boot(BaselineWith({})));
  BOOST_TEST((Codes(v) == CodeList{alarm::kSecureBootDisabled}), Describe(v));
  BOOST_TEST(First(v, alarm::kSecureBootDisabled).message == "Host Secure Boot was disabled");
}

// go-attestation: "duplicate EFI variable" is an error, whichever comes first.
BOOST_AUTO_TEST_CASE(a_second_secureboot_variable_leaves_the_state_unknown) {
  Lab lab;
  for (uint8_t second : {0, 1}) {
    BOOST_TEST_CONTEXT("1 then " << int(second)) {
      const Verdict v = Lab::Judge(lab.Boot(BaselineWith({SecureBootRecord(1), SecureBootRecord(second)})));
      BOOST_TEST((Codes(v) == CodeList{alarm::kSecureBootDisabled}), Describe(v));
      RequireUnestablished(v, "a second SecureBoot variable");
    }
  }
}

// A variable measured after PCR 7's separator was set after the firmware
// handed over: go-attestation errors, so no "enabled" from it.
BOOST_AUTO_TEST_CASE(a_secureboot_variable_after_the_separator_is_not_accepted) {
  Lab lab;
  std::vector<Record> records = BaselineWith({});
  auto separator = Find(records, 7, ev::kSeparator);
  records.insert(separator + 1, SecureBootRecord(1));
  const Verdict v = Lab::Judge(lab.Boot(records));
  BOOST_TEST((Codes(v) == CodeList{alarm::kSecureBootDisabled}), Describe(v));
  RequireUnestablished(v, "follows PCR 7's separator");
}

// A log that does not replay is not read (go-attestation's EventLog.Verify
// returns no events): Secure Boot is not judged, the replay alarm says why.
BOOST_AUTO_TEST_CASE(a_log_that_does_not_replay_is_not_judged) {
  Lab lab;
  // Secure Boot off in the log, and an unlogged extend of PCR 0.
  std::vector<Record> records = BaselineWith({SecureBootRecord(0)});
  Record unlogged{0, ev::kPostCode, Bytes{'x'}, DigestsOf(AsBytes("unlogged")), false};
  records.insert(records.begin(), unlogged);
  Verdict v = Lab::Judge(lab.Boot(records));
  BOOST_TEST((Codes(v) == CodeList{alarm::kPcrReplayMismatch, alarm::kPcrReplayMismatch}), Describe(v));
  BOOST_TEST(!v.Has(alarm::kSecureBootDisabled), Describe(v));
  BOOST_TEST(NotRunReason(v, alarm::kSecureBootDisabled).find("does not replay") != std::string::npos, Describe(v));

  // A log with only a SHA-384 bank, which this TPM does not allocate: the
  // replay compares nothing, so Secure Boot (off in the log) is not judged.
  v = Lab::Judge(lab.Boot(BaselineWith({SecureBootRecord(0)}), {HashAlg::kSha384}));
  BOOST_TEST(!v.Has(alarm::kSecureBootDisabled), Describe(v));
  BOOST_TEST(!NotRunReason(v, alarm::kSecureBootDisabled).empty(), Describe(v));
  BOOST_TEST(!NotRunReason(v, alarm::kPcrReplayMismatch).empty(), Describe(v));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(replay_scope)

DoctorOptions WithLog(const Lab& lab) {
  DoctorOptions o;
  o.eventlog = WriteEventLog(lab.log);
  return o;
}

// IMA extends PCR 10 after boot; its own log accounts for it. Keylime never
// compares PCR 10 with the firmware log, nor does tpmlab anywhere.
BOOST_AUTO_TEST_CASE(an_ima_extended_pcr10_raises_nothing) {
  Lab lab;
  const Snapshot booted = lab.Boot(BaselineWith({SecureBootRecord(1)}));
  lab.ExtendUnlogged(10, "ima: boot_aggregate");
  lab.ExtendUnlogged(10, "ima: /usr/bin/bash");
  const Snapshot after = lab.Snap();
  BOOST_TEST(after.pcrs.at(HashAlg::kSha256)[10] != booted.pcrs.at(HashAlg::kSha256)[10]);

  const Verdict v = Lab::Judge(after);
  BOOST_TEST(v.alarms.empty(), Describe(v));

  const auto items = RunDoctor(lab.dut.tpm(), WithLog(lab));
  const DoctorItem* replay = FindDoctorItem(items, doctor::kEventlog);
  BOOST_REQUIRE(replay != nullptr);
  BOOST_TEST((replay->status == DoctorStatus::kOk), replay->detail);

  const Drift d = DiffSnapshots(booted, after);
  BOOST_TEST((d.pcrs == std::map<HashAlg, std::vector<int>>{{HashAlg::kSha1, {10}}, {HashAlg::kSha256, {10}}}),
             DriftToJson(d).dump());
  for (const Cause& c : d.causes) BOOST_TEST(c.code != drift::kUnexplainedPcrChange, DriftToJson(d).dump());
}

// PCR 11 is a measured-boot PCR (Keylime's MEASUREDBOOT_PCRS): with no event
// in the log it must be at its reset value. (The baseline model logs ESXi
// boot modules on PCR 11; this boot leaves them out, so the log never
// extends PCR 11.)
BOOST_AUTO_TEST_CASE(an_unlogged_extend_of_pcr11_is_a_replay_mismatch) {
  Lab lab;
  std::vector<Record> records = BaselineWith({SecureBootRecord(1)});
  std::erase_if(records, [](const Record& r) { return r.pcr == 11; });
  const Snapshot booted = lab.Boot(records);
  BOOST_TEST(Lab::Judge(booted).alarms.empty(), Describe(Lab::Judge(booted)));
  lab.ExtendUnlogged(11, "systemd-pcrphase: enter-initrd");
  const Snapshot after = lab.Snap();

  const Verdict v = Lab::Judge(after);
  BOOST_TEST((Codes(v) == CodeList{alarm::kPcrReplayMismatch, alarm::kPcrReplayMismatch}), Describe(v));
  BOOST_TEST((Pcrs(v, alarm::kPcrReplayMismatch) == std::set<std::string>{"sha1:11", "sha256:11"}), Describe(v));

  const auto items = RunDoctor(lab.dut.tpm(), WithLog(lab));
  const DoctorItem* replay = FindDoctorItem(items, doctor::kEventlog);
  BOOST_REQUIRE(replay != nullptr);
  BOOST_TEST((replay->status == DoctorStatus::kFail), replay->detail);
  BOOST_TEST(replay->detail.find("sha256 PCRs 11") != std::string::npos, replay->detail);

  const Drift d = DiffSnapshots(booted, after);
  bool unexplained = false;
  for (const Cause& c : d.causes) unexplained |= c.code == drift::kUnexplainedPcrChange && c.pcr == 11;
  BOOST_TEST(unexplained, DriftToJson(d).dump());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace tpmlab::testing
