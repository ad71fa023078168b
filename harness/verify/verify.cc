// The Judge: one class of ~600 lines on purpose — its checks share one
// verdict and one trust state (the verifier's own check of the quote, and
// so which PCR values are evidence); split, that state would be passed
// around. How alarms are named, described and written is alarms.cc.
#include "harness/verify.h"

#include <algorithm>
#include <cstdlib>
#include <set>

#include "harness/attest.h"
#include "harness/ek_certificate.h"
#include "harness/event_data.h"
#include "harness/eventlog.h"
#include "harness/findings.h"
#include "harness/replay.h"

namespace tpmlab {

namespace {

class Judge {
 public:
  Judge(const Snapshot& now, const Snapshot* previous, const Enrollment* enrollment,
        const VerifyOptions& options)
      : now_(now), previous_(previous), enrollment_(enrollment), options_(options) {}

  Verdict Run() {
    Quote();
    Keys();
    Banks();
    Log();
    Counters();
    Enrolled();
    return std::move(v_);
  }

 private:
  void Raise(const char* code, Severity severity, std::string message,
             std::map<std::string, std::string> evidence = {}) {
    v_.alarms.push_back({code, severity, std::move(message), std::move(evidence)});
  }
  void NotRun(const char* code, const std::string& why) { v_.not_run.push_back(std::string(code) + ": " + why); }

  static std::string Num(uint64_t v) { return std::to_string(v); }

  // The verifier's own check of the quote: with the enrolled AK when there
  // is an enrollment (Keylime verifies with the registrar's AIK,
  // go-attestation with the enrolled AK), the PCRs and nonce it asked for,
  // and the one signing hash it accepts.
  void Quote() {
    const bool no_quote = !now_.ak_error.empty() || now_.quote.attest.empty();
    AkIdentity(no_quote);
    if (no_quote) {
      // Keylime fails quote_validation when the agent returns no quote.
      const std::string why = !now_.ak_error.empty() ? "the AK could not be made: " + now_.ak_error
                              : now_.quote_check.failure.empty() ? std::string("the evidence holds no quote")
                                                                 : now_.quote_check.failure;
      Raise(alarm::kQuoteMissing, Severity::kError, "No attestation quote: " + why, {{"detail", why}});
      return;
    }
    QuoteRequest request{now_.quote_bank, now_.quote_pcrs, HashAlg::kSha256};
    if (enrollment_ != nullptr && enrollment_->quote_request) request.signature_hash = enrollment_->quote_request->signature_hash;
    const Bytes& ak = enrollment_ != nullptr ? enrollment_->ak_public_der : now_.ak.public_der;
    quote_ = VerifyQuote(now_.quote, ak, now_.nonce, now_.pcrs, request);
    const QuoteCheck& q = quote_;
    if (!q.parsed || !q.magic_ok || !q.type_ok) {
      Raise(alarm::kQuoteMalformed, Severity::kError, "The attestation quote is malformed: " + q.failure,
            {{"detail", q.failure}});
      return;
    }
    auto sig = ParseSignature(now_.quote.signature);
    if (!sig.ok()) {
      Raise(alarm::kQuoteMalformed, Severity::kError, "The quote's signature is malformed: " + sig.status().message(),
            {{"detail", sig.status().message()}});
      return;
    }
    if (!q.signature_ok) {
      auto hash = HashAlgFromId(sig->hash_alg);
      Raise(alarm::kQuoteSignatureInvalid, Severity::kError,
            q.scheme_ok ? std::string("The quote's signature does not verify with the ") +
                              (enrollment_ != nullptr ? "enrolled" : "evidence's") + " attestation key"
                        : "The quote's signature scheme or hash is not one the verifier accepts",
            {{"ak_name", ToHex(enrollment_ != nullptr ? enrollment_->ak_name : now_.ak.name)},
             {"scheme", SignatureSchemeName(sig->sig_alg) + "-" + (hash ? HashAlgName(*hash) : "unknown")},
             {"detail", SignatureFailure(*sig, request)}});
    }
    QualifiedSigner();
    Nonce();
    if (!q.pcr_digest_ok) {
      Raise(alarm::kQuotePcrDigestMismatch, Severity::kError,
            "The quote's PCR digest does not match the PCR values reported with it",
            {{"bank", HashAlgName(now_.quote_bank)}, {"actual", ToHex(q.attest.pcr_digest)}});
    }
    if (!q.covers_request) {
      const uint32_t covered = SelectedPcrs(q.attest, request.bank);
      Raise(alarm::kQuotePcrDigestMismatch, Severity::kError,
            "The quote does not cover the PCRs the verifier asked for",
            {{"bank", HashAlgName(request.bank)}, {"expected", PcrRanges(request.pcrs)}, {"actual", PcrRanges(covered)},
             {"detail", "not quoted: " + PcrRanges(request.pcrs & ~covered)}});
    }
  }

  // Why the signature failed, in words: the scheme refused, or the key.
  std::string SignatureFailure(const Signature& sig, const QuoteRequest& request) const {
    if (sig.sig_alg != kTpmAlgRsassa && sig.sig_alg != kTpmAlgEcdsa) {
      return SignatureSchemeName(sig.sig_alg) + " is not accepted: rsassa or ecdsa only";
    }
    if (auto hash = HashAlgFromId(sig.hash_alg); hash != request.signature_hash) {
      return std::string("signed with ") + (hash ? HashAlgName(*hash) : "an unknown hash") + ", the verifier accepts " +
             HashAlgName(request.signature_hash) + " only";
    }
    return std::string("the signature does not verify with the ") +
           (enrollment_ != nullptr ? "enrolled AK's public key" : "AK public key the evidence holds");
  }

  // AK_UNKNOWN: the evidence must name the enrolled AK, by name and public
  // key; naming none while the DUT is enrolled is an alarm, never a skip.
  void AkIdentity(bool no_quote) {
    if (enrollment_ == nullptr) {
      NotRun(alarm::kAkUnknown, "not enrolled; the quote was checked with the AK the evidence names");
      return;
    }
    const Enrollment& e = *enrollment_;
    const bool names_none = now_.ak.name.empty() && now_.ak.public_der.empty();
    if (names_none) {
      Raise(alarm::kAkUnknown, Severity::kError, "The evidence names no attestation key, but the host is enrolled with one",
            {{"expected", ToHex(e.ak_name)}, {"actual", ""},
             {"detail", no_quote && !now_.ak_error.empty() ? now_.ak_error : "no AK in the evidence"}});
      return;
    }
    const bool name_differs = !now_.ak.name.empty() && now_.ak.name != e.ak_name;
    const bool key_differs = !now_.ak.public_der.empty() && now_.ak.public_der != e.ak_public_der;
    if (name_differs || key_differs) {
      Raise(alarm::kAkUnknown, Severity::kError, "The attestation key is not the one enrolled for this host",
            {{"expected", ToHex(name_differs ? e.ak_name : e.ak_public_der)},
             {"actual", ToHex(name_differs ? now_.ak.name : now_.ak.public_der)},
             {"detail", name_differs ? "AK name differs" : "AK public key differs"}});
    }
  }

  // The quote names its signer (TPMS_ATTEST.qualifiedSigner); it must be the
  // enrolled AK's qualified name.
  void QualifiedSigner() {
    if (enrollment_ == nullptr) return;  // AkIdentity listed AK_UNKNOWN as not run
    if (enrollment_->ak_qualified_name.empty()) {
      NotRun(alarm::kAkUnknown, "the enrollment records no AK qualified name (an older enrollment file): the quote's "
                                "qualifiedSigner was not compared");
      return;
    }
    if (quote_.attest.qualified_signer != enrollment_->ak_qualified_name) {
      Raise(alarm::kAkUnknown, Severity::kError, "The quote names another signer than the enrolled attestation key",
            {{"expected", ToHex(enrollment_->ak_qualified_name)}, {"actual", ToHex(quote_.attest.qualified_signer)},
             {"detail", "qualifiedSigner differs from the enrolled AK's qualified name"}});
    }
  }

  // The nonce is the verifier's: one must have been sent (Keylime always
  // sends one), the quote must echo it, and it must not be the nonce of the
  // previous quote (a replay).
  void Nonce() {
    const QuoteCheck& q = quote_;
    if (now_.nonce.empty()) {
      Raise(alarm::kQuoteNonceMismatch, Severity::kError,
            "No nonce was sent with the quote request: the quote proves no freshness",
            {{"expected", ""}, {"actual", ToHex(q.attest.extra_data)}, {"detail", "no nonce requested"}});
      return;
    }
    if (!q.nonce_ok) {
      Raise(alarm::kQuoteNonceMismatch, Severity::kError,
            "The quote does not carry the nonce the verifier sent (a replayed quote?)",
            {{"expected", ToHex(now_.nonce)}, {"actual", ToHex(q.attest.extra_data)}});
      return;
    }
    if (previous_ == nullptr) return;
    // The previous request's nonce, or what its quote echoed.
    const Bytes& sent_before = previous_->nonce;
    const Bytes& echoed_before = previous_->quote_check.attest.extra_data;
    const Bytes& echoed = q.attest.extra_data;
    if ((!sent_before.empty() && echoed == sent_before) || (!echoed_before.empty() && echoed == echoed_before)) {
      Raise(alarm::kQuoteNonceMismatch, Severity::kError,
            "The quote carries the previous quote's nonce: a replayed quote",
            {{"expected", "a nonce other than the previous one"}, {"actual", ToHex(echoed)},
             {"replayed", "true"}, {"detail", "replayed: the nonce of the previous snapshot"}});
    }
  }

 public:
  /// Whether PCR `pcr` of `bank` may be believed: the verifier's own check
  /// of the quote passed and the quote covers that PCR (go-attestation
  /// trusts only quote-covered PCR values).
  bool Trusted(HashAlg bank, int pcr) const {
    return quote_.Covers(bank, pcr) || (options_.trust_unquoted_pcrs && pcr >= 0 && pcr < kPcrCount);
  }

 private:
  // "0-7,10,14-15"
  static std::string PcrRanges(uint32_t mask) {
    std::string out;
    for (int i = 0; i < kPcrCount; ++i) {
      if (!(mask & (1u << i))) continue;
      int j = i;
      while (j + 1 < kPcrCount && (mask & (1u << (j + 1)))) ++j;
      out += (out.empty() ? "" : ",") + std::to_string(i) + (j > i ? "-" + std::to_string(j) : "");
      i = j;
    }
    return out.empty() ? "none" : out;
  }

  void Keys() {
    if (!now_.ek_error.empty() || now_.ek.name.empty()) {
      Raise(alarm::kEkMissing, Severity::kError,
            "Unable to provision Endorsement Key on TPM 2.0 device: Endorsement Key creation failed on the device",
            {{"detail", now_.ek_error}});
    }
    EkCertificate();
    Hierarchies();
  }

  static std::string NvIndexHex(uint32_t index) {
    char hex[16];
    std::snprintf(hex, sizeof(hex), "0x%08x", index);
    return hex;
  }

  // The EK certificate from NV (RSA, else ECC P-256): present, a certificate,
  // of the EK's public key, and — when roots are configured — issued by one
  // of them (Keylime's registrar checks the chain against its
  // tpm_cert_store; go-attestation leaves the chain to its caller).
  void EkCertificate() {
    const std::string indexes = NvIndexHex(kEkCertRsaIndex) + ", " + NvIndexHex(kEkCertEccIndex);
    if (!now_.ek_certificate) {
      Raise(alarm::kEkCertMissing, Severity::kError,
            "Unable to provision Endorsement Key on TPM 2.0 device: No Endorsement Key certificate "
            "found in TPM 2.0 device's non-volatile memory (neither the RSA nor the ECC index).",
            {{"nv_index", indexes}});
      NotRun(alarm::kEkCertInvalid, "no EK certificate");
      return;
    }
    const std::string index = NvIndexHex(now_.ek_certificate_index ? now_.ek_certificate_index : kEkCertRsaIndex);
    auto key = CertificatePublicKey(*now_.ek_certificate);
    if (!key.ok()) {
      Raise(alarm::kEkCertInvalid, Severity::kError, "The EK certificate in NV is not an X.509 certificate",
            {{"nv_index", index}, {"detail", key.status().message()}});
      return;
    }
    if (now_.ek.public_der.empty()) {
      NotRun(alarm::kEkCertInvalid, "no EK public key to compare the certificate's key with");
    } else if (PublicKeyKind(*key) != PublicKeyKind(now_.ek.public_der)) {
      // tpmlab makes the RSA EK; a chip with only an ECC certificate has an
      // ECC EK tpmlab did not make, so there is nothing to compare it with.
      NotRun(alarm::kEkCertInvalid, "the certificate at " + index + " certifies an " + PublicKeyKind(*key) +
                                        " key and the EK read is " + PublicKeyKind(now_.ek.public_der) +
                                        ": keys not compared");
    } else if (*key != now_.ek.public_der) {
      Raise(alarm::kEkCertInvalid, Severity::kError,
            "The EK certificate certifies another key than the TPM's endorsement key",
            {{"nv_index", index}, {"expected", ToHex(now_.ek.public_der)}, {"actual", ToHex(*key)}});
    }
    if (options_.ek_roots.empty()) {
      NotRun(alarm::kEkCertInvalid, "chain not checked: no manufacturer roots configured (--ek-roots)");
      return;
    }
    if (Status chain = VerifyEkCertificateChain(*now_.ek_certificate, options_.ek_roots); !chain.ok()) {
      Raise(alarm::kEkCertInvalid, Severity::kError,
            "The EK certificate is not issued by a trusted TPM manufacturer",
            {{"nv_index", index}, {"detail", chain.message()}});
    }
  }

  // Firmware commonly disables the platform hierarchy before the OS runs
  // (TPM2_HierarchyControl from the BIOS), which attestation does not need:
  // a warning. Owner or endorsement off stops the EK/AK: an error. Doctor's
  // hierarchies item judges the same way.
  void Hierarchies() {
    const TpmProperties& p = now_.properties;
    if (p.platform_enabled && p.owner_enabled && p.endorsement_enabled) return;
    std::string off;
    if (!p.platform_enabled) off += "platform ";
    if (!p.owner_enabled) off += "owner ";
    if (!p.endorsement_enabled) off += "endorsement ";
    off.pop_back();
    const bool only_platform = p.owner_enabled && p.endorsement_enabled;
    Raise(alarm::kHierarchyDisabled, only_platform ? Severity::kWarning : Severity::kError,
          "TPM hierarchy disabled: " + off, {{"disabled", off}});
  }

  void Banks() {
    if (std::find(now_.banks.begin(), now_.banks.end(), HashAlg::kSha256) == now_.banks.end()) {
      std::string banks;
      for (HashAlg b : now_.banks) banks += std::string(banks.empty() ? "" : ",") + HashAlgName(b);
      Raise(alarm::kSha256BankMissing, Severity::kError,
            "TPM 2.0 device detected but a connection cannot be established: the SHA-256 PCR bank is "
            "not active (TPM2 Algorithm Selection is not SHA256)",
            {{"banks", banks}});
    }
  }

  void Log() {
    static const char* kLogChecks[] = {alarm::kPcrReplayMismatch, alarm::kEventDigestMismatch,
                                       alarm::kUnknownEventType, alarm::kSecureBootDisabled};
    if (!now_.eventlog) {
      for (const char* c : kLogChecks) NotRun(c, "no event log");
      return;
    }
    auto log = ParseEventLog(*now_.eventlog);
    if (!log.ok()) {
      Raise(alarm::kEventlogMalformed, Severity::kError, "The TCG event log is malformed: " + log.status().message(),
            {{"offset", log.status().offset() ? Num(*log.status().offset()) : ""}});
      for (const char* c : kLogChecks) NotRun(c, "the event log is malformed");
      return;
    }
    const std::string unreplayed = Replay(*log);
    for (const Finding& f : CheckEventLog(*log)) {
      const std::map<std::string, std::string> evidence = {
          {"event", Num(f.event_index)}, {"pcr", Num(f.pcr)}, {"type", EventTypeName(f.type)},
          {"offset", Num(f.offset)}, {"detail", f.message}};
      if (f.code == alarm::kEventDigestMismatch) {
        Raise(alarm::kEventDigestMismatch, Severity::kWarning,
              "Event " + Num(f.event_index) + " on PCR " + Num(f.pcr) + ": its digest does not match its data",
              evidence);
      } else if (f.code == alarm::kUnknownEventType) {
        Raise(alarm::kUnknownEventType, Severity::kWarning,
              "Event " + Num(f.event_index) + " has an unknown event type " + EventTypeName(f.type), evidence);
      }
    }
    SecureBoot(*log, unreplayed);
  }

  // Keylime's invalid_pcr_N: the log must replay to the PCRs the quote covers.
  // Compared: the replay scope (ReplayScope in harness/replay.h: Keylime's
  // measured-boot PCRs 0-9 and 11-15, a PCR without events at its reset
  // value; DRTM PCRs 17-22 the log extends; never IMA's PCR 10).
  // Returns why the log's events are not verified by its replay ("" when
  // they are), for the checks that trust its events.
  std::string Replay(const EventLog& log) {
    auto replay = ReplayEventLog(log);
    if (!replay.ok()) {
      NotRun(alarm::kPcrReplayMismatch, replay.status().message());
      return "the log could not be replayed: " + replay.status().message();
    }
    const size_t mismatches_before = v_.Count(alarm::kPcrReplayMismatch);
    bool pcr7_compared = false;
    for (const auto& [bank, values] : now_.pcrs) {
      if (!replay->pcrs.count(bank)) NotRun(alarm::kPcrReplayMismatch, std::string("the log has no ") + HashAlgName(bank) + " digests");
    }
    for (const auto& [bank, values] : replay->pcrs) {
      auto read = now_.pcrs.find(bank);
      if (read == now_.pcrs.end()) continue;
      // PCR values no verified quote covers are not evidence (go-attestation).
      uint32_t compared = 0;
      const uint32_t scope = ReplayScope(*replay, bank);
      for (int i = 0; i < kPcrCount; ++i) {
        if ((scope & (1u << i)) && Trusted(bank, i)) compared |= 1u << i;
      }
      if (const uint32_t untrusted = scope & ~compared; untrusted != 0) {
        NotRun(alarm::kPcrReplayMismatch,
               "PCR " + PcrRanges(untrusted) + " (" + HashAlgName(bank) + ") not covered by a verified quote");
      }
      pcr7_compared |= (compared & (1u << 7)) != 0;
      for (int i = 0; i < kPcrCount; ++i) {
        if (!(compared & (1u << i)) || values[i] == read->second[i]) continue;
        Raise(alarm::kPcrReplayMismatch, Severity::kError,
              "PCR " + Num(i) + " (" + HashAlgName(bank) + ") does not match the event log replay "
              "(Keylime: invalid_pcr_" + Num(i) + ")",
              {{"bank", HashAlgName(bank)}, {"pcr", Num(i)}, {"expected", ToHex(values[i])},
               {"actual", ToHex(read->second[i])}});
      }
    }
    if (!pcr7_compared) {
      return "PCR 7 was not compared with the log's replay (no bank in common, or no verified quote covers it), so its "
             "events are not verified";
    }
    if (v_.Count(alarm::kPcrReplayMismatch) != mismatches_before) {
      return "the log does not replay to the PCRs (PCR_REPLAY_MISMATCH), so none of its events is verified";
    }
    return "";
  }

  // vCenter requires UEFI Secure Boot; the log's PCR7 SecureBoot variable
  // says, read as go-attestation's ParseSecurebootState reads it, and only
  // from a log that replays to the PCRs (go-attestation's EventLog.Verify
  // yields no events of a log that does not):
  //   the event's digests must be of its data; the variable exactly one
  //   byte, enabled only when it is 1; no second SecureBoot event; none after
  //   PCR7's separator. go-attestation errors on each of these (the state
  //   cannot be established): tpmlab raises SECURE_BOOT_DISABLED saying so.
  //   No SecureBoot variable at all is "not enabled".
  // The variable is EFI_GLOBAL_VARIABLE's (UEFI spec, Globally Defined
  // Variables); go-attestation matches the name only, tpmlab the GUID too.
  void SecureBoot(const EventLog& log, const std::string& unreplayed) {
    static constexpr char kEfiGlobalVariable[] = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
    if (!unreplayed.empty()) {
      NotRun(alarm::kSecureBootDisabled, unreplayed);
      return;
    }
    std::optional<size_t> found, separator;
    std::string unestablished;  // why the state cannot be established
    Bytes value;
    for (size_t i = 0; i < log.events().size() && unestablished.empty(); ++i) {
      const Event& e = log.events()[i];
      if (e.pcr != 7) continue;
      if (e.type == ev::kSeparator) {
        if (!separator) separator = i;
        continue;
      }
      if (e.type != ev::kEfiVariableDriverConfig) continue;
      auto var = ParseUefiVariable(log.Data(e));
      if (!var.ok() || var->name != "SecureBoot" || var->guid != kEfiGlobalVariable) continue;
      const std::string where = "event " + Num(i);
      if (found) {
        unestablished = "a second SecureBoot variable (" + where + "; the first is event " + Num(*found) + ")";
      } else if (separator) {
        unestablished = "the SecureBoot variable (" + where + ") follows PCR 7's separator (event " +
                        Num(*separator) + ")";
      } else if (auto bank = DigestNotOfData(log, e)) {
        unestablished = "the " + *bank + " digest of the SecureBoot variable (" + where + ") is not of its data";
      } else if (var->data.size() != 1) {
        unestablished = "the SecureBoot variable (" + where + ") holds " + Num(var->data.size()) + " bytes, not 1";
      }
      found = i;
      value.assign(var->data.begin(), var->data.end());
    }
    if (!unestablished.empty()) {
      Raise(alarm::kSecureBootDisabled, Severity::kError,
            "Host Secure Boot cannot be established from the event log: " + unestablished,
            {{"event", Num(*found)}, {"pcr", "7"}, {"detail", unestablished}});
      return;
    }
    if (!found) {
      Raise(alarm::kSecureBootDisabled, Severity::kError, "Host Secure Boot was disabled",
            {{"pcr", "7"}, {"detail", "the log has no SecureBoot variable event (go-attestation: not enabled)"}});
      return;
    }
    if (value[0] != 1) {
      Raise(alarm::kSecureBootDisabled, Severity::kError, "Host Secure Boot was disabled",
            {{"event", Num(*found)}, {"pcr", "7"}, {"actual", ToHex(value)}});
    }
  }

  // The first bank whose digest of `e` is not the hash of its data; none
  // when every digest OpenSSL can compute matches.
  static std::optional<std::string> DigestNotOfData(const EventLog& log, const Event& e) {
    for (uint32_t k = 0; k < e.digest_count; ++k) {
      const auto& d = log.DigestAt(e, k);
      auto alg = HashAlgFromId(d.alg);
      if (!alg) continue;
      auto hashed = Hash(*alg, log.Data(e));
      if (!hashed.ok()) continue;  // an algorithm OpenSSL cannot compute: not checked
      const ByteView logged = log.DigestBytes(d);
      if (!std::equal(hashed->begin(), hashed->end(), logged.begin(), logged.end())) return HashAlgName(*alg);
    }
    return std::nullopt;
  }

  // Whether two snapshots are of one TPM: the same EK (name and public key),
  // or, where one carries no EK (loose files), the same AK public key.
  static std::string OtherTpm(const Snapshot& a, const Snapshot& b) {
    if (!a.ek.name.empty() && !b.ek.name.empty()) {
      if (a.ek.name != b.ek.name) return "its EK is " + ToHex(b.ek.name) + ", this one's " + ToHex(a.ek.name);
      if (!a.ek.public_der.empty() && !b.ek.public_der.empty() && a.ek.public_der != b.ek.public_der) {
        return "its EK public key differs";
      }
      return "";
    }
    if (!a.ak.public_der.empty() && !b.ak.public_der.empty() && a.ak.public_der != b.ak.public_der) {
      return "neither names an EK and its AK differs";
    }
    return "";
  }

  // The clock rules (TPM 2.0 Part 1 "Clock", Part 2 TPMS_CLOCK_INFO): resetCount
  // and restartCount never go down but at TPM2_Clear; safe = YES promises
  // that no Clock value greater than this one was ever reported, across
  // resets too. Keylime's check_quote_timing: counters must not decrease,
  // safe must be 1, and clock must strictly increase unless both counters
  // moved. tpmlab differs on purpose: safe = NO is a warning (CLOCK_NOT_SAFE),
  // not a failure, and then a lower clock after a reset is the power loss
  // it reports, not a rollback; an unchanged clock is not one either; and a
  // restartCount back to 0 after a TPM Reset (resetCount up) is normal.
  void Counters() {
    static const char* kCounterCodes[] = {alarm::kClockNotSafe, alarm::kCounterRollback, alarm::kClockNotMonotonic,
                                          alarm::kClockSkew};
    const ClockInfo& c = now_.clock();
    if (!quote_.parsed) {
      for (const char* code : kCounterCodes) NotRun(code, "no quote");
      return;
    }
    // As Keylime: only a quote whose signature verified vouches for its clock.
    if (!quote_.signature_ok) {
      for (const char* code : kCounterCodes) NotRun(code, "the quote's signature does not verify: its clock is no evidence");
      return;
    }
    if (!c.safe) {
      Raise(alarm::kClockNotSafe, Severity::kWarning,
            "The TPM clock is not safe: the TPM lost power without an orderly shutdown since the clock was "
            "last saved",
            {{"clock_ms", Num(c.clock_ms)}, {"reset_count", Num(c.reset_count)}});
    }
    // Only a quote that verified is a baseline for the counters.
    if (previous_ == nullptr || !previous_->quote_check.parsed || !previous_->quote_check.signature_ok) {
      const std::string why = previous_ == nullptr ? "no earlier quote of this DUT"
                                                   : "the earlier quote's signature does not verify: its clock is no baseline";
      for (const char* code : {alarm::kCounterRollback, alarm::kClockNotMonotonic, alarm::kClockSkew}) NotRun(code, why);
      return;
    }
    // Counters of another chip say nothing about this one (a swapped board is
    // EK_CHANGED against the enrollment, not a rollback).
    if (const std::string other = OtherTpm(now_, *previous_); !other.empty()) {
      for (const char* code : {alarm::kCounterRollback, alarm::kClockNotMonotonic, alarm::kClockSkew}) {
        NotRun(code, "the previous snapshot is another TPM (" + other + ")");
      }
      return;
    }
    const ClockInfo& p = previous_->clock();
    std::map<std::string, std::string> evidence = {
        {"expected", "reset " + Num(p.reset_count) + " restart " + Num(p.restart_count) + " clock " + Num(p.clock_ms)},
        {"actual", "reset " + Num(c.reset_count) + " restart " + Num(c.restart_count) + " clock " + Num(c.clock_ms)}};
    const bool rolled_back =
        c.reset_count < p.reset_count || (c.reset_count == p.reset_count && c.restart_count < p.restart_count);
    if (rolled_back) {
      Raise(alarm::kCounterRollback, Severity::kError,
            "The TPM's resetCount or restartCount went down (a TPM clear, or a replayed quote)", evidence);
      // TPM2_Clear also zeroes Clock (and sets safe): one finding, not two.
      NotRun(alarm::kClockNotMonotonic, "the counters went back (COUNTER_ROLLBACK)");
      NotRun(alarm::kClockSkew, "the counters went back (COUNTER_ROLLBACK)");
      return;
    }
    const bool same_session = c.reset_count == p.reset_count && c.restart_count == p.restart_count;
    const bool went_back = c.clock_ms < p.clock_ms;
    if (went_back && (same_session || c.safe)) {
      Raise(alarm::kClockNotMonotonic, Severity::kError,
            same_session ? "The TPM clock went back while neither resetCount nor restartCount moved"
                         : "The TPM clock went back although the TPM reports it safe (its NV state reverted?)",
            evidence);
    }
    if (!same_session) {
      NotRun(alarm::kClockSkew, "the TPM was reset or restarted between the two quotes");
      return;
    }
    // A clock that went back is CLOCK_NOT_MONOTONIC; skew is for one that runs wrong.
    if (went_back) {
      NotRun(alarm::kClockSkew, "the clock went back (CLOCK_NOT_MONOTONIC)");
      return;
    }
    if (now_.taken_at_ms <= 0 || previous_->taken_at_ms <= 0) {
      NotRun(alarm::kClockSkew, "no wall time recorded for one of the quotes");
      return;
    }
    const int64_t wall = now_.taken_at_ms - previous_->taken_at_ms;
    const int64_t tpm = static_cast<int64_t>(c.clock_ms) - static_cast<int64_t>(p.clock_ms);
    // Each quote's wall time is the middle of its round trip, so a slow
    // Quote (a loaded host) widens what counts as agreement.
    const int64_t uncertainty = (now_.quote_round_trip_ms + previous_->quote_round_trip_ms) / 2;
    const double allowed = static_cast<double>(options_.clock_skew_slack.count() + uncertainty) +
                           options_.clock_skew_ratio * static_cast<double>(std::llabs(wall));
    if (static_cast<double>(std::llabs(tpm - wall)) > allowed) {
      evidence["detail"] = "TPM clock advanced " + std::to_string(tpm) + " ms while wall time advanced " +
                           std::to_string(wall) + " ms";
      Raise(alarm::kClockSkew, Severity::kWarning,
            "The TPM clock and wall time disagree between two quotes (time synchronization)", evidence);
    }
  }

  void Enrolled() {
    if (enrollment_ == nullptr) {
      for (const char* code : {alarm::kEkChanged, alarm::kTpmFirmwareChanged, alarm::kPcrPolicyMismatch}) {
        NotRun(code, "the DUT is not enrolled");
      }
      return;
    }
    const Enrollment& e = *enrollment_;
    EkChanged(e);
    // The firmware version the quote signed, not GetCapability's unsigned answer.
    if (!quote_.verified()) {
      NotRun(alarm::kTpmFirmwareChanged, "no verified quote: only a signed firmwareVersion is believed");
    } else if (quote_.attest.firmware_version != e.firmware_version) {
      char a[24], b[24];
      std::snprintf(a, sizeof(a), "0x%016llx", static_cast<unsigned long long>(e.firmware_version));
      std::snprintf(b, sizeof(b), "0x%016llx", static_cast<unsigned long long>(quote_.attest.firmware_version));
      Raise(alarm::kTpmFirmwareChanged, Severity::kWarning, "The TPM firmware version differs from enrollment",
            {{"expected", a}, {"actual", b}});
    }
    // Only PCR values a verified quote covers are judged (go-attestation's
    // rule); the rest are listed, per bank, as not run.
    for (const auto& [bank, golden] : e.golden_pcrs) {
      auto read = now_.pcrs.find(bank);
      if (read == now_.pcrs.end()) continue;
      uint32_t untrusted = 0;
      for (int i = 0; i < kPcrCount; ++i) {
        if (!Trusted(bank, i)) {
          untrusted |= 1u << i;
          continue;
        }
        if (golden[i] == read->second[i]) continue;
        Raise(alarm::kPcrPolicyMismatch, Severity::kError,
              "PCR " + Num(i) + " (" + HashAlgName(bank) + ") differs from the golden reference",
              {{"bank", HashAlgName(bank)}, {"pcr", Num(i)}, {"expected", ToHex(golden[i])},
               {"actual", ToHex(read->second[i])}});
      }
      if (untrusted != 0) {
        NotRun(alarm::kPcrPolicyMismatch, "PCR " + PcrRanges(untrusted) + " (" + HashAlgName(bank) +
                                              ") not covered by a verified quote");
      }
    }
  }

  // The EK against the enrolled one, by name and public key. Evidence with
  // no EK is an alarm too, unless EK_MISSING already says the TPM refused it.
  void EkChanged(const Enrollment& e) {
    if (!now_.ek_error.empty()) {
      NotRun(alarm::kEkChanged, "no EK (EK_MISSING)");
      return;
    }
    const std::string expected = ToHex(e.ek_name);
    if (now_.ek.name.empty()) {
      Raise(alarm::kEkChanged, Severity::kError,
            "The evidence carries no endorsement key to compare with the one stored in the DB",
            {{"expected", expected}, {"actual", ""}, {"detail", "no EK in the evidence"}});
      return;
    }
    const bool name_differs = !e.ek_name.empty() && now_.ek.name != e.ek_name;
    const bool key_differs = !e.ek_public_der.empty() && now_.ek.public_der != e.ek_public_der;
    if (name_differs || key_differs) {
      Raise(alarm::kEkChanged, Severity::kError,
            "The new host TPM endorsement key doesn't match the one stored in the DB",
            {{"expected", expected}, {"actual", ToHex(now_.ek.name)},
             {"detail", name_differs ? "the EK name differs" : "the EK public key differs"}});
    }
  }

  const Snapshot& now_;
  const Snapshot* previous_;
  const Enrollment* enrollment_;
  const VerifyOptions& options_;
  QuoteCheck quote_;  // the verifier's own check of now_'s quote (set by Quote())
  Verdict v_;
};

}  // namespace

Verdict Verify(const Snapshot& now, const Snapshot* previous, const Enrollment* enrollment,
               const VerifyOptions& options) {
  return Judge(now, previous, enrollment, options).Run();
}

}  // namespace tpmlab
