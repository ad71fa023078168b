// Tpm: each typed TPM command on ESAPI, a short function apiece. Over 600
// lines because these share private session and handle helpers and this file
// is where tpm2-tss may be included (with tcti_adapter.cc).
#include "harness/tpm.h"

#include <openssl/rand.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <cstring>

#include "tcti_adapter.h"

namespace tpmlab {
namespace {

ESYS_CONTEXT* Ctx(void* p) { return static_cast<ESYS_CONTEXT*>(p); }

// Frees tpm2-tss output structures on scope exit.
template <typename T>
struct EsysOut {
  T* p = nullptr;
  ~EsysOut() { Esys_Free(p); }
  T** operator&() { return &p; }
  T* operator->() const { return p; }
};

// A TPM rc with the handle/parameter/session number bits removed.
uint32_t BaseRc(TSS2_RC rc) {
  if (rc & TPM2_RC_FMT1) return rc & (TPM2_RC_FMT1 | 0x3F);
  return rc & 0xFFFF;
}

ESYS_TR HierarchyTr(Hierarchy h) {
  switch (h) {
    case Hierarchy::kOwner: return ESYS_TR_RH_OWNER;
    case Hierarchy::kEndorsement: return ESYS_TR_RH_ENDORSEMENT;
    case Hierarchy::kPlatform: return ESYS_TR_RH_PLATFORM;
    case Hierarchy::kLockout: return ESYS_TR_RH_LOCKOUT;
  }
  return ESYS_TR_RH_OWNER;
}

TPML_PCR_SELECTION Selection(const std::vector<HashAlg>& banks, uint32_t mask) {
  TPML_PCR_SELECTION sel{};
  sel.count = static_cast<uint32_t>(std::min<size_t>(banks.size(), TPM2_NUM_PCR_BANKS));
  for (uint32_t b = 0; b < sel.count; ++b) {
    sel.pcrSelections[b].hash = static_cast<TPMI_ALG_HASH>(banks[b]);
    sel.pcrSelections[b].sizeofSelect = 3;
    for (int i = 0; i < 3; ++i) sel.pcrSelections[b].pcrSelect[i] = static_cast<uint8_t>(mask >> (8 * i));
  }
  return sel;
}


// An RSA-2048 restricted decryption key with AES-128-CFB: the shape both
// the EK and the SRK templates share; they differ in attributes and policy.
TPM2B_PUBLIC RsaStorageKey(TPMA_OBJECT attributes) {
  TPM2B_PUBLIC t{};
  t.publicArea.type = TPM2_ALG_RSA;
  t.publicArea.nameAlg = TPM2_ALG_SHA256;
  t.publicArea.objectAttributes = attributes;
  auto& rsa = t.publicArea.parameters.rsaDetail;
  rsa.symmetric.algorithm = TPM2_ALG_AES;
  rsa.symmetric.keyBits.aes = 128;
  rsa.symmetric.mode.aes = TPM2_ALG_CFB;
  rsa.scheme.scheme = TPM2_ALG_NULL;
  rsa.keyBits = 2048;
  rsa.exponent = 0;
  return t;
}

// TCG EK Credential Profile, template L-1 (RSA 2048, AES-128-CFB).
TPM2B_PUBLIC EkTemplate() {
  static constexpr uint8_t kPolicy[32] = {
      0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC, 0x8D, 0x46, 0xA5, 0xD7, 0x24,
      0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52, 0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA};
  TPM2B_PUBLIC t = RsaStorageKey(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                  TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |
                                  TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT);
  t.publicArea.authPolicy.size = sizeof(kPolicy);
  std::memcpy(t.publicArea.authPolicy.buffer, kPolicy, sizeof(kPolicy));
  t.publicArea.unique.rsa.size = 256;  // zeros
  return t;
}

// TCG storage root key: RSA 2048 restricted decrypt, noDA.
TPM2B_PUBLIC SrkTemplate() {
  return RsaStorageKey(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                       TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED |
                       TPMA_OBJECT_DECRYPT);
}

// Attestation key: restricted signing, noDA so that power losses after a
// quote never push the TPM into dictionary-attack lockout.
TPM2B_PUBLIC AkTemplate(KeyType type) {
  TPM2B_PUBLIC t{};
  t.publicArea.nameAlg = TPM2_ALG_SHA256;
  t.publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                  TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                  TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
  if (type == KeyType::kRsa2048) {
    t.publicArea.type = TPM2_ALG_RSA;
    auto& rsa = t.publicArea.parameters.rsaDetail;
    rsa.symmetric.algorithm = TPM2_ALG_NULL;
    rsa.scheme.scheme = TPM2_ALG_RSASSA;
    rsa.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
    rsa.keyBits = 2048;
  } else {
    t.publicArea.type = TPM2_ALG_ECC;
    auto& ecc = t.publicArea.parameters.eccDetail;
    ecc.symmetric.algorithm = TPM2_ALG_NULL;
    ecc.scheme.scheme = TPM2_ALG_ECDSA;
    ecc.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    ecc.curveID = TPM2_ECC_NIST_P256;
    ecc.kdf.scheme = TPM2_ALG_NULL;
  }
  return t;
}

// The public key of a TPMT_PUBLIC as DER SubjectPublicKeyInfo.
Result<Bytes> PublicToDer(const TPMT_PUBLIC& pub) {
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  BIGNUM* n = nullptr;
  BIGNUM* e = nullptr;
  const char* key_type = nullptr;
  Bytes point;
  if (pub.type == TPM2_ALG_RSA) {
    key_type = "RSA";
    n = BN_bin2bn(pub.unique.rsa.buffer, pub.unique.rsa.size, nullptr);
    e = BN_new();
    BN_set_word(e, pub.parameters.rsaDetail.exponent ? pub.parameters.rsaDetail.exponent : 65537);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
  } else if (pub.type == TPM2_ALG_ECC && pub.parameters.eccDetail.curveID == TPM2_ECC_NIST_P256) {
    key_type = "EC";
    point.push_back(0x04);  // uncompressed
    point.insert(point.end(), pub.unique.ecc.x.buffer, pub.unique.ecc.x.buffer + pub.unique.ecc.x.size);
    point.insert(point.end(), pub.unique.ecc.y.buffer, pub.unique.ecc.y.buffer + pub.unique.ecc.y.size);
    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
  } else {
    OSSL_PARAM_BLD_free(bld);
    return Status::Error(Layer::kHarness, "unsupported key type for DER export");
  }
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, key_type, nullptr);
  EVP_PKEY* pkey = nullptr;
  bool ok = ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
            EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1;
  Bytes der;
  if (ok) {
    int len = i2d_PUBKEY(pkey, nullptr);
    if (len > 0) {
      der.resize(static_cast<size_t>(len));
      unsigned char* p = der.data();
      i2d_PUBKEY(pkey, &p);
    }
  }
  EVP_PKEY_free(pkey);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(n);
  BN_free(e);
  if (der.empty()) return Status::Error(Layer::kHarness, "OpenSSL could not import the TPM key");
  return der;
}

}  // namespace

void Tpm::EsysDeleter::operator()(void* ctx) const {
  ESYS_CONTEXT* c = Ctx(ctx);
  Esys_Finalize(&c);
}

Tpm::Tpm(Transport& transport, std::unique_ptr<TctiAdapter> tcti)
    : transport_(transport), tcti_(std::move(tcti)) {}

Tpm::~Tpm() = default;

Result<std::unique_ptr<Tpm>> Tpm::Open(Transport& transport) {
  // tpm2-tss logs every TPM error to stderr; tpmlab reports them itself.
  // TSS2_LOG set by the user still wins.
  ::setenv("TSS2_LOG", "all+none", /*overwrite=*/0);
  auto tcti = std::make_unique<TctiAdapter>(transport);
  ESYS_CONTEXT* ctx = nullptr;
  TSS2_RC rc = Esys_Initialize(&ctx, tcti->context(), nullptr);
  if (rc != TSS2_RC_SUCCESS) {
    return Status::Error(Layer::kHarness, std::string("Esys_Initialize: ") + Tss2_RC_Decode(rc));
  }
  std::unique_ptr<Tpm> tpm(new Tpm(transport, std::move(tcti)));
  tpm->esys_.reset(ctx);
  return tpm;
}

Status Tpm::Check(uint32_t rc, const char* what) {
  if (rc == TSS2_RC_SUCCESS) return Status::Ok();
  const uint32_t layer = rc & TSS2_RC_LAYER_MASK;
  if (layer == TSS2_TPM_RC_LAYER) {
    return Status::Tpm(rc, std::string(what) + ": " + TpmResponseText(rc));
  }
  Status error = Status::Error(Layer::kHarness, std::string(what) + ": " + Tss2_RC_Decode(rc));
  if (layer == TSS2_TCTI_RC_LAYER && !tcti_->last_error().ok()) error = tcti_->last_error().Wrap(what);
  // After a TCTI failure or a response that did not decode, ESAPI parks its
  // context in an internal-error state and refuses every later call: start a
  // new one on the same TCTI. Handles of the old context are gone with it.
  ESYS_CONTEXT* fresh = nullptr;
  if (Esys_Initialize(&fresh, tcti_->context(), nullptr) == TSS2_RC_SUCCESS) {
    objects_.clear();
    transient_keys_.clear();
    esys_.reset(fresh);
    tcti_->Reset();
  }
  return error;
}

Status Tpm::Startup(StartupType type) {
  const char* what = type == StartupType::kClear ? "TPM2_Startup(CLEAR)" : "TPM2_Startup(STATE)";
  TRY(Check(Esys_Startup(Ctx(esys_.get()), type == StartupType::kClear ? TPM2_SU_CLEAR : TPM2_SU_STATE),
            what));
  // Esys_Startup reports TPM_RC_INITIALIZE as success; to a harness it means
  // the TPM was already started, so the power cycle before it did not happen.
  if (tcti_->last_response_code() == TPM2_RC_INITIALIZE) {
    return Status::Tpm(TPM2_RC_INITIALIZE, std::string(what) +
                                               ": TPM_RC_INITIALIZE: the TPM is already started "
                                               "(no _TPM_Init reached it since its last Startup)");
  }
  ForgetTransientKeys();  // _TPM_Init flushed them
  return Status::Ok();
}

Status Tpm::Shutdown(StartupType type) {
  return Check(Esys_Shutdown(Ctx(esys_.get()), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                             type == StartupType::kClear ? TPM2_SU_CLEAR : TPM2_SU_STATE),
               type == StartupType::kClear ? "TPM2_Shutdown(CLEAR)" : "TPM2_Shutdown(STATE)");
}

Result<std::vector<HashAlg>> Tpm::PcrBanks() {
  EsysOut<TPMS_CAPABILITY_DATA> caps;
  TPMI_YES_NO more = 0;
  TRY(Check(Esys_GetCapability(Ctx(esys_.get()), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                               TPM2_CAP_PCRS, 0, 1, &more, &caps),
            "TPM2_GetCapability(PCRS)"));
  std::vector<HashAlg> banks;
  const auto& sel = caps->data.assignedPCR;
  for (uint32_t i = 0; i < sel.count; ++i) {
    const auto& s = sel.pcrSelections[i];
    bool any = false;
    for (int b = 0; b < s.sizeofSelect; ++b) any |= s.pcrSelect[b] != 0;
    auto alg = HashAlgFromId(s.hash);
    if (any && alg) banks.push_back(*alg);
  }
  return banks;
}

Result<PcrValues> Tpm::ReadPcrs(const std::vector<HashAlg>& banks) {
  PcrValues values;
  TPML_PCR_SELECTION want{};
  for (HashAlg b : banks) {
    auto& s = want.pcrSelections[want.count++];
    s.hash = static_cast<TPMI_ALG_HASH>(b);
    s.sizeofSelect = 3;
    s.pcrSelect[0] = s.pcrSelect[1] = s.pcrSelect[2] = 0xFF;
    values[b] = PcrBank{};
  }
  // TPM2_PCR_Read answers at most 8 digests a call; ask again for the rest.
  for (int round = 0; round < 2 * kPcrCount; ++round) {
    bool pending = false;
    for (uint32_t i = 0; i < want.count; ++i) {
      for (int b = 0; b < 3; ++b) pending |= want.pcrSelections[i].pcrSelect[b] != 0;
    }
    if (!pending) return values;
    uint32_t counter = 0;
    EsysOut<TPML_PCR_SELECTION> got_sel;
    EsysOut<TPML_DIGEST> digests;
    TRY(Check(Esys_PCR_Read(Ctx(esys_.get()), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &want,
                            &counter, &got_sel, &digests),
              "TPM2_PCR_Read"));
    uint32_t next = 0;
    bool progress = false;
    for (uint32_t i = 0; i < got_sel->count; ++i) {
      const auto& s = got_sel->pcrSelections[i];
      auto alg = HashAlgFromId(s.hash);
      for (int pcr = 0; pcr < kPcrCount; ++pcr) {
        if (!(s.pcrSelect[pcr / 8] & (1u << (pcr % 8)))) continue;
        if (next >= digests->count) return Status::Error(Layer::kTpm, "TPM2_PCR_Read: fewer digests than selected");
        const auto& d = digests->digests[next++];
        if (alg && values.count(*alg)) values[*alg][pcr].assign(d.buffer, d.buffer + d.size);
        for (uint32_t j = 0; j < want.count; ++j) {
          if (want.pcrSelections[j].hash == s.hash) {
            want.pcrSelections[j].pcrSelect[pcr / 8] &= static_cast<uint8_t>(~(1u << (pcr % 8)));
          }
        }
        progress = true;
      }
    }
    if (!progress) {
      // A bank that is not allocated returns nothing: leave its PCRs empty.
      for (uint32_t j = 0; j < want.count; ++j) {
        std::memset(want.pcrSelections[j].pcrSelect, 0, 3);
      }
    }
  }
  return values;
}

Status Tpm::Extend(int pcr, const std::map<HashAlg, Bytes>& digests) {
  if (pcr < 0 || pcr >= kPcrCount) return Status::Error(Layer::kHarness, "PCR index out of range");
  TPML_DIGEST_VALUES values{};
  for (const auto& [alg, digest] : digests) {
    if (digest.size() != HashSize(alg)) {
      return Status::Error(Layer::kHarness, std::string("extend digest has the wrong size for ") +
                                                HashAlgName(alg));
    }
    auto& v = values.digests[values.count++];
    v.hashAlg = static_cast<TPMI_ALG_HASH>(alg);
    std::memcpy(&v.digest, digest.data(), digest.size());
  }
  return Check(Esys_PCR_Extend(Ctx(esys_.get()), static_cast<ESYS_TR>(ESYS_TR_PCR0 + pcr),
                               ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &values),
               "TPM2_PCR_Extend");
}

Result<uint32_t> Tpm::Persistent(uint32_t handle) {
  auto it = objects_.find(handle);
  if (it != objects_.end()) return it->second;
  ESYS_TR tr = ESYS_TR_NONE;
  TSS2_RC rc = Esys_TR_FromTPMPublic(Ctx(esys_.get()), handle, ESYS_TR_NONE, ESYS_TR_NONE,
                                     ESYS_TR_NONE, &tr);
  if (rc != TSS2_RC_SUCCESS) {
    // TPM_RC_HANDLE: nothing is persisted there.
    if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER && BaseRc(rc) == TPM2_RC_HANDLE) return 0u;
    return Check(rc, "TPM2_ReadPublic(persistent)");
  }
  objects_[handle] = tr;
  return tr;
}

void Tpm::ForgetObjects() {
  for (auto& [handle, tr] : objects_) {
    ESYS_TR t = tr;
    Esys_TR_Close(Ctx(esys_.get()), &t);
  }
  objects_.clear();
  transient_keys_.clear();
}

void Tpm::ForgetTransientKeys() {
  for (uint32_t handle : transient_keys_) {
    auto it = objects_.find(handle);
    if (it == objects_.end()) continue;
    ESYS_TR t = it->second;
    Esys_TR_Close(Ctx(esys_.get()), &t);
    objects_.erase(it);
  }
  transient_keys_.clear();
}

Result<KeyInfo> Tpm::Describe(uint32_t tr, uint32_t handle, bool created) {
  EsysOut<TPM2B_PUBLIC> pub;
  EsysOut<TPM2B_NAME> name;
  EsysOut<TPM2B_NAME> qualified;
  TRY(Check(Esys_ReadPublic(Ctx(esys_.get()), tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub,
                            &name, &qualified),
            "TPM2_ReadPublic"));
  KeyInfo key;
  key.handle = handle;
  key.created = created;
  key.name.assign(name->name, name->name + name->size);
  key.qualified_name.assign(qualified->name, qualified->name + qualified->size);
  key.type = pub->publicArea.type == TPM2_ALG_ECC ? KeyType::kEccP256 : KeyType::kRsa2048;
  uint8_t buf[sizeof(TPMT_PUBLIC)];
  size_t off = 0;
  if (Tss2_MU_TPMT_PUBLIC_Marshal(&pub->publicArea, buf, sizeof(buf), &off) == TSS2_RC_SUCCESS) {
    key.public_area.assign(buf, buf + off);
  }
  TRY_ASSIGN(key.public_der, PublicToDer(pub->publicArea));
  return key;
}

Result<KeyInfo> Tpm::EnsurePrimary(uint32_t handle, Hierarchy hierarchy, const void* templ_ptr,
                                   KeyType type) {
  const auto& templ = *static_cast<const TPM2B_PUBLIC*>(templ_ptr);
  TRY_ASSIGN(uint32_t existing, Persistent(handle));
  if (existing != 0) {
    TRY_ASSIGN(KeyInfo key, Describe(existing, handle, false));
    if (key.type == type) return key;
    if (std::find(transient_keys_.begin(), transient_keys_.end(), handle) != transient_keys_.end()) {
      // Our own unpersisted key of another kind: flushed, not evicted.
      Esys_FlushContext(Ctx(esys_.get()), existing);
      objects_.erase(handle);
      transient_keys_.erase(std::find(transient_keys_.begin(), transient_keys_.end(), handle));
      return EnsurePrimary(handle, hierarchy, templ_ptr, type);
    }
    // Another kind of key sits at our handle (say, an RSA AK when ECC was
    // asked for): evict it so the requested one can take its place.
    if (!evict_foreign_keys_) {
      char h[16];
      std::snprintf(h, sizeof h, "0x%08x", handle);
      return Status::Error(Layer::kHarness, std::string("persistent handle ") + h + " holds another kind of key (" +
                                                KeyTypeName(key.type) + "), perhaps not tpmlab's: refusing to evict "
                                                "it on a real chip (allow.nv_write in the bench file permits it)");
    }
    ESYS_TR gone = ESYS_TR_NONE;
    TRY(Check(Esys_EvictControl(Ctx(esys_.get()), ESYS_TR_RH_OWNER, existing, ESYS_TR_PASSWORD,
                                ESYS_TR_NONE, ESYS_TR_NONE, handle, &gone),
              "TPM2_EvictControl(remove)"));
    objects_.erase(handle);
  }
  TPM2B_SENSITIVE_CREATE sensitive{};
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION creation_pcrs{};
  ESYS_TR transient = ESYS_TR_NONE;
  TRY(Check(Esys_CreatePrimary(Ctx(esys_.get()), HierarchyTr(hierarchy), ESYS_TR_PASSWORD,
                               ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &templ, &outside,
                               &creation_pcrs, &transient, nullptr, nullptr, nullptr, nullptr),
            "TPM2_CreatePrimary"));
  if (!persist_keys_) {
    // Nothing written to NV: the key is described and, unless it is the AK
    // (quotes need it loaded), flushed; the same template makes it again.
    auto key = Describe(transient, handle, true);
    if (handle == kAkHandle && key.ok()) {
      objects_[handle] = transient;
      transient_keys_.push_back(handle);
    } else {
      Esys_FlushContext(Ctx(esys_.get()), transient);
    }
    return key;
  }
  ESYS_TR persisted = ESYS_TR_NONE;
  Status evict = Check(Esys_EvictControl(Ctx(esys_.get()), ESYS_TR_RH_OWNER, transient,
                                         ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, handle,
                                         &persisted),
                       "TPM2_EvictControl(persist)");
  // Transients do not survive a reset and libtpms has three slots: flush now.
  Esys_FlushContext(Ctx(esys_.get()), transient);
  TRY(evict);
  objects_[handle] = persisted;
  return Describe(persisted, handle, true);
}

Result<KeyInfo> Tpm::EnsureEk() {
  TPM2B_PUBLIC t = EkTemplate();
  return EnsurePrimary(kEkHandle, Hierarchy::kEndorsement, &t, KeyType::kRsa2048);
}

Result<KeyInfo> Tpm::EnsureSrk() {
  TPM2B_PUBLIC t = SrkTemplate();
  return EnsurePrimary(kSrkHandle, Hierarchy::kOwner, &t, KeyType::kRsa2048);
}

Result<KeyInfo> Tpm::EnsureAk(KeyType type) {
  TPM2B_PUBLIC t = AkTemplate(type);
  // A random `unique` makes each new AK a new key, as an AK made with
  // TPM2_Create would be: a TPM clear evicts it and the next one is unknown
  // to the verifier, while the EK (same seed, fixed template) comes back.
  // Unpersisted (a real chip without NV writes), the AK is made again in
  // every session, so its template stays fixed: the same key each time.
  if (!persist_keys_) return EnsurePrimary(kAkHandle, Hierarchy::kEndorsement, &t, type);
  uint8_t entropy[32];
  if (RAND_bytes(entropy, sizeof(entropy)) != 1) {
    return Status::Error(Layer::kHarness, "OpenSSL could not make the AK's unique value");
  }
  if (type == KeyType::kRsa2048) {
    t.publicArea.unique.rsa.size = sizeof(entropy);
    std::memcpy(t.publicArea.unique.rsa.buffer, entropy, sizeof(entropy));
  } else {
    t.publicArea.unique.ecc.x.size = sizeof(entropy);
    std::memcpy(t.publicArea.unique.ecc.x.buffer, entropy, sizeof(entropy));
  }
  return EnsurePrimary(kAkHandle, Hierarchy::kEndorsement, &t, type);
}

Result<QuoteBlob> Tpm::Quote(const KeyInfo& ak, HashAlg bank, uint32_t pcr_mask, ByteView nonce) {
  return Quote(ak, std::vector<HashAlg>{bank}, pcr_mask, nonce);
}

Result<QuoteBlob> Tpm::Quote(const KeyInfo& ak, const std::vector<HashAlg>& banks, uint32_t pcr_mask,
                             ByteView nonce) {
  if (banks.empty()) return Status::Error(Layer::kHarness, "a quote selects at least one bank");
  TRY_ASSIGN(uint32_t tr, Persistent(ak.handle));
  if (tr == 0) return Status::Error(Layer::kHarness, "the AK is not persisted any more");
  TPM2B_DATA qualifying{};
  if (nonce.size() > sizeof(qualifying.buffer)) {
    return Status::Error(Layer::kHarness, "quote nonce longer than 64 bytes");
  }
  qualifying.size = static_cast<uint16_t>(nonce.size());
  std::memcpy(qualifying.buffer, nonce.data(), nonce.size());
  TPMT_SIG_SCHEME scheme{};
  scheme.scheme = TPM2_ALG_NULL;  // the key's own scheme
  TPML_PCR_SELECTION sel = Selection(banks, pcr_mask);
  EsysOut<TPM2B_ATTEST> attest;
  EsysOut<TPMT_SIGNATURE> signature;
  TRY(Check(Esys_Quote(Ctx(esys_.get()), tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                       &qualifying, &scheme, &sel, &attest, &signature),
            "TPM2_Quote"));
  QuoteBlob q;
  q.attest.assign(attest->attestationData, attest->attestationData + attest->size);
  uint8_t buf[sizeof(TPMT_SIGNATURE)];
  size_t off = 0;
  TSS2_RC rc = Tss2_MU_TPMT_SIGNATURE_Marshal(signature.p, buf, sizeof(buf), &off);
  if (rc != TSS2_RC_SUCCESS) return Check(rc, "marshal TPMT_SIGNATURE");
  q.signature.assign(buf, buf + off);
  return q;
}

Status Tpm::Clear(Hierarchy auth) {
  if (auth != Hierarchy::kLockout && auth != Hierarchy::kPlatform) {
    return Status::Error(Layer::kHarness, "TPM2_Clear is authorised by lockout or platform");
  }
  Status s = Check(Esys_Clear(Ctx(esys_.get()), HierarchyTr(auth), ESYS_TR_PASSWORD, ESYS_TR_NONE,
                              ESYS_TR_NONE),
                   "TPM2_Clear");
  // Clear evicts the persisted keys of the owner and endorsement hierarchies.
  ForgetObjects();
  return s;
}

Status Tpm::ClearControl(Hierarchy auth, bool disable) {
  if (auth != Hierarchy::kLockout && auth != Hierarchy::kPlatform) {
    return Status::Error(Layer::kHarness, "TPM2_ClearControl is authorised by lockout or platform");
  }
  // Re-enabling with lockout auth is left to the TPM to refuse (TPM_RC_AUTH_FAIL).
  return Check(Esys_ClearControl(Ctx(esys_.get()), HierarchyTr(auth), ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                 ESYS_TR_NONE, disable ? TPM2_YES : TPM2_NO),
               disable ? "TPM2_ClearControl(disable)" : "TPM2_ClearControl(enable)");
}

Status Tpm::ChangeEps() {
  Status s = Check(Esys_ChangeEPS(Ctx(esys_.get()), ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD,
                                  ESYS_TR_NONE, ESYS_TR_NONE),
                   "TPM2_ChangeEPS");
  // A new endorsement seed flushes the endorsement hierarchy's persisted keys (EK, AK).
  ForgetObjects();
  return s;
}

Status Tpm::ChangePps() {
  Status s = Check(Esys_ChangePPS(Ctx(esys_.get()), ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD,
                                  ESYS_TR_NONE, ESYS_TR_NONE),
                   "TPM2_ChangePPS");
  ForgetObjects();
  return s;
}

Status Tpm::HierarchyControl(Hierarchy which, bool enable) {
  TPMI_RH_ENABLES target = TPM2_RH_OWNER;
  switch (which) {
    case Hierarchy::kOwner: target = TPM2_RH_OWNER; break;
    case Hierarchy::kEndorsement: target = TPM2_RH_ENDORSEMENT; break;
    case Hierarchy::kPlatform: target = TPM2_RH_PLATFORM; break;
    case Hierarchy::kLockout:
      return Status::Error(Layer::kHarness, "TPM2_HierarchyControl switches owner, endorsement or platform");
  }
  Status s = Check(Esys_HierarchyControl(Ctx(esys_.get()), ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD,
                                         ESYS_TR_NONE, ESYS_TR_NONE, target, enable ? TPM2_YES : TPM2_NO),
                   enable ? "TPM2_HierarchyControl(enable)" : "TPM2_HierarchyControl(disable)");
  // Objects of a disabled hierarchy cannot be used; after enabling, read them again.
  ForgetObjects();
  return s;
}

Status Tpm::PcrAllocate(const std::vector<HashAlg>& banks) {
  // TPM2_PCR_Allocate leaves the banks it is not told about alone: name every
  // bank the TPM implements, with no PCRs for the ones not wanted.
  EsysOut<TPMS_CAPABILITY_DATA> caps;
  TPMI_YES_NO more = 0;
  TRY(Check(Esys_GetCapability(Ctx(esys_.get()), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                               TPM2_CAP_PCRS, 0, 1, &more, &caps),
            "TPM2_GetCapability(PCRS)"));
  TPML_PCR_SELECTION allocation{};
  auto add = [&](TPMI_ALG_HASH hash, uint8_t size_of_select) {
    for (uint32_t i = 0; i < allocation.count; ++i) {
      if (allocation.pcrSelections[i].hash == hash) return &allocation.pcrSelections[i];
    }
    if (allocation.count >= TPM2_NUM_PCR_BANKS) return static_cast<TPMS_PCR_SELECTION*>(nullptr);
    auto& s = allocation.pcrSelections[allocation.count++];
    s.hash = hash;
    s.sizeofSelect = size_of_select;
    return &s;
  };
  const auto& implemented = caps->data.assignedPCR;
  for (uint32_t i = 0; i < implemented.count; ++i) {
    add(implemented.pcrSelections[i].hash, std::max<uint8_t>(implemented.pcrSelections[i].sizeofSelect, 3));
  }
  for (HashAlg bank : banks) {
    // A bank the TPM does not implement goes in too: refusing it is the TPM's call.
    TPMS_PCR_SELECTION* s = add(static_cast<TPMI_ALG_HASH>(bank), 3);
    if (s == nullptr) return Status::Error(Layer::kHarness, "TPM2_PCR_Allocate: too many banks");
    for (int b = 0; b < kPcrCount / 8; ++b) s->pcrSelect[b] = 0xFF;
  }
  TPMI_YES_NO success = TPM2_NO;
  uint32_t max_pcr = 0, size_needed = 0, size_available = 0;
  TRY(Check(Esys_PCR_Allocate(Ctx(esys_.get()), ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                              ESYS_TR_NONE, &allocation, &success, &max_pcr, &size_needed,
                              &size_available),
            "TPM2_PCR_Allocate"));
  if (success != TPM2_YES) {
    return Status::Error(Layer::kTpm, "TPM2_PCR_Allocate: allocationSuccess NO (needs " +
                                          std::to_string(size_needed) + " bytes, " +
                                          std::to_string(size_available) + " available)");
  }
  return Status::Ok();
}

Status Tpm::ClockSet(uint64_t new_clock_ms) {
  return Check(Esys_ClockSet(Ctx(esys_.get()), ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                             ESYS_TR_NONE, new_clock_ms),
               "TPM2_ClockSet");
}

Result<std::vector<uint32_t>> Tpm::Handles(uint32_t first, const char* what) {
  std::vector<uint32_t> handles;
  const uint32_t type = first & 0xFF000000;
  uint32_t next = first;
  for (int round = 0; round < 64; ++round) {
    EsysOut<TPMS_CAPABILITY_DATA> caps;
    TPMI_YES_NO more = 0;
    TRY(Check(Esys_GetCapability(Ctx(esys_.get()), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                 TPM2_CAP_HANDLES, next, TPM2_MAX_CAP_HANDLES, &more, &caps),
              what));
    const auto& list = caps->data.handles;
    for (uint32_t i = 0; i < list.count; ++i) {
      if ((list.handle[i] & 0xFF000000) != type) return handles;
      handles.push_back(list.handle[i]);
    }
    if (!more || list.count == 0) break;
    next = list.handle[list.count - 1] + 1;
  }
  return handles;
}

Result<std::vector<uint32_t>> Tpm::PersistentHandles() {
  return Handles(TPM2_PERSISTENT_FIRST, "TPM2_GetCapability(HANDLES persistent)");
}

Result<std::vector<uint32_t>> Tpm::NvIndices() {
  return Handles(TPM2_NV_INDEX_FIRST, "TPM2_GetCapability(HANDLES NV)");
}

Result<TpmProperties> Tpm::Properties() {
  std::map<uint32_t, uint32_t> props;
  uint32_t next = TPM2_PT_FIXED;
  for (int round = 0; round < 8; ++round) {
    EsysOut<TPMS_CAPABILITY_DATA> caps;
    TPMI_YES_NO more = 0;
    TRY(Check(Esys_GetCapability(Ctx(esys_.get()), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                 TPM2_CAP_TPM_PROPERTIES, next, TPM2_MAX_TPM_PROPERTIES, &more, &caps),
              "TPM2_GetCapability(TPM_PROPERTIES)"));
    const auto& list = caps->data.tpmProperties;
    for (uint32_t i = 0; i < list.count; ++i) props[list.tpmProperty[i].property] = list.tpmProperty[i].value;
    if (!more || list.count == 0) break;
    next = list.tpmProperty[list.count - 1].property + 1;
    if (next >= TPM2_PT_VAR) break;  // only the fixed group is needed
  }
  auto ascii = [](uint32_t v) {
    std::string s;
    for (int i = 3; i >= 0; --i) {
      char c = static_cast<char>((v >> (8 * i)) & 0xFF);
      if (c != '\0') s.push_back(c);
    }
    return s;
  };
  TpmProperties p;
  p.manufacturer_id = props[TPM2_PT_MANUFACTURER];
  p.manufacturer = ascii(p.manufacturer_id);
  for (uint32_t pt = TPM2_PT_VENDOR_STRING_1; pt <= TPM2_PT_VENDOR_STRING_4; ++pt) {
    p.vendor_string += ascii(props[pt]);
  }
  p.firmware_version = uint64_t{props[TPM2_PT_FIRMWARE_VERSION_1]} << 32 | props[TPM2_PT_FIRMWARE_VERSION_2];
  p.spec_level = props[TPM2_PT_LEVEL];
  p.spec_revision = props[TPM2_PT_REVISION];
  p.spec_year = props[TPM2_PT_YEAR];
  p.spec_day = props[TPM2_PT_DAY_OF_YEAR];
  // The hierarchy switches are in the variable group: one more property.
  EsysOut<TPMS_CAPABILITY_DATA> var;
  TPMI_YES_NO more = 0;
  TRY(Check(Esys_GetCapability(Ctx(esys_.get()), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                               TPM2_CAP_TPM_PROPERTIES, TPM2_PT_STARTUP_CLEAR, 1, &more, &var),
            "TPM2_GetCapability(STARTUP_CLEAR)"));
  if (var->data.tpmProperties.count == 1 &&
      var->data.tpmProperties.tpmProperty[0].property == TPM2_PT_STARTUP_CLEAR) {
    const uint32_t flags = var->data.tpmProperties.tpmProperty[0].value;
    p.platform_enabled = flags & TPMA_STARTUP_CLEAR_PHENABLE;
    p.owner_enabled = flags & TPMA_STARTUP_CLEAR_SHENABLE;
    p.endorsement_enabled = flags & TPMA_STARTUP_CLEAR_EHENABLE;
  }
  return p;
}

Result<TimeInfo> Tpm::ReadClock() {
  EsysOut<TPMS_TIME_INFO> t;
  TRY(Check(Esys_ReadClock(Ctx(esys_.get()), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &t),
            "TPM2_ReadClock"));
  TimeInfo info;
  info.time_ms = t->time;
  info.clock = {t->clockInfo.clock, t->clockInfo.resetCount, t->clockInfo.restartCount,
                t->clockInfo.safe == TPM2_YES};
  return info;
}

Result<Bytes> Tpm::NvRead(uint32_t index) {
  ESYS_TR tr = ESYS_TR_NONE;
  TRY(Check(Esys_TR_FromTPMPublic(Ctx(esys_.get()), index, ESYS_TR_NONE, ESYS_TR_NONE,
                                  ESYS_TR_NONE, &tr),
            "TPM2_NV_ReadPublic"));
  EsysOut<TPM2B_NV_PUBLIC> pub;
  EsysOut<TPM2B_NAME> name;
  Status s = Check(Esys_NV_ReadPublic(Ctx(esys_.get()), tr, ESYS_TR_NONE, ESYS_TR_NONE,
                                      ESYS_TR_NONE, &pub, &name),
                   "TPM2_NV_ReadPublic");
  Bytes data;
  const uint16_t size = s.ok() ? pub->nvPublic.dataSize : 0;
  // EK certificate indices are readable with their own (empty) auth or the owner's.
  const ESYS_TR auth = s.ok() && (pub->nvPublic.attributes & TPMA_NV_AUTHREAD) ? tr : ESYS_TR_RH_OWNER;
  while (s.ok() && data.size() < size) {
    const uint16_t chunk = static_cast<uint16_t>(std::min<size_t>(size - data.size(), 1024));
    EsysOut<TPM2B_MAX_NV_BUFFER> part;
    s = Check(Esys_NV_Read(Ctx(esys_.get()), auth, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                           chunk, static_cast<uint16_t>(data.size()), &part),
              "TPM2_NV_Read");
    if (s.ok()) data.insert(data.end(), part->buffer, part->buffer + part->size);
  }
  Esys_TR_Close(Ctx(esys_.get()), &tr);
  TRY(s);
  return data;
}

}  // namespace tpmlab
