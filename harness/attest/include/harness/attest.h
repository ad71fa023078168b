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

// What a verifier asked for and accepts: the PCRs the quote must cover, and
// the one signing hash it takes (RSASSA or ECDSA with it; never SHA-1 or
// RSA-PSS: Keylime's accepted signing algorithms are rsassa/ecschnorr and its
// hashes sha256/384/512). The default requires no PCR at all.
struct QuoteRequest {
  HashAlg bank = HashAlg::kSha256;
  uint32_t pcrs = 0;  // bit n = PCR n of `bank`
  HashAlg signature_hash = HashAlg::kSha256;
};

inline constexpr uint16_t kTpmAlgRsassa = 0x0014;
inline constexpr uint16_t kTpmAlgRsapss = 0x0016;
inline constexpr uint16_t kTpmAlgEcdsa = 0x0018;

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
  bool scheme_ok = false;      // RSASSA or ECDSA with the requested hash
  bool signature_ok = false;   // the scheme is accepted and the signature verifies
  bool covers_request = false;  // the quote selects every PCR requested
  std::string failure;         // the first check that failed, in words
  Attest attest;
  bool verified() const {
    return parsed && magic_ok && type_ok && nonce_ok && pcr_digest_ok && signature_ok && covers_request;
  }
  /// Whether this quote verified and vouches for PCR `pcr` of `bank`.
  bool Covers(HashAlg bank, int pcr) const;
};

/// Checks a quote against the AK (DER SubjectPublicKeyInfo), the nonce sent,
/// the PCR values the verifier believes (read just before the quote) and
/// what the verifier asked for.
QuoteCheck VerifyQuote(const QuoteBlob& quote, ByteView ak_public_der, ByteView nonce,
                       const PcrValues& pcrs, const QuoteRequest& request = {});

/// "rsassa", "ecdsa", "rsapss" or the number.
std::string SignatureSchemeName(uint16_t sig_alg);

/// The PCRs a quote selects in `bank` (bit n = PCR n).
uint32_t SelectedPcrs(const Attest& attest, HashAlg bank);

/// Verifies a TPM signature over `message` with a DER public key.
Status VerifySignature(ByteView ak_public_der, ByteView message, const Signature& signature);

}  // namespace tpmlab
