// The verifier (harness/verify.h) on snapshots this test builds by hand: an
// OpenSSL AK signs a TPMS_ATTEST quote over PCR values that follow from a
// small event log, so every input the verifier reads can be changed on its
// own. A clean snapshot raises no alarm; each alarm code the verifier
// computes is provoked by changing one thing, and raises that alarm and no
// other. Then the two real quotes of the shared fixtures, when present.
#define BOOST_TEST_MODULE verify
#include <boost/test/unit_test.hpp>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "harness/attest.h"
#include "harness/enrollment.h"
#include "harness/eventlog.h"
#include "harness/replay.h"
#include "harness/tpm_types.h"
#include "harness/verify.h"
#include "needs.h"
#include "test_certificates.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;

constexpr uint16_t kAlgRsassa = 0x0014;
constexpr uint16_t kAlgEcdsa = 0x0018;
constexpr uint16_t kAlgSha1 = 0x0004;
constexpr uint16_t kAlgSha256 = 0x000B;
constexpr uint16_t kAlgRsapss = 0x0016;
constexpr uint16_t kAlgNull = 0x0010;

// ---------------------------------------------------------------------------
// Keys and signatures

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// The AK the DUT is enrolled with, and another one (generated once per run).
EVP_PKEY* RsaAk() {
  static Pkey key(EVP_RSA_gen(2048));
  BOOST_REQUIRE(key != nullptr);
  return key.get();
}
EVP_PKEY* EccAk() {
  static Pkey key(EVP_EC_gen("P-256"));
  BOOST_REQUIRE(key != nullptr);
  return key.get();
}

Bytes SubjectPublicKeyInfo(EVP_PKEY* key) {
  const int size = i2d_PUBKEY(key, nullptr);
  BOOST_REQUIRE(size > 0);
  Bytes der(static_cast<size_t>(size));
  unsigned char* out = der.data();
  BOOST_REQUIRE(i2d_PUBKEY(key, &out) == size);
  return der;
}

Bytes Digest(HashAlg alg, ByteView data) {
  auto h = Hash(alg, data);
  BOOST_REQUIRE_MESSAGE(h.ok(), h.status().ToString());
  return *h;
}

// A marshalled TPMT_SIGNATURE over `message` with SHA-256 (or `hash`): RSASSA
// (or RSA-PSS with `pss`) for an RSA key, ECDSA (r and s as two TPM2Bs) for
// an EC key.
Bytes TpmSignature(EVP_PKEY* key, ByteView message, uint16_t hash = kAlgSha256, bool pss = false) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  BOOST_REQUIRE(ctx != nullptr);
  size_t size = 0;
  EVP_PKEY_CTX* pctx = nullptr;
  BOOST_REQUIRE(EVP_DigestSignInit(ctx, &pctx, hash == kAlgSha1 ? EVP_sha1() : EVP_sha256(), nullptr, key) == 1);
  if (pss) BOOST_REQUIRE(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1);
  BOOST_REQUIRE(EVP_DigestSign(ctx, nullptr, &size, message.data(), message.size()) == 1);
  Bytes sig(size);
  BOOST_REQUIRE(EVP_DigestSign(ctx, sig.data(), &size, message.data(), message.size()) == 1);
  sig.resize(size);
  EVP_MD_CTX_free(ctx);
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
    return ByteWriter().U16(pss ? kAlgRsapss : kAlgRsassa).U16(hash).Sized16(sig).Take();
  }
  const unsigned char* in = sig.data();
  ECDSA_SIG* pair = d2i_ECDSA_SIG(nullptr, &in, static_cast<long>(sig.size()));
  BOOST_REQUIRE(pair != nullptr);
  Bytes r(32), s(32);
  BOOST_REQUIRE(BN_bn2binpad(ECDSA_SIG_get0_r(pair), r.data(), 32) == 32);
  BOOST_REQUIRE(BN_bn2binpad(ECDSA_SIG_get0_s(pair), s.data(), 32) == 32);
  ECDSA_SIG_free(pair);
  return ByteWriter().U16(kAlgEcdsa).U16(hash).Sized16(r).Sized16(s).Take();
}

// A stand-in for a TPM key: its name is nameAlg (sha256) || H(its DER), its
// qualified name nameAlg || H(endorsement hierarchy handle || name).
KeyInfo KeyOf(EVP_PKEY* key, uint32_t handle) {
  KeyInfo k;
  k.handle = handle;
  k.public_der = SubjectPublicKeyInfo(key);
  k.name = ByteWriter().U16(kAlgSha256).Append(Digest(HashAlg::kSha256, k.public_der)).Take();
  k.qualified_name =
      ByteWriter().U16(kAlgSha256).Append(Digest(HashAlg::kSha256, ByteWriter().U32(0x4000000B).Append(k.name).Take())).Take();
  k.type = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? KeyType::kRsa2048 : KeyType::kEccP256;
  return k;
}

// ---------------------------------------------------------------------------
// The constructed boot: events the firmware measures (and logs)

struct Measurement {
  uint32_t pcr = 0;
  uint32_t type = 0;
  Bytes data;      // the event data as logged
  Bytes measured;  // what the digest is the hash of (usually `data`)
  bool logged = true;  // false: extended into the TPM, missing from the log
};

Measurement Measure(uint32_t pcr, uint32_t type, ByteView data) {
  return {pcr, type, Bytes(data.begin(), data.end()), Bytes(data.begin(), data.end())};
}

Bytes Le64(uint64_t v) {
  Bytes out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return out;
}

Bytes Utf16(std::string_view ascii) {
  Bytes out;
  for (char c : ascii) {
    out.push_back(static_cast<uint8_t>(c));
    out.push_back(0);
  }
  return out;
}

// UEFI_VARIABLE_DATA for EFI_GLOBAL_VARIABLE SecureBoot = value: the GUID
// 8BE4DF61-93CA-11D2-AA0D-00E098032B8C in EFI byte order (u32, u16, u16
// little-endian, then 8 bytes), name length 10 (CHAR16), data length 1.
Bytes SecureBootVariable(uint8_t value) {
  Bytes d = {0x61, 0xDF, 0xE4, 0x8B, 0xCA, 0x93, 0xD2, 0x11, 0xAA, 0x0D, 0x00, 0xE0, 0x98, 0x03, 0x2B, 0x8C};
  const Bytes name_length = Le64(10), data_length = Le64(1), name = Utf16("SecureBoot");
  d.insert(d.end(), name_length.begin(), name_length.end());
  d.insert(d.end(), data_length.begin(), data_length.end());
  d.insert(d.end(), name.begin(), name.end());
  d.push_back(value);
  return d;
}

const Bytes kSeparatorData = {0, 0, 0, 0};
const std::string kCallingBootOption = "Calling EFI Application from Boot Option";

// A small UEFI boot: S-CRTM version and a firmware volume on PCR0, the
// SecureBoot variable on PCR7, the boot-option action on PCR4, separators on
// 0-7, and a GRUB command on PCR8 (so one PCR above 7 is the log's as well).
std::vector<Measurement> BootEvents(uint8_t secure_boot = 1) {
  std::vector<Measurement> events;
  Bytes version = Utf16("1.00");
  version.push_back(0);
  version.push_back(0);
  events.push_back(Measure(0, ev::kSCrtmVersion, version));
  // UEFI_PLATFORM_FIRMWARE_BLOB {base, length}; the digest is of the volume.
  Bytes blob = Le64(0xFFC00000);
  const Bytes length = Le64(0x00400000);
  blob.insert(blob.end(), length.begin(), length.end());
  const ByteView volume = AsBytes("the firmware volume");
  events.push_back({0, ev::kEfiPlatformFirmwareBlob, blob, Bytes(volume.begin(), volume.end())});
  events.push_back(Measure(7, ev::kEfiVariableDriverConfig, SecureBootVariable(secure_boot)));
  events.push_back(Measure(4, ev::kEfiAction, AsBytes(kCallingBootOption)));
  for (uint32_t pcr = 0; pcr < 8; ++pcr) events.push_back(Measure(pcr, ev::kSeparator, kSeparatorData));
  const std::string grub("grub_cmd: linux /vmlinuz root=/dev/sda1\0", 40);
  events.push_back(Measure(8, ev::kIpl, AsBytes(grub)));
  return events;
}

// An extend the TPM received that is not in the log (or an IMA measurement,
// which lives in another log).
struct Extend {
  int pcr = 0;
  std::string measured;
};

// Wall and TPM time of the snapshot under test; the previous one is a minute earlier.
constexpr int64_t kWallNow = 1'717'171'717'000;
constexpr uint64_t kClockNow = 86'400'000;
constexpr uint64_t kFirmware = 0x2024012500120000ULL;
const Bytes kEkName = ByteWriter().U16(kAlgSha256).Append(Bytes(32, 0xE1)).Take();
// The DUT's EK and the certificate a manufacturer CA issued for it.
EVP_PKEY* EkKey() {
  static Pkey key(EVP_RSA_gen(2048));
  BOOST_REQUIRE(key != nullptr);
  return key.get();
}
const testing::TestCa& ManufacturerCa() {
  static const testing::TestCa ca = testing::MakeTestCa("tpmlab test EK root");
  return ca;
}
const Bytes& EkCertificate() {
  static const Bytes cert = testing::IssueEkCertificate(ManufacturerCa(), testing::PublicKeyDer(EkKey()));
  return cert;
}

// Everything the constructed DUT is: what it measured, its clock, its keys.
struct Board {
  std::vector<HashAlg> banks = {HashAlg::kSha1, HashAlg::kSha256};
  HashAlg quote_bank = HashAlg::kSha256;
  std::vector<Measurement> events = BootEvents();
  std::vector<Extend> unlogged = {{10, "ima: boot_aggregate"}};
  // Extends that land after the PCRs were read and before the quote.
  std::vector<Extend> after_read;
  ClockInfo clock{kClockNow, 3, 1, true};
  int64_t wall_ms = kWallNow;
  uint64_t firmware = kFirmware;
  Bytes nonce = Bytes(32, 0x4E);
  EVP_PKEY* ak = RsaAk();
  // How the quote is made: the PCRs it selects in the quote bank, the
  // signer it names (empty: the AK's qualified name), the signing hash.
  uint32_t quoted_pcrs = 0xFFFFFF;
  Bytes qualified_signer;
  uint16_t signature_hash = kAlgSha256;
  bool pss = false;
};

// The same DUT a minute earlier, in the same power session.
Board PreviousBoard() {
  Board b;
  b.clock.clock_ms = kClockNow - 60'000;
  b.wall_ms = kWallNow - 60'000;
  b.nonce = Bytes(32, 0x50);
  return b;
}

void ExtendInto(PcrValues& pcrs, const std::vector<HashAlg>& banks, uint32_t pcr, ByteView measured) {
  for (HashAlg bank : banks) {
    Bytes joined = pcrs[bank][pcr];
    const Bytes digest = Digest(bank, measured);
    joined.insert(joined.end(), digest.begin(), digest.end());
    pcrs[bank][pcr] = Digest(bank, joined);
  }
}

// TPMS_ATTEST of a quote over the board's PCRs (0-23) of the quote bank,
// digest with the signing scheme's hash.
// Quotes `quoted_pcrs` of every bank, the requested one first (as
// TakeSnapshot does).
Bytes QuoteAttest(const Board& b, const PcrValues& quoted) {
  std::vector<HashAlg> banks = {b.quote_bank};
  for (HashAlg bank : b.banks) {
    if (bank != b.quote_bank) banks.push_back(bank);
  }
  Bytes joined;
  for (HashAlg bank : banks) {
    for (int i = 0; i < kPcrCount; ++i) {
      if (!(b.quoted_pcrs & (1u << i))) continue;
      const Bytes& v = quoted.at(bank)[i];
      joined.insert(joined.end(), v.begin(), v.end());
    }
  }
  const Bytes signer = b.qualified_signer.empty() ? KeyOf(b.ak, kAkHandle).qualified_name : b.qualified_signer;
  const HashAlg digest_hash = b.signature_hash == kAlgSha1 ? HashAlg::kSha1 : HashAlg::kSha256;
  ByteWriter w;
  w.U32(kTpmGeneratedValue).U16(kTpmStAttestQuote).Sized16(signer).Sized16(b.nonce);
  w.U64(b.clock.clock_ms).U32(b.clock.reset_count).U32(b.clock.restart_count).U8(b.clock.safe ? 1 : 0);
  w.U64(b.firmware);
  w.U32(static_cast<uint32_t>(banks.size()));
  for (HashAlg bank : banks) {
    w.U16(static_cast<uint16_t>(bank)).U8(3);
    w.U8(static_cast<uint8_t>(b.quoted_pcrs)).U8(static_cast<uint8_t>(b.quoted_pcrs >> 8)).U8(static_cast<uint8_t>(b.quoted_pcrs >> 16));
  }
  w.Sized16(Digest(digest_hash, joined));
  return w.Take();
}

// What the harness checks when a snapshot is taken or read back.
void Recheck(Snapshot& s) {
  s.quote_check = VerifyQuote(s.quote, s.ak.public_der, s.nonce, s.pcrs, {s.quote_bank, s.quote_pcrs});
}

// A snapshot as TakeSnapshot would make it of this board (with its log).
Snapshot Take(const Board& b) {
  Snapshot s;
  s.taken_at = "2024-05-31T16:08:37.000Z";
  s.taken_at_ms = b.wall_ms;
  s.banks = b.banks;
  for (HashAlg bank : b.banks) {
    for (int i = 0; i < kPcrCount; ++i) s.pcrs[bank][i] = PcrResetValue(bank, i);
  }
  EventLog log = EventLog::CryptoAgile(b.banks);
  for (const Measurement& m : b.events) {
    if (m.type != ev::kNoAction) ExtendInto(s.pcrs, b.banks, m.pcr, m.measured);
    if (!m.logged) continue;
    std::vector<std::pair<uint16_t, Bytes>> digests;
    for (HashAlg bank : b.banks) digests.emplace_back(static_cast<uint16_t>(bank), Digest(bank, m.measured));
    log.Append(m.pcr, m.type, digests, m.data);
  }
  for (const Extend& x : b.unlogged) ExtendInto(s.pcrs, b.banks, x.pcr, AsBytes(x.measured));
  s.eventlog = WriteEventLog(log);
  s.eventlog_events = log.size();

  PcrValues quoted = s.pcrs;
  for (const Extend& x : b.after_read) ExtendInto(quoted, b.banks, x.pcr, AsBytes(x.measured));
  s.quote_bank = b.quote_bank;
  s.quote_pcrs = 0xFFFFFF;
  s.nonce = b.nonce;
  s.ak = KeyOf(b.ak, kAkHandle);
  s.ek.handle = kEkHandle;
  s.ek.name = kEkName;
  s.ek.public_der = testing::PublicKeyDer(EkKey());
  s.ek_certificate_index = kEkCertRsaIndex;
  s.srk.handle = kSrkHandle;
  s.srk.name = ByteWriter().U16(kAlgSha256).Append(Bytes(32, 0x51)).Take();
  s.ek_certificate = EkCertificate();
  s.properties.manufacturer = "IBM ";
  s.properties.firmware_version = b.firmware;
  s.quote.attest = QuoteAttest(b, quoted);
  s.quote.signature = TpmSignature(b.ak, s.quote.attest, b.signature_hash, b.pss);
  Recheck(s);
  return s;
}

const Snapshot& Previous() {
  static const Snapshot s = Take(PreviousBoard());
  return s;
}
const Enrollment& Enrolled() {
  static const Enrollment e = EnrollFromSnapshot(Previous(), "constructed");
  return e;
}

// Judged as a verifier that enrolled the DUT and holds its last quote.
// A verifier that trusts the manufacturer CA the constructed EK certificate chains to.
const VerifyOptions& WithRoots() {
  static const VerifyOptions options = [] {
    VerifyOptions o;
    o.ek_roots = {ManufacturerCa().der};
    return o;
  }();
  return options;
}

Verdict Judge(const Snapshot& now) { return Verify(now, &Previous(), &Enrolled(), WithRoots()); }
Verdict Judge(const Snapshot& now, const Enrollment& enrollment) {
  return Verify(now, &Previous(), &enrollment, WithRoots());
}

std::string Describe(const Verdict& v) { return VerdictToJson(v).dump(); }

std::multiset<std::string> Codes(const Verdict& v) {
  std::multiset<std::string> codes;
  for (const Alarm& a : v.alarms) codes.insert(a.code);
  return codes;
}

// `code` raised `count` times and nothing else.
void RequireOnly(const Verdict& v, const std::string& code, size_t count = 1) {
  BOOST_TEST(v.Count(code) == count, code << ": " << Describe(v));
  BOOST_TEST(v.alarms.size() == count, "only " << code << ": " << Describe(v));
}

bool NotRun(const Verdict& v, const std::string& code) {
  return std::any_of(v.not_run.begin(), v.not_run.end(),
                     [&](const std::string& line) { return line.rfind(code + ": ", 0) == 0; });
}

// The alarms with this code, each as "bank:pcr".
std::set<std::string> Pcrs(const Verdict& v, const std::string& code) {
  std::set<std::string> out;
  for (const Alarm& a : v.alarms) {
    if (a.code == code) out.insert(a.evidence.at("bank") + ":" + a.evidence.at("pcr"));
  }
  return out;
}

template <typename T>
T Must(Result<T> r, const char* what) {
  BOOST_REQUIRE_MESSAGE(r.ok(), what << ": " << r.status().ToString());
  return std::move(r).value();
}

const Alarm& First(const Verdict& v, const std::string& code) {
  auto it = std::find_if(v.alarms.begin(), v.alarms.end(), [&](const Alarm& a) { return a.code == code; });
  BOOST_REQUIRE_MESSAGE(it != v.alarms.end(), "no " << code << ": " << Describe(v));
  return *it;
}

// ---------------------------------------------------------------------------
// One provocation per alarm code the verifier computes: the one change, and
// the verdict on it. Each test case below runs its own and looks closer.

Verdict SignatureByteFlipped() {
  Snapshot s = Take(Board{});
  s.quote.signature[s.quote.signature.size() / 2] ^= 0x01;
  Recheck(s);
  return Judge(s);
}

Verdict NonceByteChanged() {
  Snapshot s = Take(Board{});
  s.nonce[0] ^= 0x01;  // the verifier sent another nonce than the quote echoes
  Recheck(s);
  return Judge(s);
}

// A byte of PCR 10 as read. PCR 10 is outside 0-7 and the log never extends
// it, so the replay leaves it alone; the golden reference would see it too,
// so the DUT is enrolled from this very snapshot (golden = what was read).
Verdict PcrByteChanged() {
  Snapshot s = Take(Board{});
  s.pcrs[HashAlg::kSha256][10][0] ^= 0x01;
  Recheck(s);
  return Judge(s, EnrollFromSnapshot(s, "constructed"));
}

Verdict AttestTruncated() {
  Snapshot s = Take(Board{});
  s.quote.attest.pop_back();
  Recheck(s);
  return Judge(s);
}

// The firmware extended PCR4 with the boot-option action but did not log it:
// the PCRs are those of the clean boot, the log is one event short.
Board UnloggedActionBoard() {
  Board b;
  auto action = std::find_if(b.events.begin(), b.events.end(),
                             [](const Measurement& m) { return m.type == ev::kEfiAction; });
  BOOST_REQUIRE(action != b.events.end());
  action->logged = false;
  return b;
}
Verdict EventMissingFromLog() { return Judge(Take(UnloggedActionBoard())); }

Verdict GarbageLog() {
  Snapshot s = Take(Board{});
  s.eventlog = Bytes(64, 0xA5);
  return Judge(s);
}

// PCR3's separator logs 00000001 but its digests are of 00000000, which is
// what the TPM was extended with: the log still replays.
Board OddSeparatorBoard() {
  Board b;
  for (Measurement& m : b.events) {
    if (m.type == ev::kSeparator && m.pcr == 3) m.data = {0, 0, 0, 1};
  }
  return b;
}
Verdict SeparatorDigestNotOfItsData() { return Judge(Take(OddSeparatorBoard())); }

// The boot-option action logged with a type the TCG tables do not name; its
// digest (and so every PCR) is unchanged.
constexpr uint32_t kUnknownType = 0x0000ABCD;
Board UnknownTypeBoard() {
  Board b;
  for (Measurement& m : b.events) {
    if (m.type == ev::kEfiAction) m.type = kUnknownType;
  }
  return b;
}
Verdict UnknownEventType() { return Judge(Take(UnknownTypeBoard())); }

// Only the SHA-1 bank allocated: PCRs, log and quote all SHA-1 (the quote
// still signed with SHA-256). The enrolled SHA-1 golden values still match.
Board Sha1OnlyBoard() {
  Board b;
  b.banks = {HashAlg::kSha1};
  b.quote_bank = HashAlg::kSha1;
  return b;
}
Verdict Sha256BankMissing() { return Judge(Take(Sha1OnlyBoard())); }

// Secure Boot off moves PCR7, so the DUT is enrolled as it boots now; against
// the Secure Boot enrollment see secure_boot_disabled below.
Verdict SecureBootOff() {
  Board b;
  b.events = BootEvents(0);
  const Snapshot s = Take(b);
  return Judge(s, EnrollFromSnapshot(s, "constructed"));
}

Verdict EkMissing() {
  Snapshot s = Take(Board{});
  s.ek = KeyInfo{};
  s.ek_error = "TPM2_CreatePrimary: TPM_RC_HIERARCHY";
  return Judge(s);
}

Verdict EkCertificateMissing() {
  Snapshot s = Take(Board{});
  s.ek_certificate.reset();
  return Judge(s);
}

// An EK certificate the manufacturer issued for another key.
Verdict EkCertificateOfAnotherKey() {
  Snapshot s = Take(Board{});
  s.ek_certificate = testing::IssueEkCertificate(ManufacturerCa(), testing::PublicKeyDer(RsaAk()));
  return Judge(s);
}

Verdict EkChanged() {
  Snapshot s = Take(Board{});
  s.ek.name = ByteWriter().U16(kAlgSha256).Append(Bytes(32, 0xE9)).Take();
  s.ek.public_der = Bytes(270, 0xE9);
  return Judge(s);
}

// A quote the enrolled AK's key signed that names another signer: a key
// outside a TPM signing (a TPM fills qualifiedSigner itself), or the same key
// loaded under another parent.
const Bytes kOtherSigner = ByteWriter().U16(kAlgSha256).Append(Bytes(32, 0x5A)).Take();
Verdict AkUnknown() {
  Board b;
  b.qualified_signer = kOtherSigner;
  return Judge(Take(b));
}

// The AK could not be made (or the TPM gave no quote): no quote at all. The
// evidence still names the enrolled AK, so only the quote is missing.
Snapshot WithoutQuote(Snapshot s, const std::string& why) {
  s.quote = QuoteBlob{};
  s.quote_check = QuoteCheck{};
  s.quote_check.failure = why;
  return s;
}
Verdict QuoteMissing() { return Judge(WithoutQuote(Take(Board{}), "no quote: TPM2_Quote: TPM_RC_FAILURE")); }

// A TPM2_Clear: resetCount, restartCount and the clock back to zero, safe YES.
Verdict CountersWentDown() {
  Board b;
  b.clock = ClockInfo{5'000, 0, 0, true};
  return Judge(Take(b));
}

Verdict ClockNotSafe() {
  Board b;
  b.clock.safe = false;
  return Judge(Take(b));
}

// Same counters, the clock 500 ms behind the previous quote's while wall time
// moved on 200 ms: back, but within the skew tolerance.
Verdict ClockWentBack() {
  Board b;
  b.clock.clock_ms = Previous().clock().clock_ms - 500;
  b.wall_ms = Previous().taken_at_ms + 200;
  return Judge(Take(b));
}

// Same counters; the TPM clock advanced 10 s while wall time advanced 1 s.
Verdict ClockRanAhead() {
  Board b;
  b.clock.clock_ms = Previous().clock().clock_ms + 10'000;
  b.wall_ms = Previous().taken_at_ms + 1'000;
  return Judge(Take(b));
}

Verdict FirmwareChanged() {
  Board b;
  b.firmware = kFirmware + 0x10000;
  return Judge(Take(b));
}

Verdict OwnerHierarchyDisabled() {
  Snapshot s = Take(Board{});
  s.properties.owner_enabled = false;
  return Judge(s);
}

// The golden reference differs in PCR 2 (sha256).
Verdict GoldenDiffers() {
  Enrollment e = Enrolled();
  e.golden_pcrs[HashAlg::kSha256][2][5] ^= 0x40;
  return Judge(Take(Board{}), e);
}

using Provocation = std::function<Verdict()>;
const std::map<std::string, Provocation>& Provocations() {
  static const std::map<std::string, Provocation> all = {
      {alarm::kQuoteSignatureInvalid, SignatureByteFlipped},
      {alarm::kQuoteNonceMismatch, NonceByteChanged},
      {alarm::kQuotePcrDigestMismatch, PcrByteChanged},
      {alarm::kQuoteMalformed, AttestTruncated},
      {alarm::kQuoteMissing, QuoteMissing},
      {alarm::kPcrReplayMismatch, EventMissingFromLog},
      {alarm::kEventlogMalformed, GarbageLog},
      {alarm::kEventDigestMismatch, SeparatorDigestNotOfItsData},
      {alarm::kUnknownEventType, UnknownEventType},
      {alarm::kSha256BankMissing, Sha256BankMissing},
      {alarm::kSecureBootDisabled, SecureBootOff},
      {alarm::kEkMissing, EkMissing},
      {alarm::kEkCertMissing, EkCertificateMissing},
      {alarm::kEkCertInvalid, EkCertificateOfAnotherKey},
      {alarm::kEkChanged, EkChanged},
      {alarm::kAkUnknown, AkUnknown},
      {alarm::kCounterRollback, CountersWentDown},
      {alarm::kClockNotSafe, ClockNotSafe},
      {alarm::kClockNotMonotonic, ClockWentBack},
      {alarm::kClockSkew, ClockRanAhead},
      {alarm::kTpmFirmwareChanged, FirmwareChanged},
      {alarm::kHierarchyDisabled, OwnerHierarchyDisabled},
      {alarm::kPcrPolicyMismatch, GoldenDiffers},
  };
  return all;
}

Bytes ReadFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(clean)

BOOST_AUTO_TEST_CASE(the_constructed_snapshot_is_what_it_claims) {
  const Snapshot s = Take(Board{});
  BOOST_TEST(s.quote_check.verified(), s.quote_check.failure);
  BOOST_TEST(Previous().quote_check.verified(), Previous().quote_check.failure);
  auto log = ParseEventLog(*s.eventlog);
  BOOST_REQUIRE_MESSAGE(log.ok(), log.status().ToString());
  BOOST_TEST(log->size() == BootEvents().size());
  // PCR 10 holds an IMA-style value the firmware log knows nothing of.
  BOOST_TEST(s.pcrs.at(HashAlg::kSha256)[10] != PcrResetValue(HashAlg::kSha256, 10));
  BOOST_TEST(s.pcrs.at(HashAlg::kSha256)[8] != PcrResetValue(HashAlg::kSha256, 8));
}

BOOST_AUTO_TEST_CASE(a_clean_boot_raises_no_alarm_and_runs_every_check) {
  const Verdict v = Judge(Take(Board{}));
  BOOST_TEST(v.alarms.empty(), Describe(v));
  // The quote covers every bank, so every check ran.
  BOOST_TEST(v.not_run.empty(), Describe(v));
}

BOOST_AUTO_TEST_CASE(a_clean_boot_is_clean_across_a_reboot_and_a_replay_of_itself_is_not) {
  const Snapshot now = Take(Board{});
  // Presented again as the next quote, it carries the previous quote's nonce.
  const Verdict replay = Verify(now, &now, &Enrolled(), WithRoots());
  RequireOnly(replay, alarm::kQuoteNonceMismatch);
  BOOST_TEST(First(replay, alarm::kQuoteNonceMismatch).evidence.at("replayed") == "true");
  // The next boot: resetCount up, the clock on; the same log and PCRs.
  Board next;
  next.clock = ClockInfo{kClockNow + 120'000, 4, 0, true};
  next.wall_ms = kWallNow + 125'000;
  next.nonce = Bytes(32, 0x99);
  const Verdict v = Verify(Take(next), &now, &Enrolled(), WithRoots());
  BOOST_TEST(v.alarms.empty(), Describe(v));
  BOOST_TEST(v.not_run.size() == 1u, Describe(v));
  // Across a reset the clock is not compared with wall time.
  BOOST_TEST(NotRun(v, alarm::kClockSkew), Describe(v));
}

BOOST_AUTO_TEST_CASE(clock_drift_within_the_tolerance_is_no_skew) {
  Board b;
  b.clock.clock_ms = Previous().clock().clock_ms + 1'500;  // 500 ms ahead of wall time
  b.wall_ms = Previous().taken_at_ms + 1'000;
  Verdict v = Judge(Take(b));
  BOOST_TEST(v.alarms.empty(), Describe(v));

  // The slack can be tightened.
  VerifyOptions strict;
  strict.clock_skew_slack = std::chrono::milliseconds(100);
  v = Verify(Take(b), &Previous(), &Enrolled(), strict);
  RequireOnly(v, alarm::kClockSkew);
}

BOOST_AUTO_TEST_CASE(pcrs_outside_the_replay_scope_are_not_replayed) {
  // An unlogged extend of PCR 10 (IMA's, in every Board), 16 or 23 is not
  // the firmware log's business; enrolled from this boot, so the golden
  // check agrees.
  Board b;
  b.unlogged.push_back({16, "debug"});
  b.unlogged.push_back({23, "application"});
  Snapshot s = Take(b);
  Verdict v = Judge(s, EnrollFromSnapshot(s, "constructed"));
  BOOST_TEST(v.alarms.empty(), Describe(v));
  // PCR 14 is one of Keylime's measured-boot PCRs (shim's MOK lists): with
  // no event in the log it must be at its reset value.
  b.unlogged.push_back({14, "shim: MokList"});
  s = Take(b);
  v = Judge(s, EnrollFromSnapshot(s, "constructed"));
  RequireOnly(v, alarm::kPcrReplayMismatch, 2);
  BOOST_TEST((Pcrs(v, alarm::kPcrReplayMismatch) == std::set<std::string>{"sha1:14", "sha256:14"}), Describe(v));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(one_alarm_each)

BOOST_AUTO_TEST_CASE(every_computed_code_has_a_provocation_that_raises_it_alone) {
  std::set<std::string> expected(AllAlarmCodes().begin(), AllAlarmCodes().end());
  expected.erase(alarm::kTpmUnreachable);  // made by TpmUnreachable(), not by Verify()
  std::set<std::string> provoked;
  for (const auto& [code, provoke] : Provocations()) provoked.insert(code);
  BOOST_TEST((provoked == expected));

  for (const auto& [code, provoke] : Provocations()) {
    BOOST_TEST_CONTEXT(code) {
      const Verdict v = provoke();
      BOOST_TEST(v.Has(code), Describe(v));
      const std::multiset<std::string> codes = Codes(v);
      BOOST_TEST((std::set<std::string>{code} == std::set<std::string>(codes.begin(), codes.end())), Describe(v));
      for (const Alarm& a : v.alarms) {
        BOOST_TEST(!a.message.empty());
        const auto j = AlarmToJson(a);
        BOOST_TEST(j.at("code") == code);
        BOOST_TEST(j.at("severity").get<std::string>() == SeverityName(a.severity));
      }
      // A check that raised cannot at once be listed as not run (but PCRs
      // of a bank the quote does not cover are, beside those it raised for).
      if (code != alarm::kPcrPolicyMismatch) BOOST_TEST(!NotRun(v, code), Describe(v));
    }
  }
}

BOOST_AUTO_TEST_CASE(tpm_unreachable) {
  const Alarm a = TpmUnreachable(Status::Error(Layer::kTransport, "connect: connection refused"));
  BOOST_TEST(a.code == alarm::kTpmUnreachable);
  BOOST_TEST((a.severity == Severity::kError));
  BOOST_TEST(a.message == "TPM 2.0 device detected but a connection cannot be established");
  BOOST_TEST(a.evidence.at("layer") == "transport");
  BOOST_TEST(a.evidence.at("detail") == "connect: connection refused");
  BOOST_TEST(AlarmToJson(a).at("severity") == "error");

  const Alarm timeout = TpmUnreachable(Status::Timeout("no answer in 30000 ms"));
  BOOST_TEST(timeout.code == alarm::kTpmUnreachable);
  BOOST_TEST(timeout.evidence.at("detail").find("30000") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(quote_signature_invalid_from_a_signature_byte) {
  const Verdict v = SignatureByteFlipped();
  RequireOnly(v, alarm::kQuoteSignatureInvalid);
  BOOST_TEST(First(v, alarm::kQuoteSignatureInvalid).evidence.at("ak_name") == ToHex(Take(Board{}).ak.name));
}

BOOST_AUTO_TEST_CASE(quote_signature_invalid_from_an_attest_byte) {
  // Byte 100 is the last of firmwareVersion (magic 4, type 2,
  // qualifiedSigner 2+34, extraData 2+32, clockInfo 17, then 8 bytes): only
  // a verified quote's firmware is judged, so nothing but the signature
  // depends on it. Bytes of qualifiedSigner, the nonce, clock or pcrDigest
  // would fail their own checks as well; see every_attest_byte_breaks_the_quote.
  Snapshot s = Take(Board{});
  s.quote.attest[100] ^= 0x01;
  Recheck(s);
  BOOST_TEST(s.quote_check.parsed);
  RequireOnly(Judge(s), alarm::kQuoteSignatureInvalid);
}

BOOST_AUTO_TEST_CASE(every_attest_byte_breaks_the_quote) {
  // Whatever byte of TPMS_ATTEST changes, the verifier says the quote is
  // either unsigned or unreadable (size fields, magic, type); other alarms
  // may join, as the changed byte may also be a nonce, counter or digest.
  const Snapshot clean = Take(Board{});
  for (size_t i = 0; i < clean.quote.attest.size(); ++i) {
    BOOST_TEST_CONTEXT("attest byte " << i) {
      Snapshot s = clean;
      s.quote.attest[i] ^= 0x01;
      Recheck(s);
      const Verdict v = Judge(s);
      BOOST_TEST((v.Has(alarm::kQuoteSignatureInvalid) || v.Has(alarm::kQuoteMalformed)), Describe(v));
    }
  }
}

BOOST_AUTO_TEST_CASE(quote_nonce_mismatch) {
  const Verdict v = NonceByteChanged();
  RequireOnly(v, alarm::kQuoteNonceMismatch);
  const Alarm& a = First(v, alarm::kQuoteNonceMismatch);
  Bytes sent(32, 0x4E);
  sent[0] ^= 0x01;
  BOOST_TEST(a.evidence.at("expected") == ToHex(sent));
  BOOST_TEST(a.evidence.at("actual") == ToHex(Bytes(32, 0x4E)));

  // The other way round: a quote signed over an old nonce (a replay).
  Board replayed;
  replayed.nonce = Bytes(32, 0x0D);
  Snapshot s = Take(replayed);
  s.nonce = Bytes(32, 0x4E);
  Recheck(s);
  RequireOnly(Judge(s), alarm::kQuoteNonceMismatch);
}

BOOST_AUTO_TEST_CASE(quote_pcr_digest_mismatch) {
  const Verdict v = PcrByteChanged();
  RequireOnly(v, alarm::kQuotePcrDigestMismatch);
  BOOST_TEST(First(v, alarm::kQuotePcrDigestMismatch).evidence.at("bank") == "sha256");

  // Against the original enrollment the changed PCR also leaves the golden
  // reference, but a quote that does not verify vouches for no PCR value:
  // the policy check is listed as not run (go-attestation's rule).
  Snapshot s = Take(Board{});
  s.pcrs[HashAlg::kSha256][10][0] ^= 0x01;
  Recheck(s);
  const Verdict both = Judge(s);
  RequireOnly(both, alarm::kQuotePcrDigestMismatch);
  BOOST_TEST(NotRun(both, alarm::kPcrPolicyMismatch), Describe(both));
  BOOST_TEST(std::count(both.not_run.begin(), both.not_run.end(),
                        "PCR_POLICY_MISMATCH: PCR 0-23 (sha256) not covered by a verified quote") == 1,
             Describe(both));

  // A measurement that lands between the PCR read and the quote: the TPM
  // signed other values than the ones read, which match the golden ones.
  Board race;
  race.after_read = {{10, "ima: a file opened between the read and the quote"}};
  RequireOnly(Judge(Take(race)), alarm::kQuotePcrDigestMismatch);
}

BOOST_AUTO_TEST_CASE(quote_malformed) {
  const Verdict truncated = AttestTruncated();
  RequireOnly(truncated, alarm::kQuoteMalformed);
  BOOST_TEST(!First(truncated, alarm::kQuoteMalformed).evidence.at("detail").empty());
  // Without a readable quote there are no counters to judge: listed, not passed.
  for (const char* c : {alarm::kClockNotSafe, alarm::kCounterRollback, alarm::kClockNotMonotonic, alarm::kClockSkew}) {
    BOOST_TEST(NotRun(truncated, c), c << ": " << Describe(truncated));
  }

  // Another attestation type (TPM_ST_ATTEST_CERTIFY), signed as it is.
  Snapshot s = Take(Board{});
  s.quote.attest[4] = 0x80;
  s.quote.attest[5] = 0x17;
  s.quote.signature = TpmSignature(RsaAk(), s.quote.attest);
  Recheck(s);
  BOOST_TEST(s.quote_check.signature_ok);
  BOOST_TEST(!s.quote_check.type_ok);
  RequireOnly(Judge(s), alarm::kQuoteMalformed);

  // Wrong magic, signed as it is.
  s = Take(Board{});
  s.quote.attest[3] ^= 0x01;
  s.quote.signature = TpmSignature(RsaAk(), s.quote.attest);
  Recheck(s);
  RequireOnly(Judge(s), alarm::kQuoteMalformed);
}

BOOST_AUTO_TEST_CASE(pcr_replay_mismatch) {
  const Verdict v = EventMissingFromLog();
  RequireOnly(v, alarm::kPcrReplayMismatch, 2);
  BOOST_TEST((Pcrs(v, alarm::kPcrReplayMismatch) == std::set<std::string>{"sha1:4", "sha256:4"}));
  // expected: what the log replays to; actual: what the TPM holds.
  const Snapshot s = Take(UnloggedActionBoard());
  for (HashAlg bank : {HashAlg::kSha1, HashAlg::kSha256}) {
    PcrValues replay;
    replay[bank][4] = PcrResetValue(bank, 4);
    ExtendInto(replay, {bank}, 4, kSeparatorData);
    for (const Alarm& a : v.alarms) {
      if (a.evidence.at("bank") != HashAlgName(bank)) continue;
      BOOST_TEST(a.evidence.at("pcr") == "4");
      BOOST_TEST(a.evidence.at("expected") == ToHex(replay[bank][4]));
      BOOST_TEST(a.evidence.at("actual") == ToHex(s.pcrs.at(bank)[4]));
      BOOST_TEST(a.evidence.at("actual") == ToHex(Previous().pcrs.at(bank)[4]));
    }
  }
}

BOOST_AUTO_TEST_CASE(pcr_replay_mismatch_from_an_unlogged_extend) {
  // PCR 0 extended once more without a log entry; enrolled from this boot
  // (the golden check would flag PCR 0 too), only the replay disagrees.
  Board b;
  b.unlogged.push_back({0, "an unlogged firmware measurement"});
  const Snapshot s = Take(b);
  Verdict v = Judge(s, EnrollFromSnapshot(s, "constructed"));
  RequireOnly(v, alarm::kPcrReplayMismatch, 2);
  BOOST_TEST((Pcrs(v, alarm::kPcrReplayMismatch) == std::set<std::string>{"sha1:0", "sha256:0"}));

  // PCR 8 is above 7 but the log extends it: compared as well.
  Board p8;
  p8.unlogged.push_back({8, "grub_cmd: an unlogged command"});
  const Snapshot s8 = Take(p8);
  v = Judge(s8, EnrollFromSnapshot(s8, "constructed"));
  BOOST_TEST((Pcrs(v, alarm::kPcrReplayMismatch) == std::set<std::string>{"sha1:8", "sha256:8"}), Describe(v));
  RequireOnly(v, alarm::kPcrReplayMismatch, 2);
}

BOOST_AUTO_TEST_CASE(eventlog_malformed) {
  Verdict v = GarbageLog();
  RequireOnly(v, alarm::kEventlogMalformed);
  for (const char* c : {alarm::kPcrReplayMismatch, alarm::kEventDigestMismatch, alarm::kUnknownEventType,
                        alarm::kSecureBootDisabled}) {
    BOOST_TEST(NotRun(v, c), c << ": " << Describe(v));
  }

  // A log cut inside its last event.
  Snapshot s = Take(Board{});
  s.eventlog->resize(s.eventlog->size() - 7);
  v = Judge(s);
  RequireOnly(v, alarm::kEventlogMalformed);
  BOOST_TEST(!First(v, alarm::kEventlogMalformed).evidence.at("offset").empty(), Describe(v));
}

BOOST_AUTO_TEST_CASE(event_digest_mismatch) {
  const Verdict v = SeparatorDigestNotOfItsData();
  RequireOnly(v, alarm::kEventDigestMismatch);  // one alarm for the event, both banks in its detail
  const Alarm& a = First(v, alarm::kEventDigestMismatch);
  BOOST_TEST(a.evidence.at("pcr") == "3");
  BOOST_TEST(a.evidence.at("type") == "EV_SEPARATOR");
  BOOST_TEST((a.severity == Severity::kWarning));
  const size_t index = std::stoul(a.evidence.at("event"));
  BOOST_REQUIRE(index < BootEvents().size());
  BOOST_TEST(BootEvents()[index].type == ev::kSeparator);
  BOOST_TEST(BootEvents()[index].pcr == 3u);
}

BOOST_AUTO_TEST_CASE(unknown_event_type) {
  const Verdict v = UnknownEventType();
  RequireOnly(v, alarm::kUnknownEventType);
  const Alarm& a = First(v, alarm::kUnknownEventType);
  BOOST_TEST(a.evidence.at("pcr") == "4");
  BOOST_TEST(a.evidence.at("type") == EventTypeName(kUnknownType));
}

BOOST_AUTO_TEST_CASE(sha256_bank_missing) {
  const Verdict v = Sha256BankMissing();
  RequireOnly(v, alarm::kSha256BankMissing);
  BOOST_TEST(First(v, alarm::kSha256BankMissing).evidence.at("banks") == "sha1");
}

BOOST_AUTO_TEST_CASE(secure_boot_disabled) {
  Verdict v = SecureBootOff();
  RequireOnly(v, alarm::kSecureBootDisabled);
  BOOST_TEST(First(v, alarm::kSecureBootDisabled).message == "Host Secure Boot was disabled");
  BOOST_TEST(First(v, alarm::kSecureBootDisabled).evidence.at("actual") == "00");

  // Against the Secure Boot enrollment PCR7 also leaves the golden reference.
  Board b;
  b.events = BootEvents(0);
  v = Judge(Take(b));
  BOOST_TEST(v.Count(alarm::kSecureBootDisabled) == 1u, Describe(v));
  BOOST_TEST((Pcrs(v, alarm::kPcrPolicyMismatch) == std::set<std::string>{"sha1:7", "sha256:7"}), Describe(v));
  BOOST_TEST(v.alarms.size() == 3u, Describe(v));

  // The variable measured but not logged: the log does not replay (PCR 7),
  // so none of its events is read (go-attestation); Secure Boot is not run.
  b = Board{};
  auto variable = std::find_if(b.events.begin(), b.events.end(),
                               [](const Measurement& m) { return m.type == ev::kEfiVariableDriverConfig; });
  BOOST_REQUIRE(variable != b.events.end());
  variable->logged = false;  // measured into PCR7, not logged
  v = Judge(Take(b));
  BOOST_TEST(NotRun(v, alarm::kSecureBootDisabled), Describe(v));
  BOOST_TEST(!v.Has(alarm::kSecureBootDisabled));
}

BOOST_AUTO_TEST_CASE(ek_missing) {
  const Verdict missing = EkMissing();
  RequireOnly(missing, alarm::kEkMissing);
  BOOST_TEST(First(missing, alarm::kEkMissing).evidence.at("detail").find("TPM_RC_HIERARCHY") != std::string::npos);
  // No name and no error said is missing all the same.
  Snapshot s = Take(Board{});
  s.ek.name.clear();
  const Verdict unnamed = Judge(s);
  BOOST_TEST(unnamed.Has(alarm::kEkMissing), Describe(unnamed));
  // Evidence without an EK, the TPM having given no reason, cannot show it is
  // the enrolled one: EK_CHANGED too, never a silent skip.
  BOOST_TEST(unnamed.Has(alarm::kEkChanged), Describe(unnamed));
  BOOST_TEST(unnamed.alarms.size() == 2u, Describe(unnamed));
}

BOOST_AUTO_TEST_CASE(ek_cert_missing) {
  const Verdict v = EkCertificateMissing();
  RequireOnly(v, alarm::kEkCertMissing);
  BOOST_TEST(First(v, alarm::kEkCertMissing).evidence.at("nv_index") == "0x01c00002, 0x01c0000a");
}

BOOST_AUTO_TEST_CASE(ek_changed) {
  const Verdict v = EkChanged();
  RequireOnly(v, alarm::kEkChanged);
  BOOST_TEST(First(v, alarm::kEkChanged).evidence.at("expected") == ToHex(kEkName));
  BOOST_TEST(First(v, alarm::kEkChanged).message ==
             "The new host TPM endorsement key doesn't match the one stored in the DB");
}

BOOST_AUTO_TEST_CASE(ak_unknown) {
  // Wrong qualifiedSigner on a quote the enrolled key signed.
  const Verdict v = AkUnknown();
  RequireOnly(v, alarm::kAkUnknown);
  BOOST_TEST(First(v, alarm::kAkUnknown).evidence.at("expected") == ToHex(Enrolled().ak_qualified_name));
  BOOST_TEST(First(v, alarm::kAkUnknown).evidence.at("actual") == ToHex(kOtherSigner));
  BOOST_TEST(!Enrolled().ak_qualified_name.empty());
}

BOOST_AUTO_TEST_CASE(counter_rollback) {
  RequireOnly(CountersWentDown(), alarm::kCounterRollback);
  // restartCount down within the same resetCount.
  Board b;
  b.clock.restart_count = 0;
  RequireOnly(Judge(Take(b)), alarm::kCounterRollback);
  // resetCount up with restartCount back to 0 is a reboot, not a rollback.
  b.clock.reset_count = 4;
  BOOST_TEST(Judge(Take(b)).alarms.empty(), Describe(Judge(Take(b))));
}

BOOST_AUTO_TEST_CASE(clock_not_safe) {
  const Verdict v = ClockNotSafe();
  RequireOnly(v, alarm::kClockNotSafe);
  BOOST_TEST((First(v, alarm::kClockNotSafe).severity == Severity::kWarning));
  // With no earlier quote it is still checked.
  Board b;
  b.clock.safe = false;
  RequireOnly(Verify(Take(b), nullptr, &Enrolled(), WithRoots()), alarm::kClockNotSafe);
}

BOOST_AUTO_TEST_CASE(clock_not_monotonic) {
  RequireOnly(ClockWentBack(), alarm::kClockNotMonotonic);
  // Ten seconds back while wall time moved one second on: the clock went
  // back, which says more than skew would; skew is listed as not run.
  Board b;
  b.clock.clock_ms = Previous().clock().clock_ms - 10'000;
  b.wall_ms = Previous().taken_at_ms + 1'000;
  const Verdict v = Judge(Take(b));
  BOOST_TEST((Codes(v) == std::multiset<std::string>{alarm::kClockNotMonotonic}), Describe(v));
  bool skew_not_run = false;
  for (const auto& n : v.not_run) skew_not_run = skew_not_run || n.rfind(alarm::kClockSkew, 0) == 0;
  BOOST_TEST(skew_not_run);
}

BOOST_AUTO_TEST_CASE(clock_skew) {
  const Verdict v = ClockRanAhead();
  RequireOnly(v, alarm::kClockSkew);
  BOOST_TEST(First(v, alarm::kClockSkew).evidence.at("detail") ==
             "TPM clock advanced 10000 ms while wall time advanced 1000 ms");
}

BOOST_AUTO_TEST_CASE(tpm_firmware_changed) {
  const Verdict v = FirmwareChanged();
  RequireOnly(v, alarm::kTpmFirmwareChanged);
  BOOST_TEST(First(v, alarm::kTpmFirmwareChanged).evidence.at("expected") == "0x2024012500120000");
  BOOST_TEST(First(v, alarm::kTpmFirmwareChanged).evidence.at("actual") == "0x2024012500130000");
}

BOOST_AUTO_TEST_CASE(hierarchy_disabled) {
  const Verdict owner = OwnerHierarchyDisabled();
  RequireOnly(owner, alarm::kHierarchyDisabled);
  BOOST_TEST(First(owner, alarm::kHierarchyDisabled).evidence.at("disabled") == "owner");
  Snapshot s = Take(Board{});
  s.properties.platform_enabled = false;
  s.properties.endorsement_enabled = false;
  const Verdict v = Judge(s);
  RequireOnly(v, alarm::kHierarchyDisabled);
  BOOST_TEST(First(v, alarm::kHierarchyDisabled).evidence.at("disabled") == "platform endorsement");
}

BOOST_AUTO_TEST_CASE(pcr_policy_mismatch) {
  const Verdict v = GoldenDiffers();
  RequireOnly(v, alarm::kPcrPolicyMismatch);
  const Alarm& a = First(v, alarm::kPcrPolicyMismatch);
  BOOST_TEST(a.evidence.at("bank") == "sha256");
  BOOST_TEST(a.evidence.at("pcr") == "2");
  BOOST_TEST(a.evidence.at("actual") == ToHex(Take(Board{}).pcrs.at(HashAlg::kSha256)[2]));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
// The quote is judged with the enrolled AK, against the verifier's own
// request (PCRs, nonce, signing hash): issue 12's bad evidence.

BOOST_AUTO_TEST_SUITE(bound_to_the_enrollment)

BOOST_AUTO_TEST_CASE(a_foreign_ak_is_unknown_and_its_signature_fails) {
  // Another key signed the quote and the evidence carries that key: checked
  // with the enrolled AK, as Keylime (registrar's AIK) and go-attestation do.
  Board b;
  b.ak = EccAk();
  const Verdict v = Judge(Take(b));
  BOOST_TEST((Codes(v) == std::multiset<std::string>{alarm::kAkUnknown, alarm::kAkUnknown,
                                                      alarm::kQuoteSignatureInvalid}),
             Describe(v));
  BOOST_TEST(First(v, alarm::kAkUnknown).evidence.at("actual") == ToHex(KeyOf(EccAk(), kAkHandle).name));
  BOOST_TEST(First(v, alarm::kQuoteSignatureInvalid).evidence.at("ak_name") == ToHex(Enrolled().ak_name));
  // Nothing a quote that failed vouches for is judged.
  BOOST_TEST(NotRun(v, alarm::kTpmFirmwareChanged), Describe(v));
  BOOST_TEST(NotRun(v, alarm::kPcrPolicyMismatch), Describe(v));
  // The snapshot's own check (with the key it carries) passed: only the
  // verifier's check with the enrolled key fails.
  BOOST_TEST(Take(b).quote_check.verified());
}

BOOST_AUTO_TEST_CASE(the_evidence_naming_another_key_is_unknown_even_when_the_quote_verifies) {
  // A loose --ak of another key beside a quote the enrolled AK signed.
  Snapshot s = Take(Board{});
  s.ak.name.clear();
  s.ak.public_der = SubjectPublicKeyInfo(EccAk());
  const Verdict v = Judge(s);
  RequireOnly(v, alarm::kAkUnknown);
  BOOST_TEST(First(v, alarm::kAkUnknown).evidence.at("detail") == "AK public key differs");
}

BOOST_AUTO_TEST_CASE(an_older_enrollment_lists_the_qualified_signer_check) {
  Enrollment older = Enrolled();
  older.ak_qualified_name.clear();
  older.quote_request.reset();
  Board b;
  b.qualified_signer = kOtherSigner;  // would be AK_UNKNOWN with the name enrolled
  const Verdict v = Judge(Take(b), older);
  BOOST_TEST(v.alarms.empty(), Describe(v));
  BOOST_TEST(NotRun(v, alarm::kAkUnknown), Describe(v));
}

BOOST_AUTO_TEST_CASE(a_shrunk_selection_is_a_coverage_alarm_and_no_pcr_verdict) {
  // The quote covers PCRs 0-7 while the verifier asked for 0-23; the golden
  // PCR 10 differs, but no verified quote vouches for PCR 10.
  Board b;
  b.quoted_pcrs = 0xFF;
  const Snapshot s = Take(b);
  BOOST_TEST(!s.quote_check.covers_request);
  BOOST_TEST(!s.quote_check.verified());
  Enrollment e = Enrolled();
  e.golden_pcrs[HashAlg::kSha256][10][0] ^= 0x01;
  Verdict v = Judge(s, e);
  RequireOnly(v, alarm::kQuotePcrDigestMismatch);
  const Alarm& a = First(v, alarm::kQuotePcrDigestMismatch);
  BOOST_TEST(a.evidence.at("expected") == "0-23");
  BOOST_TEST(a.evidence.at("actual") == "0-7");
  BOOST_TEST(a.evidence.at("detail") == "not quoted: 8-23");
  BOOST_TEST((std::count(v.not_run.begin(), v.not_run.end(),
                         "PCR_POLICY_MISMATCH: PCR 0-23 (sha256) not covered by a verified quote") == 1),
             Describe(v));

  // Asked for 0-7 only, the quote verifies and vouches for 0-7: PCR 2 that
  // differs is judged, PCR 10 is not.
  Snapshot asked = s;
  asked.quote_pcrs = 0xFF;
  e.golden_pcrs[HashAlg::kSha256][2][0] ^= 0x01;
  v = Judge(asked, e);
  RequireOnly(v, alarm::kPcrPolicyMismatch);
  BOOST_TEST((Pcrs(v, alarm::kPcrPolicyMismatch) == std::set<std::string>{"sha256:2"}), Describe(v));
  BOOST_TEST((std::count(v.not_run.begin(), v.not_run.end(),
                         "PCR_POLICY_MISMATCH: PCR 8-23 (sha256) not covered by a verified quote") == 1),
             Describe(v));
}

BOOST_AUTO_TEST_CASE(the_previous_steps_quote_is_a_replay) {
  // Step N presents step N-1's quote with its nonce (self-consistent
  // evidence): only the verifier's memory of the last nonce catches it.
  const Snapshot replayed = Previous();
  const Verdict v = Verify(replayed, &Previous(), &Enrolled());
  RequireOnly(v, alarm::kQuoteNonceMismatch);
  const Alarm& a = First(v, alarm::kQuoteNonceMismatch);
  BOOST_TEST(a.evidence.at("replayed") == "true");
  BOOST_TEST(a.evidence.at("actual") == ToHex(Previous().nonce));
  // Step N's own nonce with step N-1's quote: the echo fails.
  Snapshot stale = Take(Board{});
  stale.quote = Previous().quote;
  Recheck(stale);
  const Verdict echo = Verify(stale, &Previous(), &Enrolled());
  BOOST_TEST(echo.Has(alarm::kQuoteNonceMismatch), Describe(echo));
  BOOST_TEST(!echo.Has(alarm::kQuoteSignatureInvalid), Describe(echo));
}

BOOST_AUTO_TEST_CASE(a_quote_with_no_nonce_requested_is_a_nonce_mismatch) {
  Board b;
  b.nonce.clear();
  const Verdict v = Judge(Take(b));
  RequireOnly(v, alarm::kQuoteNonceMismatch);
  BOOST_TEST(First(v, alarm::kQuoteNonceMismatch).evidence.at("detail") == "no nonce requested");
}

BOOST_AUTO_TEST_CASE(sha1_and_rsa_pss_signatures_are_refused) {
  Board sha1;
  sha1.signature_hash = kAlgSha1;
  const Snapshot s = Take(sha1);
  BOOST_TEST(!s.quote_check.scheme_ok);
  Verdict v = Judge(s);
  RequireOnly(v, alarm::kQuoteSignatureInvalid);
  BOOST_TEST(First(v, alarm::kQuoteSignatureInvalid).evidence.at("detail") ==
             "signed with sha1, the verifier accepts sha256 only");
  BOOST_TEST(First(v, alarm::kQuoteSignatureInvalid).evidence.at("scheme") == "rsassa-sha1");
  // The signature is a good one: only the hash is refused.
  BOOST_TEST(VerifySignature(s.ak.public_der, s.quote.attest, Must(ParseSignature(s.quote.signature), "sig")).ok());

  Board pss;
  pss.pss = true;
  v = Judge(Take(pss));
  RequireOnly(v, alarm::kQuoteSignatureInvalid);
  BOOST_TEST(First(v, alarm::kQuoteSignatureInvalid).evidence.at("detail") ==
             "rsapss is not accepted: rsassa or ecdsa only");

  // ECDSA with SHA-256 is accepted.
  Board ecc;
  ecc.ak = EccAk();
  const Snapshot es = Take(ecc);
  v = Judge(es, EnrollFromSnapshot(es, "constructed"));
  BOOST_TEST(v.alarms.empty(), Describe(v));
}

BOOST_AUTO_TEST_CASE(the_firmware_version_is_the_signed_one) {
  // GetCapability's answer is unsigned: a differing one alone raises nothing.
  Snapshot s = Take(Board{});
  s.properties.firmware_version = kFirmware + 0x10000;
  BOOST_TEST(Judge(s).alarms.empty(), Describe(Judge(s)));
  // A quote that does not verify says nothing of the firmware.
  Board b;
  b.firmware = kFirmware + 0x10000;
  Snapshot unsigned_quote = Take(b);
  unsigned_quote.quote.signature[unsigned_quote.quote.signature.size() / 2] ^= 0x01;
  const Verdict v = Judge(unsigned_quote);
  RequireOnly(v, alarm::kQuoteSignatureInvalid);
  BOOST_TEST(NotRun(v, alarm::kTpmFirmwareChanged), Describe(v));
}

BOOST_AUTO_TEST_CASE(the_enrollment_keeps_the_ak_qualified_name_and_the_request) {
  const Enrollment& e = Enrolled();
  BOOST_TEST(ToHex(e.ak_qualified_name) == ToHex(KeyOf(RsaAk(), kAkHandle).qualified_name));
  BOOST_REQUIRE(e.quote_request.has_value());
  BOOST_TEST(e.quote_request->pcrs == 0xFFFFFFu);
  BOOST_TEST((e.quote_request->bank == HashAlg::kSha256));
  BOOST_TEST((e.quote_request->signature_hash == HashAlg::kSha256));
  const nlohmann::json j = EnrollmentToJson(e);
  BOOST_TEST(j.at("quote_request").at("pcrs").size() == 24u);
  const Enrollment back = Must(EnrollmentFromJson(j, "enrollment.json"), "read back");
  BOOST_TEST(ToHex(back.ak_qualified_name) == ToHex(e.ak_qualified_name));
  BOOST_REQUIRE(back.quote_request.has_value());
  BOOST_TEST(back.quote_request->pcrs == 0xFFFFFFu);

  // A file of an older tpmlab still loads, without either.
  nlohmann::json older = j;
  older.erase("ak_qualified_name");
  older.erase("quote_request");
  const Enrollment old = Must(EnrollmentFromJson(older, "old.json"), "older file");
  BOOST_TEST(old.ak_qualified_name.empty());
  BOOST_TEST(!old.quote_request.has_value());

  // A bad request names itself.
  nlohmann::json bad = j;
  bad["quote_request"]["pcrs"] = {0, 24};
  auto r = EnrollmentFromJson(bad, "bad.json");
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().message().find("bad.json: enrollment field 'quote_request'") != std::string::npos,
             r.status().message());
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(not_run)

BOOST_AUTO_TEST_CASE(no_enrollment_lists_the_enrollment_checks) {
  // EK, AK, firmware and golden PCRs all changed: with no enrollment there is
  // nothing to compare them with, and nothing is raised.
  Board b;
  b.ak = EccAk();
  b.firmware = kFirmware + 1;
  b.unlogged.push_back({16, "something new"});  // outside the replay scope
  Snapshot s = Take(b);
  s.ek.name = Bytes(34, 0x77);
  const Verdict v = Verify(s, &Previous(), nullptr, WithRoots());
  BOOST_TEST(v.alarms.empty(), Describe(v));
  for (const char* c : {alarm::kEkChanged, alarm::kAkUnknown, alarm::kTpmFirmwareChanged, alarm::kPcrPolicyMismatch}) {
    BOOST_TEST(NotRun(v, c), c << ": " << Describe(v));
  }
  // Another EK than the previous snapshot's: its counters are not this TPM's.
  for (const char* c : {alarm::kCounterRollback, alarm::kClockNotMonotonic, alarm::kClockSkew}) {
    BOOST_TEST(NotRun(v, c), c << ": " << Describe(v));
  }
  BOOST_TEST(v.not_run.size() == 7u, Describe(v));
  // The quote was judged all the same, with the AK the evidence names.
  BOOST_TEST((std::count(v.not_run.begin(), v.not_run.end(),
                         "AK_UNKNOWN: not enrolled; the quote was checked with the AK the evidence names") == 1),
             Describe(v));
}

BOOST_AUTO_TEST_CASE(no_log_lists_the_log_checks) {
  // The log would show an unlogged PCR0 extend and Secure Boot off; without it
  // those checks are listed, not passed and not raised.
  Board b;
  b.events = BootEvents(0);
  b.unlogged.push_back({0, "an unlogged firmware measurement"});
  Snapshot s = Take(b);
  s.eventlog.reset();
  const Enrollment enrolled = EnrollFromSnapshot(s, "constructed");
  const Verdict v = Verify(s, &Previous(), &enrolled, WithRoots());
  BOOST_TEST(v.alarms.empty(), Describe(v));
  for (const char* c : {alarm::kPcrReplayMismatch, alarm::kEventDigestMismatch, alarm::kUnknownEventType,
                        alarm::kSecureBootDisabled}) {
    BOOST_TEST(NotRun(v, c), c << ": " << Describe(v));
  }
  BOOST_TEST(v.not_run.size() == 4u, Describe(v));
}

BOOST_AUTO_TEST_CASE(no_previous_quote_lists_the_counter_checks) {
  Board b;
  b.clock = ClockInfo{5'000, 0, 0, true};  // would be a rollback
  const Verdict v = Verify(Take(b), nullptr, &Enrolled(), WithRoots());
  BOOST_TEST(v.alarms.empty(), Describe(v));
  for (const char* c : {alarm::kCounterRollback, alarm::kClockNotMonotonic, alarm::kClockSkew}) {
    BOOST_TEST(NotRun(v, c), c << ": " << Describe(v));
  }
  BOOST_TEST(v.not_run.size() == 3u, Describe(v));
}

BOOST_AUTO_TEST_CASE(nothing_to_compare_with_raises_nothing) {
  const Verdict v = Verify(Take(Board{}), nullptr, nullptr, WithRoots());
  BOOST_TEST(v.alarms.empty(), Describe(v));
  BOOST_TEST(v.not_run.size() == 7u, Describe(v));
  const auto j = VerdictToJson(v);
  BOOST_TEST(j.at("alarms").empty());
  BOOST_TEST(j.at("not_run").size() == 7u);
}

BOOST_AUTO_TEST_CASE(no_ak_is_quote_missing_and_an_unknown_ak) {
  // The AK could not be made (a disabled endorsement hierarchy): no quote is
  // an alarm (Keylime fails quote_validation), and evidence naming no AK for
  // an enrolled host is AK_UNKNOWN, never a skip.
  Snapshot s = WithoutQuote(Take(Board{}), "no quote: the AK could not be made");
  s.ak = KeyInfo{};
  s.ak_error = "TPM2_CreatePrimary: TPM_RC_HIERARCHY";
  Verdict v = Judge(s);
  BOOST_TEST((Codes(v) == std::multiset<std::string>{alarm::kQuoteMissing, alarm::kAkUnknown}), Describe(v));
  BOOST_TEST(First(v, alarm::kQuoteMissing).evidence.at("detail").find("TPM_RC_HIERARCHY") != std::string::npos);
  BOOST_TEST((First(v, alarm::kQuoteMissing).severity == Severity::kError));
  for (const char* c : {alarm::kQuoteMalformed, alarm::kQuoteSignatureInvalid, alarm::kQuoteNonceMismatch,
                        alarm::kQuotePcrDigestMismatch}) {
    BOOST_TEST(!NotRun(v, c), c << ": " << Describe(v));
  }
  // Nothing the missing quote would have vouched for is judged.
  BOOST_TEST(NotRun(v, alarm::kTpmFirmwareChanged), Describe(v));
  BOOST_TEST(NotRun(v, alarm::kPcrPolicyMismatch), Describe(v));
  BOOST_TEST(NotRun(v, alarm::kClockNotSafe), Describe(v));

  // Not enrolled: the missing quote alone.
  v = Verify(s, &Previous(), nullptr);
  RequireOnly(v, alarm::kQuoteMissing);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
// The real quotes of ../shared/fixtures/quotes (README there), skipped when
// the fixtures are not there. Only the QUOTE_* alarms are the fixture's to
// decide; the rest of each snapshot is filled in as a clean DUT would have it.

namespace {

const fs::path kQuotes = test::FixturesDir() / "quotes";

std::set<std::string> QuoteAlarms(const Verdict& v) {
  std::set<std::string> out;
  for (const Alarm& a : v.alarms) {
    if (a.code.rfind("QUOTE_", 0) == 0) out.insert(a.code);
  }
  return out;
}

// A snapshot around a real quote: no log, no earlier quote, no enrollment.
Snapshot AroundQuote(const QuoteBlob& quote, const Bytes& ak_der, const PcrValues& pcrs, HashAlg bank) {
  Snapshot s;
  s.banks = {bank};
  s.pcrs = pcrs;
  s.quote_bank = bank;
  s.quote = quote;
  s.ak.public_der = ak_der;
  s.ak.name = ByteWriter().U16(kAlgSha256).Append(Digest(HashAlg::kSha256, ak_der)).Take();
  s.ek.name = kEkName;
  s.ek_certificate = EkCertificate();
  auto attest = ParseAttest(quote.attest);
  BOOST_REQUIRE_MESSAGE(attest.ok(), attest.status().ToString());
  s.nonce = attest->extra_data;
  s.properties.firmware_version = attest->firmware_version;
  Recheck(s);
  return s;
}

// Each one-byte change raises its own QUOTE_* alarm and no other QUOTE_* one.
void CheckQuoteAlterations(const Snapshot& clean, HashAlg bank, int quoted_pcr) {
  BOOST_TEST(clean.quote_check.verified(), clean.quote_check.failure);
  Verdict v = Verify(clean, nullptr, nullptr);
  BOOST_TEST(QuoteAlarms(v).empty(), Describe(v));

  using Codes = std::set<std::string>;
  Snapshot s = clean;
  s.quote.attest[13] ^= 0x01;  // inside qualifiedSigner
  Recheck(s);
  v = Verify(s, nullptr, nullptr);
  BOOST_TEST((QuoteAlarms(v) == Codes{alarm::kQuoteSignatureInvalid}), Describe(v));

  s = clean;
  s.quote.signature[s.quote.signature.size() - 9] ^= 0x20;
  Recheck(s);
  v = Verify(s, nullptr, nullptr);
  BOOST_TEST((QuoteAlarms(v) == Codes{alarm::kQuoteSignatureInvalid}), Describe(v));

  s = clean;
  if (s.nonce.empty()) {
    s.nonce = {0x01};  // the quote carries none; the verifier sent one
  } else {
    s.nonce.back() ^= 0x01;
  }
  Recheck(s);
  v = Verify(s, nullptr, nullptr);
  BOOST_TEST((QuoteAlarms(v) == Codes{alarm::kQuoteNonceMismatch}), Describe(v));

  s = clean;
  s.pcrs[bank][quoted_pcr][0] ^= 0x01;
  Recheck(s);
  v = Verify(s, nullptr, nullptr);
  BOOST_TEST((QuoteAlarms(v) == Codes{alarm::kQuotePcrDigestMismatch}), Describe(v));
}

Bytes Base64(const std::string& text) {
  Bytes out(text.size() / 4 * 3 + 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  BOOST_REQUIRE(n >= 0);
  out.resize(static_cast<size_t>(n));
  // EVP_DecodeBlock counts the padding as zero bytes.
  for (auto it = text.rbegin(); it != text.rend() && *it == '='; ++it) out.pop_back();
  return out;
}

// DER SubjectPublicKeyInfo of an RSA TPMT_PUBLIC (TPM 2.0 Part 2, 12.2.4).
Bytes RsaTpmtPublicToDer(ByteView area) {
  ByteReader r(area, "TPMT_PUBLIC");
  BOOST_REQUIRE(Must(r.U16(), "type") == 0x0001);  // TPM_ALG_RSA
  (void)Must(r.U16(), "nameAlg");
  (void)Must(r.U32(), "objectAttributes");
  (void)Must(r.Sized16("authPolicy"), "authPolicy");
  if (Must(r.U16(), "symmetric") != kAlgNull) {
    (void)Must(r.U16(), "symmetric keyBits");
    (void)Must(r.U16(), "symmetric mode");
  }
  if (Must(r.U16(), "scheme") != kAlgNull) (void)Must(r.U16(), "scheme hash");
  (void)Must(r.U16(), "keyBits");
  uint32_t exponent = Must(r.U32(), "exponent");
  if (exponent == 0) exponent = 65537;  // 0 means the default
  const ByteView modulus = Must(r.Sized16("unique"), "unique");

  BIGNUM* n = BN_bin2bn(modulus.data(), static_cast<int>(modulus.size()), nullptr);
  BIGNUM* e = BN_new();
  BOOST_REQUIRE(n != nullptr && e != nullptr && BN_set_word(e, exponent) == 1);
  OSSL_PARAM_BLD* build = OSSL_PARAM_BLD_new();
  BOOST_REQUIRE(OSSL_PARAM_BLD_push_BN(build, OSSL_PKEY_PARAM_RSA_N, n) == 1);
  BOOST_REQUIRE(OSSL_PARAM_BLD_push_BN(build, OSSL_PKEY_PARAM_RSA_E, e) == 1);
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(build);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
  EVP_PKEY* key = nullptr;
  BOOST_REQUIRE(ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1);
  BOOST_REQUIRE(EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) == 1);
  Pkey owned(key);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(build);
  BN_free(n);
  BN_free(e);
  return SubjectPublicKeyInfo(owned.get());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fixtures)

BOOST_AUTO_TEST_CASE(ibm_simulator_quote, TPMLAB_NEEDS("fixtures", kQuotes / "ibmsim_quote.attest")) {
  QuoteBlob quote{ReadFile(kQuotes / "ibmsim_quote.attest"), ReadFile(kQuotes / "ibmsim_quote.sig")};

  const Bytes pem = ReadFile(kQuotes / "ibmsim_ak.pem");
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  Pkey ak(PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  BOOST_REQUIRE(ak != nullptr);

  // tpm2-tools' serialized PCRs: a host-endian TPML_PCR_SELECTION (132
  // bytes), then TPML_DIGEST {u32 count; TPM2B_DIGEST[8]} at offset 132:
  // here the count at 136 and 66-byte TPM2B slots from 140.
  const Bytes file = ReadFile(kQuotes / "ibmsim_quote.pcrs");
  BOOST_REQUIRE(file.size() == 668u);
  BOOST_REQUIRE(file[136] == 3 && file[137] == 0 && file[138] == 0 && file[139] == 0);
  PcrValues pcrs;
  for (int i = 0; i < kPcrCount; ++i) pcrs[HashAlg::kSha256][i] = PcrResetValue(HashAlg::kSha256, i);
  const int quoted[] = {15, 16, 22};
  for (size_t k = 0; k < 3; ++k) {
    const size_t at = 140 + 66 * k;
    const size_t size = file[at] | size_t{file[at + 1]} << 8;
    BOOST_REQUIRE(size == 32u);
    pcrs[HashAlg::kSha256][quoted[k]].assign(file.begin() + static_cast<long>(at + 2),
                                             file.begin() + static_cast<long>(at + 2 + size));
  }

  const Snapshot s = AroundQuote(quote, SubjectPublicKeyInfo(ak.get()), pcrs, HashAlg::kSha256);
  BOOST_TEST(s.nonce.size() == 20u);
  BOOST_TEST(s.clock().safe);
  const Verdict v = Verify(s, nullptr, nullptr);
  BOOST_TEST(v.alarms.empty(), Describe(v));
  CheckQuoteAlterations(s, HashAlg::kSha256, 16);
}

BOOST_AUTO_TEST_CASE(windows_gcp_shielded_vm_quote, TPMLAB_NEEDS("fixtures", kQuotes / "windows_gcp_shielded_vm.json")) {
  const fs::path file = kQuotes / "windows_gcp_shielded_vm.json";
  std::ifstream in(file);
  const nlohmann::json j = nlohmann::json::parse(in);
  const Bytes ak = RsaTpmtPublicToDer(Base64(j.at("AK").at("Public").get<std::string>()));
  QuoteBlob quote{Base64(j.at("Quote").at("Quote").get<std::string>()),
                  Base64(j.at("Quote").at("Signature").get<std::string>())};
  BOOST_TEST(j.at("Quote").at("Alg").get<int>() == 4);  // TPM_ALG_SHA1

  // 24 SHA-1 PCR values (go's crypto.SHA1 is 3), in no particular order.
  PcrValues pcrs;
  std::set<int> seen;
  for (const auto& p : j.at("Log").at("PCRs")) {
    BOOST_REQUIRE(p.at("DigestAlg").get<int>() == 3);
    const int index = p.at("Index").get<int>();
    BOOST_REQUIRE(index >= 0 && index < kPcrCount);
    pcrs[HashAlg::kSha1][index] = Base64(p.at("Digest").get<std::string>());
    BOOST_REQUIRE(pcrs[HashAlg::kSha1][index].size() == 20u);
    seen.insert(index);
  }
  BOOST_REQUIRE(seen.size() == 24u);

  const Snapshot s = AroundQuote(quote, ak, pcrs, HashAlg::kSha1);
  BOOST_TEST(s.nonce.empty());  // the quote carries no nonce
  BOOST_REQUIRE(s.quote_check.attest.pcr_select.size() == 1u);
  BOOST_TEST(s.quote_check.attest.pcr_select[0].mask == 0xFFFFFFu);
  const Verdict v = Verify(s, nullptr, nullptr);
  // A SHA-1-only platform, a SHA-1 signature and no nonce: Keylime accepts
  // sha256/384/512 signatures only and always sends a nonce.
  const std::multiset<std::string> expected = {alarm::kSha256BankMissing, alarm::kQuoteSignatureInvalid,
                                               alarm::kQuoteNonceMismatch};
  BOOST_TEST((Codes(v) == expected), Describe(v));
  BOOST_TEST(First(v, alarm::kQuoteSignatureInvalid).evidence.at("detail") ==
             "signed with sha1, the verifier accepts sha256 only");
  BOOST_TEST(First(v, alarm::kQuoteSignatureInvalid).evidence.at("scheme") == "rsassa-sha1");
  // The signature itself is good: only its hash is refused.
  BOOST_TEST(VerifySignature(ak, quote.attest, Must(ParseSignature(quote.signature), "signature")).ok());

  // With its raw SHA1-format log: every recomputable digest matches, and the
  // log replays to the reported PCRs; but a refused quote vouches for no PCR
  // (go-attestation), so the replay and Secure Boot are not judged on it.
  Snapshot logged = s;
  logged.eventlog = Base64(j.at("Log").at("Raw").get<std::string>());
  const Verdict lv = Verify(logged, nullptr, nullptr);
  BOOST_TEST((Codes(lv) == expected), Describe(lv));
  for (const char* c : {alarm::kEventDigestMismatch, alarm::kUnknownEventType}) {
    BOOST_TEST(!NotRun(lv, c), c << ": " << Describe(lv));
  }
  for (const char* c : {alarm::kPcrReplayMismatch, alarm::kSecureBootDisabled}) {
    BOOST_TEST(NotRun(lv, c), c << ": " << Describe(lv));
  }
  const auto log = ParseEventLog(*logged.eventlog);
  BOOST_REQUIRE(log.ok());
  const auto replay = ReplayEventLog(*log);
  BOOST_REQUIRE(replay.ok());
  BOOST_TEST(CompareReplay(*replay, pcrs).empty());
}

BOOST_AUTO_TEST_SUITE_END()

// A finding per PCR per bank, shown and counted as one alarm per code.
BOOST_AUTO_TEST_SUITE(alarms_as_shown)

Alarm PcrFinding(const std::string& bank, int pcr) {
  return {alarm::kPcrPolicyMismatch, Severity::kError, "differs",
          {{"bank", bank}, {"pcr", std::to_string(pcr)}, {"expected", "00"}, {"actual", "11"}}};
}

BOOST_AUTO_TEST_CASE(four_pcrs_in_two_banks_are_one_alarm_naming_them) {
  std::vector<Alarm> findings;
  for (const char* bank : {"sha1", "sha256"}) {
    for (int pcr : {7, 0, 4, 2}) findings.push_back(PcrFinding(bank, pcr));
  }
  findings.push_back({alarm::kClockNotSafe, Severity::kWarning, "not safe", {{"clock_ms", "5"}, {"reset_count", "2"}}});
  BOOST_TEST((DistinctAlarmCodes(findings) ==
              std::vector<std::string>{alarm::kPcrPolicyMismatch, alarm::kClockNotSafe}));
  BOOST_TEST(DescribeAlarms(findings) ==
             "PCR_POLICY_MISMATCH: PCR 0,2,4,7 (sha1, sha256); CLOCK_NOT_SAFE: reset 2 clock 5");
  BOOST_TEST(DescribeAlarms({}) == "none");
}

BOOST_AUTO_TEST_CASE(a_counter_alarm_shows_the_counters_before_and_now) {
  const Alarm rollback{alarm::kCounterRollback, Severity::kError, "went down",
                       {{"expected", "reset 3 restart 0 clock 900"}, {"actual", "reset 0 restart 0 clock 950"}}};
  BOOST_TEST(DescribeAlarm(alarm::kCounterRollback, {rollback}) ==
             "COUNTER_ROLLBACK: reset 3 restart 0 clock 900 -> reset 0 restart 0 clock 950");
}

BOOST_AUTO_TEST_CASE(response_codes_are_named_with_hex_and_what_they_point_at) {
  BOOST_TEST(TpmResponseName(0x1c4) == "TPM_RC_VALUE (0x1c4, parameter 1)");
  BOOST_TEST(TpmResponseName(0x185) == "TPM_RC_HIERARCHY (0x185, handle 1)");
  BOOST_TEST(TpmResponseName(0x98e) == "TPM_RC_AUTH_FAIL (0x98e, session 1)");
  BOOST_TEST(TpmResponseName(0x120) == "TPM_RC_DISABLED (0x120)");
  BOOST_TEST(TpmResponseName(0x921) == "TPM_RC_LOCKOUT (0x921)");
  BOOST_TEST(TpmResponseCodeName(0x1c4) == "TPM_RC_VALUE");
  BOOST_TEST(TpmResponseCodeName(0x101) == "TPM_RC_FAILURE");
  BOOST_TEST(TpmResponseText(0x120).rfind("TPM_RC_DISABLED (0x120): ", 0) == 0u, TpmResponseText(0x120));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace tpmlab
