// Quote parsing and verification (harness/attest.h) against quotes this test
// builds and signs itself with OpenSSL keys, so every check can be made to
// fail on purpose; plus a real IBM-simulator quote from the shared fixtures.
#define BOOST_TEST_MODULE attest
#include <boost/test/unit_test.hpp>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <ostream>
#include <string>

#include "harness/attest.h"
#include "layer_printing.h"
#include "needs.h"
#include "test_certificates.h"

namespace tpmlab {

namespace {

constexpr uint16_t kAlgSha1 = 0x0004;
constexpr uint16_t kAlgSha256 = 0x000B;
constexpr uint16_t kAlgRsassa = 0x0014;
constexpr uint16_t kAlgEcdsa = 0x0018;

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

// Key generation is the slow part: one key of each kind per test run.
EVP_PKEY* RsaKey() {
  static Key key(EVP_RSA_gen(2048));
  BOOST_REQUIRE(key != nullptr);
  return key.get();
}
EVP_PKEY* EcKey() {
  static Key key(EVP_EC_gen("P-256"));
  BOOST_REQUIRE(key != nullptr);
  return key.get();
}

// TPMT_SIGNATURE {RSASSA, SHA256, TPM2B signature}.
Bytes RsaTpmSignature(ByteView message) {
  return ByteWriter().U16(kAlgRsassa).U16(kAlgSha256).Sized16(testing::SignSha256(RsaKey(), message)).Take();
}

// TPMT_SIGNATURE {ECDSA, SHA256, TPM2B r, TPM2B s}: the DER pair split in two.
Bytes EcdsaTpmSignature(ByteView message) {
  const Bytes der = testing::SignSha256(EcKey(), message);
  const unsigned char* p = der.data();
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  BOOST_REQUIRE(sig != nullptr);
  Bytes r(32), s(32);
  BOOST_REQUIRE(BN_bn2binpad(ECDSA_SIG_get0_r(sig), r.data(), 32) == 32);
  BOOST_REQUIRE(BN_bn2binpad(ECDSA_SIG_get0_s(sig), s.data(), 32) == 32);
  ECDSA_SIG_free(sig);
  return ByteWriter().U16(kAlgEcdsa).U16(kAlgSha256).Sized16(r).Sized16(s).Take();
}

Bytes Sha256(ByteView data) {
  Bytes out(32);
  unsigned int len = 0;
  BOOST_REQUIRE(EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) == 1);
  return out;
}

// PCR values a verifier read: PCR n of the sha256 bank = SHA-256("pcr n"),
// the sha1 bank all 0x11.
PcrValues SomePcrs() {
  PcrValues pcrs;
  for (int i = 0; i < kPcrCount; ++i) {
    pcrs[HashAlg::kSha256][i] = Sha256(AsBytes("pcr " + std::to_string(i)));
    pcrs[HashAlg::kSha1][i] = Bytes(20, 0x11);
  }
  return pcrs;
}

// SHA-256 over the selected sha256 PCRs in index order, computed here
// rather than with the function under test.
Bytes Composite(const PcrValues& pcrs, uint32_t mask) {
  Bytes joined;
  for (int i = 0; i < kPcrCount; ++i) {
    if (mask & (1u << i)) {
      const Bytes& v = pcrs.at(HashAlg::kSha256)[i];
      joined.insert(joined.end(), v.begin(), v.end());
    }
  }
  return Sha256(joined);
}

constexpr uint32_t kMask = (1u << 0) | (1u << 7) | (1u << 15) | (1u << 23);

// The fields of a TPMS_ATTEST quote (tpm-reference.md §4.1).
struct QuoteFields {
  uint32_t magic = kTpmGeneratedValue;
  uint16_t type = kTpmStAttestQuote;
  Bytes signer = ByteWriter().U16(kAlgSha256).Append(Bytes(32, 0x5A)).Take();
  Bytes nonce = Bytes{0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6, 0x07, 0x18};
  uint64_t clock = 123456789;
  uint32_t reset_count = 4;
  uint32_t restart_count = 2;
  uint8_t safe = 1;
  uint64_t firmware = 0x2016051100162800ULL;
  uint32_t mask = kMask;
  Bytes pcr_digest = Composite(SomePcrs(), kMask);
};

Bytes BuildAttest(const QuoteFields& f) {
  ByteWriter w;
  w.U32(f.magic).U16(f.type).Sized16(f.signer).Sized16(f.nonce);
  w.U64(f.clock).U32(f.reset_count).U32(f.restart_count).U8(f.safe);
  w.U64(f.firmware);
  w.U32(1).U16(kAlgSha256).U8(3);  // TPML_PCR_SELECTION: one sha256 selection of 3 bytes
  w.U8(static_cast<uint8_t>(f.mask)).U8(static_cast<uint8_t>(f.mask >> 8)).U8(static_cast<uint8_t>(f.mask >> 16));
  w.Sized16(f.pcr_digest);
  return w.Take();
}

QuoteBlob RsaQuote(const QuoteFields& f = {}) {
  QuoteBlob q;
  q.attest = BuildAttest(f);
  q.signature = RsaTpmSignature(q.attest);
  return q;
}

QuoteBlob EcdsaQuote(const QuoteFields& f = {}) {
  QuoteBlob q;
  q.attest = BuildAttest(f);
  q.signature = EcdsaTpmSignature(q.attest);
  return q;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

Bytes ReadFile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(verify_quote)

BOOST_AUTO_TEST_CASE(rsa_quote_verifies) {
  const QuoteFields f;
  QuoteCheck c = VerifyQuote(RsaQuote(f), testing::PublicKeyDer(RsaKey()), f.nonce, SomePcrs());
  BOOST_TEST(c.verified(), c.failure);
  BOOST_TEST(c.parsed);
  BOOST_TEST(c.magic_ok);
  BOOST_TEST(c.type_ok);
  BOOST_TEST(c.nonce_ok);
  BOOST_TEST(c.pcr_digest_ok);
  BOOST_TEST(c.signature_ok);
  BOOST_TEST(c.failure.empty());
  BOOST_TEST(c.attest.clock.clock_ms == f.clock);
}

BOOST_AUTO_TEST_CASE(ecdsa_quote_verifies) {
  const QuoteFields f;
  QuoteCheck c = VerifyQuote(EcdsaQuote(f), testing::PublicKeyDer(EcKey()), f.nonce, SomePcrs());
  BOOST_TEST(c.verified(), c.failure);
  BOOST_TEST(c.signature_ok);
  BOOST_TEST(c.failure.empty());
}

BOOST_AUTO_TEST_CASE(a_quote_must_cover_the_pcrs_requested) {
  const QuoteFields f;  // PCRs 0, 7, 15 and 23 quoted
  QuoteCheck c = VerifyQuote(RsaQuote(f), testing::PublicKeyDer(RsaKey()), f.nonce, SomePcrs(), {HashAlg::kSha256, kMask});
  BOOST_TEST(c.verified(), c.failure);
  BOOST_TEST(c.Covers(HashAlg::kSha256, 7));
  BOOST_TEST(!c.Covers(HashAlg::kSha256, 8));
  BOOST_TEST(!c.Covers(HashAlg::kSha1, 7));
  // PCRs 0-7 requested: 1-6 are missing; everything else still holds.
  c = VerifyQuote(RsaQuote(f), testing::PublicKeyDer(RsaKey()), f.nonce, SomePcrs(), {HashAlg::kSha256, 0xFF});
  BOOST_TEST(!c.covers_request);
  BOOST_TEST((c.signature_ok && c.nonce_ok && c.pcr_digest_ok));
  BOOST_TEST(!c.verified());
  BOOST_TEST(!c.Covers(HashAlg::kSha256, 7));  // a quote that failed vouches for nothing
  BOOST_TEST(Contains(c.failure, "does not select every sha256 PCR requested"), c.failure);
  // The sha1 bank requested, only sha256 quoted.
  c = VerifyQuote(RsaQuote(f), testing::PublicKeyDer(RsaKey()), f.nonce, SomePcrs(), {HashAlg::kSha1, 1});
  BOOST_TEST(!c.covers_request);
}

BOOST_AUTO_TEST_CASE(only_rsassa_or_ecdsa_with_the_requested_hash_is_accepted) {
  const QuoteFields f;
  QuoteBlob q = RsaQuote(f);
  // RSASSA-SHA256 and ECDSA-SHA256 pass with the default request.
  BOOST_TEST(VerifyQuote(q, testing::PublicKeyDer(RsaKey()), f.nonce, SomePcrs()).scheme_ok);
  BOOST_TEST(VerifyQuote(EcdsaQuote(f), testing::PublicKeyDer(EcKey()), f.nonce, SomePcrs()).scheme_ok);
  // A verifier that asks for SHA-384 refuses a SHA-256 signature.
  QuoteCheck c = VerifyQuote(q, testing::PublicKeyDer(RsaKey()), f.nonce, SomePcrs(), {HashAlg::kSha256, 0, HashAlg::kSha384});
  BOOST_TEST(!c.scheme_ok);
  BOOST_TEST(!c.signature_ok);
  BOOST_TEST(Contains(c.failure, "signature hash sha256 is not the sha384"), c.failure);
  // RSA-PSS: the scheme itself is refused.
  q.signature[1] = 0x16;
  c = VerifyQuote(q, testing::PublicKeyDer(RsaKey()), f.nonce, SomePcrs());
  BOOST_TEST(!c.signature_ok);
  BOOST_TEST(Contains(c.failure, "signature scheme rsapss is not accepted"), c.failure);
}

BOOST_AUTO_TEST_CASE(wrong_nonce_fails_the_nonce_check_only) {
  const QuoteFields f;
  const Bytes other_nonce = {1, 2, 3, 4, 5, 6, 7, 8};
  QuoteCheck c = VerifyQuote(RsaQuote(f), testing::PublicKeyDer(RsaKey()), other_nonce, SomePcrs());
  BOOST_TEST(!c.verified());
  BOOST_TEST(!c.nonce_ok);
  BOOST_TEST(c.signature_ok);
  BOOST_TEST(c.pcr_digest_ok);
  BOOST_TEST(Contains(c.failure, "nonce"), c.failure);
}

BOOST_AUTO_TEST_CASE(empty_nonce_against_a_quote_with_one_fails) {
  const QuoteFields f;
  QuoteCheck c = VerifyQuote(RsaQuote(f), testing::PublicKeyDer(RsaKey()), Bytes{}, SomePcrs());
  BOOST_TEST(!c.verified());
  BOOST_TEST(!c.nonce_ok);
}

BOOST_AUTO_TEST_CASE(flipped_rsa_signature_byte_fails_the_signature_check) {
  const QuoteFields f;
  QuoteBlob q = RsaQuote(f);
  q.signature[q.signature.size() / 2] ^= 0x01;
  QuoteCheck c = VerifyQuote(q, testing::PublicKeyDer(RsaKey()), f.nonce, SomePcrs());
  BOOST_TEST(!c.verified());
  BOOST_TEST(!c.signature_ok);
  BOOST_TEST(c.nonce_ok);
  BOOST_TEST(c.pcr_digest_ok);
  BOOST_TEST(Contains(c.failure, "signature"), c.failure);
}

BOOST_AUTO_TEST_CASE(flipped_ecdsa_signature_byte_fails_the_signature_check) {
  const QuoteFields f;
  QuoteBlob q = EcdsaQuote(f);
  q.signature.back() ^= 0x80;  // last byte of s
  QuoteCheck c = VerifyQuote(q, testing::PublicKeyDer(EcKey()), f.nonce, SomePcrs());
  BOOST_TEST(!c.verified());
  BOOST_TEST(!c.signature_ok);
  BOOST_TEST(!c.failure.empty());
}

BOOST_AUTO_TEST_CASE(attest_changed_after_signing_fails_the_signature_check) {
  const QuoteFields f;
  QuoteBlob q = RsaQuote(f);
  // The clock field (after magic, type, signer and nonce) moved on by one.
  const size_t clock_end = 4 + 2 + 2 + f.signer.size() + 2 + f.nonce.size() + 8;
  q.attest[clock_end - 1] ^= 0x01;
  QuoteCheck c = VerifyQuote(q, testing::PublicKeyDer(RsaKey()), f.nonce, SomePcrs());
  BOOST_TEST(c.parsed);
  BOOST_TEST(!c.signature_ok);
  BOOST_TEST(!c.verified());
}

BOOST_AUTO_TEST_CASE(another_key_fails_the_signature_check) {
  const QuoteFields f;
  QuoteCheck c = VerifyQuote(RsaQuote(f), testing::PublicKeyDer(EcKey()), f.nonce, SomePcrs());
  BOOST_TEST(!c.signature_ok);
  BOOST_TEST(!c.verified());

  const Bytes not_der = {0x30, 0x03, 0x02, 0x01, 0x00};
  c = VerifyQuote(RsaQuote(f), not_der, f.nonce, SomePcrs());
  BOOST_TEST(!c.signature_ok);
  BOOST_TEST(!c.verified());
  BOOST_TEST(!c.failure.empty());
}

BOOST_AUTO_TEST_CASE(wrong_magic_fails_the_magic_check) {
  QuoteFields f;
  f.magic = 0xFF544348;
  QuoteCheck c = VerifyQuote(RsaQuote(f), testing::PublicKeyDer(RsaKey()), f.nonce, SomePcrs());
  BOOST_TEST(!c.verified());
  BOOST_TEST(!c.magic_ok);
  BOOST_TEST(c.signature_ok);  // signed as it is: only the magic is wrong
  BOOST_TEST(Contains(c.failure, "magic"), c.failure);
}

BOOST_AUTO_TEST_CASE(wrong_type_fails_the_type_check) {
  QuoteFields f;
  f.type = 0x8017;  // TPM_ST_ATTEST_CERTIFY
  QuoteCheck c = VerifyQuote(RsaQuote(f), testing::PublicKeyDer(RsaKey()), f.nonce, SomePcrs());
  BOOST_TEST(!c.verified());
  BOOST_TEST(!c.type_ok);
  BOOST_TEST(c.magic_ok);
  BOOST_TEST(c.signature_ok);
  BOOST_TEST(Contains(c.failure, "type"), c.failure);
}

BOOST_AUTO_TEST_CASE(pcrs_that_do_not_match_the_digest_fail_the_pcr_check) {
  const QuoteFields f;
  PcrValues read = SomePcrs();
  read[HashAlg::kSha256][7] = Sha256(AsBytes("a different boot loader"));
  QuoteCheck c = VerifyQuote(RsaQuote(f), testing::PublicKeyDer(RsaKey()), f.nonce, read);
  BOOST_TEST(!c.verified());
  BOOST_TEST(!c.pcr_digest_ok);
  BOOST_TEST(c.signature_ok);
  BOOST_TEST(c.nonce_ok);
  BOOST_TEST(Contains(c.failure, "pcrDigest"), c.failure);

  // A PCR outside the selection may change freely.
  read = SomePcrs();
  read[HashAlg::kSha256][8] = Bytes(32, 0xEE);
  c = VerifyQuote(RsaQuote(f), testing::PublicKeyDer(RsaKey()), f.nonce, read);
  BOOST_TEST(c.verified(), c.failure);
}

BOOST_AUTO_TEST_CASE(bank_not_read_fails_the_pcr_check) {
  const QuoteFields f;
  PcrValues only_sha1;
  only_sha1[HashAlg::kSha1] = SomePcrs()[HashAlg::kSha1];
  QuoteCheck c = VerifyQuote(RsaQuote(f), testing::PublicKeyDer(RsaKey()), f.nonce, only_sha1);
  BOOST_TEST(!c.pcr_digest_ok);
  BOOST_TEST(!c.verified());
}

BOOST_AUTO_TEST_CASE(unparsable_attest_is_reported_not_verified) {
  const QuoteFields f;
  QuoteBlob q = RsaQuote(f);
  q.attest.resize(20);
  QuoteCheck c = VerifyQuote(q, testing::PublicKeyDer(RsaKey()), f.nonce, SomePcrs());
  BOOST_TEST(!c.parsed);
  BOOST_TEST(!c.verified());
  BOOST_TEST(!c.failure.empty());
}

BOOST_AUTO_TEST_CASE(unparsable_signature_is_reported_not_verified) {
  const QuoteFields f;
  QuoteBlob q = RsaQuote(f);
  q.signature.resize(3);
  QuoteCheck c = VerifyQuote(q, testing::PublicKeyDer(RsaKey()), f.nonce, SomePcrs());
  BOOST_TEST(c.parsed);
  BOOST_TEST(!c.signature_ok);
  BOOST_TEST(!c.verified());
  BOOST_TEST(!c.failure.empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(parse)

BOOST_AUTO_TEST_CASE(parse_attest_reads_every_field) {
  const QuoteFields f;
  auto a = ParseAttest(BuildAttest(f));
  BOOST_REQUIRE_MESSAGE(a.ok(), a.status().ToString());
  BOOST_TEST(a->magic == kTpmGeneratedValue);
  BOOST_TEST(a->type == kTpmStAttestQuote);
  BOOST_TEST(ToHex(a->qualified_signer) == ToHex(f.signer));
  BOOST_TEST(ToHex(a->extra_data) == ToHex(f.nonce));
  BOOST_TEST(a->clock.clock_ms == f.clock);
  BOOST_TEST(a->clock.reset_count == f.reset_count);
  BOOST_TEST(a->clock.restart_count == f.restart_count);
  BOOST_TEST(a->clock.safe);
  BOOST_TEST(a->firmware_version == f.firmware);
  BOOST_REQUIRE(a->pcr_select.size() == 1u);
  BOOST_TEST(a->pcr_select[0].hash == kAlgSha256);
  BOOST_TEST(a->pcr_select[0].mask == kMask);
  BOOST_TEST(ToHex(a->pcr_digest) == ToHex(f.pcr_digest));
}

BOOST_AUTO_TEST_CASE(safe_no_and_safe_out_of_range) {
  QuoteFields f;
  f.safe = 0;
  auto a = ParseAttest(BuildAttest(f));
  BOOST_REQUIRE(a.ok());
  BOOST_TEST(!a->clock.safe);
  f.safe = 2;
  BOOST_TEST(!ParseAttest(BuildAttest(f)).ok());
}

BOOST_AUTO_TEST_CASE(every_truncation_is_a_parse_error_within_bounds) {
  const Bytes full = BuildAttest(QuoteFields{});
  for (size_t n = 0; n < full.size(); ++n) {
    BOOST_TEST_CONTEXT("first " << n << " of " << full.size() << " bytes") {
      auto a = ParseAttest(ByteView(full.data(), n));
      BOOST_REQUIRE(!a.ok());
      BOOST_TEST(a.status().layer() == Layer::kParse);
      BOOST_REQUIRE(a.status().offset().has_value());
      BOOST_TEST(*a.status().offset() <= n);
    }
  }
  BOOST_TEST(ParseAttest(full).ok());
}

BOOST_AUTO_TEST_CASE(trailing_bytes_are_rejected) {
  Bytes longer = BuildAttest(QuoteFields{});
  longer.push_back(0);
  auto a = ParseAttest(longer);
  BOOST_REQUIRE(!a.ok());
  BOOST_TEST(a.status().layer() == Layer::kParse);
}

BOOST_AUTO_TEST_CASE(huge_pcr_select_count_is_rejected_without_reading_on) {
  for (uint32_t count : {17u, 1000u, 0xFFFFFFFFu}) {
    BOOST_TEST_CONTEXT("count " << count) {
      const QuoteFields f;
      ByteWriter w;
      w.U32(f.magic).U16(f.type).Sized16(f.signer).Sized16(f.nonce);
      w.U64(f.clock).U32(f.reset_count).U32(f.restart_count).U8(f.safe).U64(f.firmware);
      const size_t count_at = w.bytes().size();
      w.U32(count).U16(kAlgSha256).U8(3).U8(0xFF).U8(0xFF).U8(0xFF).Sized16(f.pcr_digest);
      auto a = ParseAttest(w.bytes());
      BOOST_REQUIRE(!a.ok());
      BOOST_TEST(a.status().layer() == Layer::kParse);
      BOOST_TEST(Contains(a.status().message(), "count"), a.status().message());
      BOOST_TEST(a.status().offset().value_or(0) >= count_at);
    }
  }
}

BOOST_AUTO_TEST_CASE(oversized_fields_are_rejected) {
  QuoteFields f;
  f.nonce = Bytes(65, 0x01);  // TPM2B_DATA holds at most 64
  BOOST_TEST(!ParseAttest(BuildAttest(f)).ok());

  f = QuoteFields{};
  f.pcr_digest = Bytes(65, 0x02);
  BOOST_TEST(!ParseAttest(BuildAttest(f)).ok());

  // sizeofSelect 200: a bitmap that cannot exist.
  f = QuoteFields{};
  ByteWriter w;
  w.U32(f.magic).U16(f.type).Sized16(f.signer).Sized16(f.nonce);
  w.U64(f.clock).U32(f.reset_count).U32(f.restart_count).U8(f.safe).U64(f.firmware);
  w.U32(1).U16(kAlgSha256).U8(200).Append(Bytes(200, 0xFF)).Sized16(f.pcr_digest);
  BOOST_TEST(!ParseAttest(w.bytes()).ok());
}

BOOST_AUTO_TEST_CASE(non_quote_attest_parses_its_header) {
  QuoteFields f;
  f.type = 0x8017;
  auto a = ParseAttest(BuildAttest(f));
  BOOST_REQUIRE_MESSAGE(a.ok(), a.status().ToString());
  BOOST_TEST(a->type == 0x8017);
  BOOST_TEST(a->clock.clock_ms == f.clock);
  BOOST_TEST(a->pcr_select.empty());
}

BOOST_AUTO_TEST_CASE(parse_signature_forms_and_errors) {
  const Bytes rsa = ByteWriter().U16(kAlgRsassa).U16(kAlgSha256).Sized16(Bytes(256, 0x33)).Take();
  auto s = ParseSignature(rsa);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  BOOST_TEST(s->sig_alg == kAlgRsassa);
  BOOST_TEST(s->hash_alg == kAlgSha256);
  BOOST_TEST(s->rsa.size() == 256u);

  const Bytes ecdsa =
      ByteWriter().U16(kAlgEcdsa).U16(kAlgSha256).Sized16(Bytes(32, 0x44)).Sized16(Bytes(32, 0x55)).Take();
  s = ParseSignature(ecdsa);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  BOOST_TEST(s->sig_alg == kAlgEcdsa);
  BOOST_TEST(ToHex(s->ecc_r) == ToHex(Bytes(32, 0x44)));
  BOOST_TEST(ToHex(s->ecc_s) == ToHex(Bytes(32, 0x55)));

  for (size_t n = 0; n < ecdsa.size(); ++n) {
    BOOST_TEST_CONTEXT("first " << n << " bytes") {
      auto cut = ParseSignature(ByteView(ecdsa.data(), n));
      BOOST_TEST(!cut.ok());
    }
  }
  const Bytes hmac = ByteWriter().U16(0x0005).U16(kAlgSha256).Append(Bytes(32, 0)).Take();
  BOOST_TEST(!ParseSignature(hmac).ok());
}

BOOST_AUTO_TEST_CASE(quote_pcr_digest_follows_selection_order) {
  const PcrValues pcrs = SomePcrs();
  auto d = QuotePcrDigest({{kAlgSha256, kMask}}, pcrs, HashAlg::kSha256);
  BOOST_REQUIRE(d.ok());
  BOOST_TEST(ToHex(*d) == ToHex(Composite(pcrs, kMask)));

  // Two selections: sha1 PCR 3, then sha256 PCR 5, hashed with SHA-256.
  Bytes joined = pcrs.at(HashAlg::kSha1)[3];
  joined.insert(joined.end(), pcrs.at(HashAlg::kSha256)[5].begin(), pcrs.at(HashAlg::kSha256)[5].end());
  d = QuotePcrDigest({{kAlgSha1, 1u << 3}, {kAlgSha256, 1u << 5}}, pcrs, HashAlg::kSha256);
  BOOST_REQUIRE(d.ok());
  BOOST_TEST(ToHex(*d) == ToHex(Sha256(joined)));

  // The scheme's hash decides the digest size, not the bank.
  d = QuotePcrDigest({{kAlgSha256, kMask}}, pcrs, HashAlg::kSha1);
  BOOST_REQUIRE(d.ok());
  BOOST_TEST(d->size() == 20u);

  BOOST_TEST(!QuotePcrDigest({{0x000C, 1}}, pcrs, HashAlg::kSha256).ok());  // sha384 not read
}

BOOST_AUTO_TEST_SUITE_END()

// A quote from the IBM TPM simulator (keylime test data, see
// ../shared/fixtures/README.md). Skipped when the fixtures are not there.
BOOST_AUTO_TEST_CASE(ibm_simulator_quote_fixture,
                     TPMLAB_NEEDS("fixtures", test::FixturesDir() / "quotes" / "ibmsim_quote.attest")) {
  const std::filesystem::path dir = test::FixturesDir() / "quotes";
  const Bytes attest = ReadFile(dir / "ibmsim_quote.attest");
  const Bytes sig = ReadFile(dir / "ibmsim_quote.sig");
  BOOST_REQUIRE(attest.size() == 133u);

  auto a = ParseAttest(attest);
  BOOST_REQUIRE_MESSAGE(a.ok(), a.status().ToString());
  BOOST_TEST(a->magic == kTpmGeneratedValue);
  BOOST_TEST(a->type == kTpmStAttestQuote);
  BOOST_TEST(a->extra_data.size() == 20u);
  BOOST_TEST(a->clock.clock_ms == 5994u);
  BOOST_TEST(a->clock.reset_count == 0u);
  BOOST_TEST(a->clock.restart_count == 0u);
  BOOST_TEST(a->clock.safe);
  BOOST_TEST(a->firmware_version == 0x2016051100162800ULL);
  BOOST_REQUIRE(a->pcr_select.size() == 1u);
  BOOST_TEST(a->pcr_select[0].hash == kAlgSha256);
  BOOST_TEST(a->pcr_select[0].mask == ((1u << 15) | (1u << 16) | (1u << 22)));
  BOOST_TEST(a->pcr_digest.size() == 32u);

  auto s = ParseSignature(sig);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  BOOST_TEST(s->sig_alg == kAlgRsassa);
  BOOST_TEST(s->hash_alg == kAlgSha256);

  // The AK comes as PEM; the harness takes DER SubjectPublicKeyInfo.
  const Bytes pem = ReadFile(dir / "ibmsim_ak.pem");
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  Key ak(PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  BOOST_REQUIRE(ak != nullptr);
  const Bytes der = testing::PublicKeyDer(ak.get());
  Status v = VerifySignature(der, attest, *s);
  BOOST_TEST(v.ok(), v.ToString());

  // The PCR values quoted, from tpm2-tools' serialized file (host-endian
  // TPML_PCR_SELECTION, a u32 count, then TPML_DIGEST at offset 136).
  const Bytes file = ReadFile(dir / "ibmsim_quote.pcrs");
  if (file.size() != 668u) {
    BOOST_TEST_MESSAGE("ibmsim_quote.pcrs is not the expected 668 bytes; PCR part skipped");
    return;
  }
  auto le32 = [&](size_t at) {
    return uint32_t{file[at]} | uint32_t{file[at + 1]} << 8 | uint32_t{file[at + 2]} << 16 |
           uint32_t{file[at + 3]} << 24;
  };
  BOOST_REQUIRE(le32(136) == 3u);
  PcrValues pcrs;
  pcrs[HashAlg::kSha256] = PcrBank{};
  const int quoted[] = {15, 16, 22};
  for (int i = 0; i < 3; ++i) {
    const size_t at = 140 + 66 * static_cast<size_t>(i);
    const size_t size = file[at] | size_t{file[at + 1]} << 8;
    BOOST_REQUIRE(size == 32u);
    pcrs[HashAlg::kSha256][quoted[i]].assign(file.begin() + static_cast<long>(at + 2),
                                             file.begin() + static_cast<long>(at + 2 + size));
  }
  BOOST_TEST(ToHex(pcrs[HashAlg::kSha256][15]) == std::string(64, '0'));
  BOOST_TEST(ToHex(pcrs[HashAlg::kSha256][16]).substr(0, 8) == "9dbb2238");
  BOOST_TEST(ToHex(pcrs[HashAlg::kSha256][22]) == std::string(64, 'f'));

  QuoteCheck c = VerifyQuote({attest, sig}, der, a->extra_data, pcrs);
  BOOST_TEST(c.verified(), c.failure);
  BOOST_TEST(ToHex(a->pcr_digest).substr(0, 8) == "ec1636c6");
}

}  // namespace tpmlab
