#include "harness/snapshot.h"

#include <openssl/rand.h>

#include <algorithm>
#include <ctime>

namespace tpmlab {

std::string UtcNow() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof(out), "%s.%03dZ", buf, static_cast<int>(ms.count()));
  return out;
}

namespace {

// A key the TPM refused to make is evidence (EK_MISSING), not a failed
// snapshot; a transport failure still ends the snapshot.
Status KeepKey(Result<KeyInfo> r, KeyInfo& key, std::string& error) {
  if (r.ok()) {
    key = std::move(*r);
    return Status::Ok();
  }
  if (r.status().layer() != Layer::kTpm) return r.status();
  error = r.status().message();
  return Status::Ok();
}

}  // namespace

Result<Snapshot> TakeSnapshot(Tpm& tpm, const SnapshotOptions& options) {
  Snapshot s;
  s.taken_at = UtcNow();
  s.taken_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  TRY_ASSIGN(s.properties, tpm.Properties());
  TRY(KeepKey(tpm.EnsureEk(), s.ek, s.ek_error));
  TRY(KeepKey(tpm.EnsureSrk(), s.srk, s.srk_error));
  TRY(KeepKey(tpm.EnsureAk(options.ak_type), s.ak, s.ak_error));
  // The RSA certificate first (it certifies the RSA EK made above); a chip
  // provisioned with an ECC EK only has its certificate at the ECC index.
  for (uint32_t index : {kEkCertRsaIndex, kEkCertEccIndex}) {
    auto cert = tpm.NvRead(index);
    if (cert.ok()) {
      s.ek_certificate = std::move(*cert);
      s.ek_certificate_index = index;
      break;
    }
    if (cert.status().layer() != Layer::kTpm) return cert.status();
  }
  TRY_ASSIGN(s.banks, tpm.PcrBanks());
  if (s.banks.empty()) return Status::Error(Layer::kTpm, "the TPM has no PCR bank allocated");

  s.quote_bank = std::count(s.banks.begin(), s.banks.end(), options.quote_bank)
                     ? options.quote_bank
                     : s.banks.front();
  s.quote_pcrs = options.quote_pcrs;
  if (!s.ak_error.empty()) {
    TRY_ASSIGN(s.pcrs, tpm.ReadPcrs(s.banks));
    s.quote_check.failure = "no quote: the AK could not be made (" + s.ak_error + ")";
    return s;
  }
  s.nonce.resize(32);
  if (RAND_bytes(s.nonce.data(), static_cast<int>(s.nonce.size())) != 1) {
    return Status::Error(Layer::kHarness, "OpenSSL could not make a nonce");
  }
  // The wall time the quote's clock is compared with is the middle of the
  // Quote command: a slow start (EK creation, a slow bus) must not look
  // like TPM clock skew.
  const auto wall_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  // A genuine quote whose PCR digest differs from the values read means a
  // PCR moved between the read and the Quote: read and quote again. A quote
  // that fails for any other reason is kept as it is, for the verifier.
  // Every allocated bank is quoted, the requested one first: only PCR values
  // a verified quote covers are evidence (go-attestation's rule), so a
  // quote of one bank would leave the others unjudged.
  std::vector<HashAlg> quoted_banks = {s.quote_bank};
  for (HashAlg b : s.banks) {
    if (b != s.quote_bank) quoted_banks.push_back(b);
  }
  const int attempts = std::max(1, options.max_quote_attempts);
  for (s.quote_attempts = 1;; ++s.quote_attempts) {
    TRY_ASSIGN(s.pcrs, tpm.ReadPcrs(s.banks));
    if (options.between_read_and_quote) TRY(options.between_read_and_quote(tpm, s.quote_attempts));
    const int64_t quote_sent = wall_ms();
    TRY_ASSIGN(s.quote, tpm.Quote(s.ak, quoted_banks, s.quote_pcrs, s.nonce));
    const int64_t quote_back = wall_ms();
    s.taken_at_ms = (quote_sent + quote_back) / 2;
    s.quote_round_trip_ms = quote_back - quote_sent;
    s.quote_check = VerifyQuote(s.quote, s.ak.public_der, s.nonce, s.pcrs, {s.quote_bank, s.quote_pcrs});
    const bool raced = s.quote_check.parsed && s.quote_check.signature_ok && !s.quote_check.pcr_digest_ok;
    if (!raced || s.quote_attempts >= attempts) break;
  }
  return s;
}

std::map<std::string, double> LatencyByCommand(const std::vector<TraceRecord>& trace) {
  std::map<std::string, std::vector<double>> all;
  for (const auto& r : trace) {
    if (r.failed) continue;
    all[TpmCommandName(r.command_code)].push_back(
        std::chrono::duration<double, std::micro>(r.duration).count());
  }
  std::map<std::string, double> median;
  for (auto& [name, v] : all) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    median[name] = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
  return median;
}

}  // namespace tpmlab
