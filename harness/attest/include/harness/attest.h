// Quotes as a verifier sees them: TPMS_ATTEST and TPMT_SIGNATURE decoded from
// bytes, and the checks every verifier makes (signature, nonce, magic/type,
// PCR digest). Pure functions over bytes and OpenSSL; no TPM needed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "harness/tpm.h"
#include "harness/tpm_types.h"

namespace tpmlab {

inline constexpr uint32_t kTpmGeneratedValue = 0xFF544347;  // "\xffTCG"
inline constexpr uint16_t kTpmStAttestQuote = 0x8018;

struct PcrSelection {
  uint16_t hash = 0;   // TPM_ALG_ID
  uint32_t mask = 0;   // bit n = PCR n
};

// TPMS_ATTEST of a quote (big-endian TPM marshalling).
struct Attest {
  uint32_t magic = 0;
  uint16_t type = 0;
  Bytes qualified_signer;
  Bytes extra_data;  // the nonce
  ClockInfo clock;
  uint64_t firmware_version = 0;
  std::vector<PcrSelection> pcr_select;  // TPMS_QUOTE_INFO, when type is a quote
  Bytes pcr_digest;
};

/// @returns the decoded structure, or a parse error naming the byte offset.
Result<Attest> ParseAttest(ByteView bytes);

// TPMT_SIGNATURE
struct Signature {
  uint16_t sig_alg = 0;   // 0x0014 RSASSA, 0x0016 RSAPSS, 0x0018 ECDSA
  uint16_t hash_alg = 0;
  Bytes rsa;              // RSA signature
  Bytes ecc_r, ecc_s;     // ECDSA
};
Result<Signature> ParseSignature(ByteView bytes);

// The digest a quote must carry for these PCR values: H(selected PCRs in
// selection order), H being the signing scheme's hash.
Result<Bytes> QuotePcrDigest(const std::vector<PcrSelection>& selection, const PcrValues& pcrs,
                             HashAlg hash);

struct QuoteCheck {
  bool parsed = false;
  bool magic_ok = false;       // TPM_GENERATED_VALUE
  bool type_ok = false;        // TPM_ST_ATTEST_QUOTE
  bool nonce_ok = false;
  bool pcr_digest_ok = false;
  bool signature_ok = false;
  std::string failure;         // the first check that failed, in words
  Attest attest;
  bool verified() const {
    return parsed && magic_ok && type_ok && nonce_ok && pcr_digest_ok && signature_ok;
  }
};

/// Checks a quote against the AK (DER SubjectPublicKeyInfo), the nonce sent,
/// and the PCR values the verifier believes (read just before the quote).
QuoteCheck VerifyQuote(const QuoteBlob& quote, ByteView ak_public_der, ByteView nonce,
                       const PcrValues& pcrs);

/// Verifies a TPM signature over `message` with a DER public key.
Status VerifySignature(ByteView ak_public_der, ByteView message, const Signature& signature);

}  // namespace tpmlab
