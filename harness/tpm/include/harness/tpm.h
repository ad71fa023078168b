// Tpm: typed TPM 2.0 operations on tpm2-tss ESAPI over any drivers Transport.
//
// This folder is the only place in tpmlab that includes tpm2-tss; the header
// shows none of it. Every call returns a Status that says whether the TPM
// refused (layer tpm, with the response code) or the bytes never made it
// (layer transport, with the transport's own reason).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "drivers/transport.h"
#include "harness/tpm_types.h"

namespace tpmlab {

struct KeyInfo {
  uint32_t handle = 0;   // persistent handle
  Bytes name;            // TPM2B_NAME contents: nameAlg || digest
  Bytes qualified_name;  // TPM2_ReadPublic's qualifiedName: what a quote names as qualifiedSigner
  Bytes public_area;     // marshalled TPMT_PUBLIC
  Bytes public_der;      // SubjectPublicKeyInfo, for OpenSSL
  KeyType type = KeyType::kRsa2048;
  bool created = false;  // made now rather than found persisted
};

struct TpmProperties {
  std::string manufacturer;     // "IBM " as four ASCII characters
  uint32_t manufacturer_id = 0;
  std::string vendor_string;    // TPM_PT_VENDOR_STRING_1..4 joined
  uint64_t firmware_version = 0;  // (FIRMWARE_VERSION_1 << 32) | _2
  uint32_t spec_level = 0, spec_revision = 0, spec_year = 0, spec_day = 0;
  // TPMA_STARTUP_CLEAR: which hierarchies are enabled now.
  bool platform_enabled = true, owner_enabled = true, endorsement_enabled = true;
};

struct QuoteBlob {
  Bytes attest;     // TPMS_ATTEST as signed
  Bytes signature;  // marshalled TPMT_SIGNATURE
};

struct TimeInfo {
  uint64_t time_ms = 0;
  ClockInfo clock;
};

class TctiAdapter;

class Tpm {
 public:
  static Result<std::unique_ptr<Tpm>> Open(Transport& transport);
  ~Tpm();
  Tpm(const Tpm&) = delete;
  Tpm& operator=(const Tpm&) = delete;

  Status Startup(StartupType type);
  Status Shutdown(StartupType type);

  /// The banks with at least one PCR allocated (TPM_CAP_PCRS).
  Result<std::vector<HashAlg>> PcrBanks();
  /// All 24 PCRs of every bank in `banks`.
  Result<PcrValues> ReadPcrs(const std::vector<HashAlg>& banks);
  /// Extends one PCR, with one digest per bank (banks not given are left alone).
  Status Extend(int pcr, const std::map<HashAlg, Bytes>& digests);

  /// The TCG default RSA-2048 EK (template L-1), persisted at kEkHandle.
  Result<KeyInfo> EnsureEk();
  /// The TCG default SRK in the owner hierarchy, persisted at kSrkHandle.
  Result<KeyInfo> EnsureSrk();
  /// A restricted signing key in the endorsement hierarchy (so quoted
  /// counters are not obfuscated), noDA, persisted at kAkHandle. A persisted
  /// AK of another type is replaced.
  Result<KeyInfo> EnsureAk(KeyType type);

  /// TPM2_Quote over the PCRs in `pcr_mask` (bit n = PCR n) of `bank`.
  Result<QuoteBlob> Quote(const KeyInfo& ak, HashAlg bank, uint32_t pcr_mask, ByteView nonce);
  /// One quote over the same PCRs of several banks (every bank's values signed at once).
  Result<QuoteBlob> Quote(const KeyInfo& ak, const std::vector<HashAlg>& banks, uint32_t pcr_mask, ByteView nonce);

  /// TPM2_Clear authorised by the lockout or platform hierarchy.
  Status Clear(Hierarchy auth);
  /// TPM2_ClearControl: disable (true) or re-enable (false) TPM2_Clear; `auth` is kLockout or kPlatform
  /// (only platform may re-enable).
  Status ClearControl(Hierarchy auth, bool disable);
  /// TPM2_ChangeEPS (platform auth): a new endorsement primary seed — new EK, the board-swap analogue.
  Status ChangeEps();
  /// TPM2_ChangePPS (platform auth): a new platform primary seed.
  Status ChangePps();
  /// TPM2_HierarchyControl with platform auth: enable or disable kOwner, kEndorsement or kPlatform.
  Status HierarchyControl(Hierarchy which, bool enable);
  /// TPM2_PCR_Allocate (platform auth): allocate all 24 PCRs in exactly `banks`, others none.
  /// Takes effect at the next TPM Reset (Startup(CLEAR) after Shutdown(CLEAR) or a power loss).
  Status PcrAllocate(const std::vector<HashAlg>& banks);
  /// TPM2_ClockSet (owner auth): the TPM refuses (TPM_RC_VALUE) to go back.
  Status ClockSet(uint64_t new_clock_ms);
  /// Persistent object handles (TPM_CAP_HANDLES from 0x81000000) and NV indices (from 0x01000000).
  Result<std::vector<uint32_t>> PersistentHandles();
  Result<std::vector<uint32_t>> NvIndices();

  Result<TpmProperties> Properties();
  Result<TimeInfo> ReadClock();
  /// Reads a whole NV index (e.g. the EK certificate).
  Result<Bytes> NvRead(uint32_t index);

  Transport& transport() { return transport_; }
  /// Whether a key of another kind found at tpmlab's EK/SRK/AK handle may be
  /// evicted to make room (true: an emulated chip; on a real one it may be
  /// someone else's key, and the bench must allow NV writes).
  void set_evict_foreign_keys(bool evict) { evict_foreign_keys_ = evict; }
  /// Whether EnsureEk/Srk/Ak persist the keys they create (TPM2_EvictControl,
  /// an NV write; true by default). When not, nothing is written: a key not
  /// already persisted is a transient primary made from its fixed template
  /// (the same key each time, until its seed changes), and the AK stays
  /// loaded until the next Startup or clear.
  void set_persist_keys(bool persist) { persist_keys_ = persist; }
  /// Drops the transient keys made in this session: someone else reset and
  /// started the chip (a board's firmware), and _TPM_Init flushed them, so
  /// the next EnsureEk/Srk/Ak makes them again.
  void ForgetTransientKeys();

 private:
  Tpm(Transport& transport, std::unique_ptr<TctiAdapter> tcti);
  // Turns a tpm2-tss result into a Status that names the layer at fault.
  // After a TCTI failure it rebuilds the ESAPI context, which tpm2-tss
  // otherwise leaves refusing every later call.
  Status Check(uint32_t rc, const char* what);
  // ESYS_TR of a persistent object, or 0 when the handle is empty.
  Result<uint32_t> Persistent(uint32_t handle);
  Result<KeyInfo> Describe(uint32_t esys_handle, uint32_t handle, bool created);
  Result<KeyInfo> EnsurePrimary(uint32_t handle, Hierarchy hierarchy, const void* templ,
                                KeyType type);
  void ForgetObjects();
  // TPM_CAP_HANDLES of the handle type `first` starts.
  Result<std::vector<uint32_t>> Handles(uint32_t first, const char* what);

  Transport& transport_;
  std::unique_ptr<TctiAdapter> tcti_;
  struct EsysDeleter { void operator()(void* ctx) const; };
  std::unique_ptr<void, EsysDeleter> esys_;
  std::map<uint32_t, uint32_t> objects_;  // persistent handle -> ESYS_TR
  bool evict_foreign_keys_ = true;
  bool persist_keys_ = true;
  std::vector<uint32_t> transient_keys_;  // handles in objects_ that name transient keys
};

}  // namespace tpmlab
