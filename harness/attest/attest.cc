#include "harness/attest.h"

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cstdio>

namespace tpmlab {

Result<Attest> ParseAttest(ByteView bytes) {
  ByteReader r(bytes, "TPMS_ATTEST");
  Attest a;
  TRY_ASSIGN(a.magic, r.U32());
  TRY_ASSIGN(a.type, r.U16());
  TRY_ASSIGN(ByteView signer, r.Sized16("qualifiedSigner", 2 + 64));
  a.qualified_signer.assign(signer.begin(), signer.end());
  TRY_ASSIGN(ByteView extra, r.Sized16("extraData", 64));
  a.extra_data.assign(extra.begin(), extra.end());
  TRY_ASSIGN(a.clock.clock_ms, r.U64());
  TRY_ASSIGN(a.clock.reset_count, r.U32());
  TRY_ASSIGN(a.clock.restart_count, r.U32());
  TRY_ASSIGN(uint8_t safe, r.U8());
  if (safe > 1) return r.Error("clockInfo.safe is neither YES nor NO");
  a.clock.safe = safe == 1;
  TRY_ASSIGN(a.firmware_version, r.U64());
  if (a.type != kTpmStAttestQuote) return a;  // other attestation types: header only

  TRY_ASSIGN(uint32_t count, r.U32());
  if (count > 16) return r.Error("pcrSelect count " + std::to_string(count) + " exceeds 16");
  for (uint32_t i = 0; i < count; ++i) {
    PcrSelection sel;
    TRY_ASSIGN(sel.hash, r.U16());
    TRY_ASSIGN(uint8_t size, r.U8());
    if (size > 4) return r.Error("sizeofSelect " + std::to_string(size) + " exceeds 4");
    TRY_ASSIGN(ByteView map, r.Take(size, "pcrSelect"));
    for (size_t b = 0; b < map.size(); ++b) sel.mask |= uint32_t{map[b]} << (8 * b);
    a.pcr_select.push_back(sel);
  }
  TRY_ASSIGN(ByteView digest, r.Sized16("pcrDigest", 64));
  a.pcr_digest.assign(digest.begin(), digest.end());
  if (!r.empty()) return r.Error("trailing bytes after TPMS_QUOTE_INFO");
  return a;
}

Result<Signature> ParseSignature(ByteView bytes) {
  ByteReader r(bytes, "TPMT_SIGNATURE");
  Signature s;
  TRY_ASSIGN(s.sig_alg, r.U16());
  TRY_ASSIGN(s.hash_alg, r.U16());
  if (s.sig_alg == 0x0014 || s.sig_alg == 0x0016) {
    TRY_ASSIGN(ByteView sig, r.Sized16("signature", 512));
    s.rsa.assign(sig.begin(), sig.end());
  } else if (s.sig_alg == 0x0018) {
    TRY_ASSIGN(ByteView rr, r.Sized16("signatureR", 66));
    TRY_ASSIGN(ByteView ss, r.Sized16("signatureS", 66));
    s.ecc_r.assign(rr.begin(), rr.end());
    s.ecc_s.assign(ss.begin(), ss.end());
  } else {
    return r.Error("unsupported signature algorithm " + std::to_string(s.sig_alg));
  }
  return s;
}

Result<Bytes> QuotePcrDigest(const std::vector<PcrSelection>& selection, const PcrValues& pcrs,
                             HashAlg hash) {
  Bytes joined;
  for (const auto& sel : selection) {
    auto alg = HashAlgFromId(sel.hash);
    if (!alg || !pcrs.count(*alg)) {
      return Status::Error(Layer::kHarness, "quote selects a bank whose PCRs were not read");
    }
    for (int pcr = 0; pcr < kPcrCount; ++pcr) {
      if (!(sel.mask & (1u << pcr))) continue;
      const Bytes& v = pcrs.at(*alg)[pcr];
      joined.insert(joined.end(), v.begin(), v.end());
    }
  }
  return Hash(hash, joined);
}

Status VerifySignature(ByteView der, ByteView message, const Signature& sig) {
  const unsigned char* p = der.data();
  EVP_PKEY* key = d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()));
  if (key == nullptr) return Status::Parse("AK public key is not DER SubjectPublicKeyInfo");
  auto alg = HashAlgFromId(sig.hash_alg);
  const EVP_MD* md = !alg ? nullptr
                     : *alg == HashAlg::kSha1   ? EVP_sha1()
                     : *alg == HashAlg::kSha256 ? EVP_sha256()
                     : *alg == HashAlg::kSha384 ? EVP_sha384()
                     : *alg == HashAlg::kSha512 ? EVP_sha512()
                                                : nullptr;
  Bytes signature = sig.rsa;
  if (sig.sig_alg == 0x0018) {
    ECDSA_SIG* es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_bin2bn(sig.ecc_r.data(), static_cast<int>(sig.ecc_r.size()), nullptr),
                   BN_bin2bn(sig.ecc_s.data(), static_cast<int>(sig.ecc_s.size()), nullptr));
    int len = i2d_ECDSA_SIG(es, nullptr);
    signature.resize(len > 0 ? static_cast<size_t>(len) : 0);
    unsigned char* out = signature.data();
    if (len > 0) i2d_ECDSA_SIG(es, &out);
    ECDSA_SIG_free(es);
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  bool ok = md != nullptr && EVP_DigestVerifyInit(ctx, &pctx, md, nullptr, key) == 1;
  if (ok && sig.sig_alg == 0x0016) {
    ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) == 1;
  }
  const int verdict = ok ? EVP_DigestVerify(ctx, signature.data(), signature.size(),
                                            message.data(), message.size())
                         : -1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  if (md == nullptr) return Status::Error(Layer::kHarness, "unsupported signature hash");
  if (verdict != 1) return Status::Error(Layer::kHarness, "signature does not verify with the AK");
  return Status::Ok();
}

std::string SignatureSchemeName(uint16_t sig_alg) {
  switch (sig_alg) {
    case kTpmAlgRsassa: return "rsassa";
    case kTpmAlgRsapss: return "rsapss";
    case kTpmAlgEcdsa: return "ecdsa";
  }
  char id[8];
  std::snprintf(id, sizeof(id), "0x%04x", sig_alg);
  return id;
}

uint32_t SelectedPcrs(const Attest& attest, HashAlg bank) {
  uint32_t mask = 0;
  for (const auto& sel : attest.pcr_select) {
    if (HashAlgFromId(sel.hash) == bank) mask |= sel.mask;
  }
  return mask;
}

bool QuoteCheck::Covers(HashAlg bank, int pcr) const {
  return verified() && pcr >= 0 && pcr < kPcrCount && (SelectedPcrs(attest, bank) & (1u << pcr)) != 0;
}

namespace {

// Only the schemes and hash the verifier accepts (Keylime's tenant takes
// rsassa/ecschnorr signatures with sha256/384/512; go-attestation verifies
// with the AK's own scheme): RSA-PSS and any hash but the requested one fail.
std::string SchemeRefusal(const Signature& sig, HashAlg wanted) {
  if (sig.sig_alg != kTpmAlgRsassa && sig.sig_alg != kTpmAlgEcdsa) {
    return "signature scheme " + SignatureSchemeName(sig.sig_alg) + " is not accepted (rsassa or ecdsa only)";
  }
  auto hash = HashAlgFromId(sig.hash_alg);
  if (!hash || *hash != wanted) {
    return std::string("signature hash ") + (hash ? HashAlgName(*hash) : "unknown") + " is not the " +
           HashAlgName(wanted) + " the verifier accepts";
  }
  return "";
}

}  // namespace

QuoteCheck VerifyQuote(const QuoteBlob& quote, ByteView ak_public_der, ByteView nonce,
                       const PcrValues& pcrs, const QuoteRequest& request) {
  QuoteCheck c;
  auto fail = [&c](std::string why) {
    if (c.failure.empty()) c.failure = std::move(why);
  };
  auto attest = ParseAttest(quote.attest);
  if (!attest.ok()) {
    fail(attest.status().message());
    return c;
  }
  c.parsed = true;
  c.attest = *attest;
  c.magic_ok = attest->magic == kTpmGeneratedValue;
  if (!c.magic_ok) fail("magic is not TPM_GENERATED_VALUE");
  c.type_ok = attest->type == kTpmStAttestQuote;
  if (!c.type_ok) fail("type is not TPM_ST_ATTEST_QUOTE");
  c.nonce_ok = Bytes(nonce.begin(), nonce.end()) == attest->extra_data;
  if (!c.nonce_ok) fail("extraData does not echo the nonce");

  auto sig = ParseSignature(quote.signature);
  if (!sig.ok()) {
    fail(sig.status().message());
  } else {
    const std::string refused = SchemeRefusal(*sig, request.signature_hash);
    c.scheme_ok = refused.empty();
    if (!c.scheme_ok) fail(refused);
    Status v = VerifySignature(ak_public_der, quote.attest, *sig);
    c.signature_ok = c.scheme_ok && v.ok();
    if (!v.ok()) fail(v.message());
    auto alg = HashAlgFromId(sig->hash_alg);
    auto expected = alg ? QuotePcrDigest(attest->pcr_select, pcrs, *alg)
                        : Result<Bytes>(Status::Error(Layer::kHarness, "unknown hash"));
    c.pcr_digest_ok = expected.ok() && *expected == attest->pcr_digest;
    if (!c.pcr_digest_ok) fail("pcrDigest does not match the PCRs read");
  }
  // A validly signed quote over fewer PCRs vouches for nothing beyond them.
  c.covers_request = (SelectedPcrs(c.attest, request.bank) & request.pcrs) == request.pcrs;
  if (!c.covers_request) fail(std::string("the quote does not select every ") + HashAlgName(request.bank) + " PCR requested");
  return c;
}

}  // namespace tpmlab
