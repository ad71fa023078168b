#include "harness/attest.h"

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

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

QuoteCheck VerifyQuote(const QuoteBlob& quote, ByteView ak_public_der, ByteView nonce,
                       const PcrValues& pcrs) {
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
    Status v = VerifySignature(ak_public_der, quote.attest, *sig);
    c.signature_ok = v.ok();
    if (!v.ok()) fail(v.message());
    auto alg = HashAlgFromId(sig->hash_alg);
    auto expected = alg ? QuotePcrDigest(attest->pcr_select, pcrs, *alg)
                        : Result<Bytes>(Status::Error(Layer::kHarness, "unknown hash"));
    c.pcr_digest_ok = expected.ok() && *expected == attest->pcr_digest;
    if (!c.pcr_digest_ok) fail("pcrDigest does not match the PCRs read");
  }
  return c;
}

}  // namespace tpmlab
