// esapi_floor: "the floor" for the tpmlab cycle benchmark.
//
// The benchmark cycle written directly on ESAPI + the tss2 swtpm TCTI, with no
// harness in between, so the harness can be compared against what the TSS alone
// costs. Runs against an already-running swtpm (data port P, ctrl port P+1,
// started with --flags not-need-init) whose state is fresh.
//
//   esapi_floor --port P [--cycles N] [--ak rsa|ecc] [--warmup W] [--verbose]
//
// Setup (once): Startup(CLEAR), GetCapability(PCRS), CreatePrimary AK in the
// endorsement hierarchy (EH keys see real resetCount/restartCount in quotes;
// other hierarchies get them obfuscated), EvictControl to 0x81010002.
//
// Cycle: unorderly power loss (no Shutdown) -> CMD_INIT -> Startup(CLEAR) ->
// PCR_Read all banks x 24 -> PCR_Extend 0-7 (all banks) -> Quote sha256:0-23 ->
// verify locally (attest fields, PCR digest, signature with OpenSSL).
//
// Output (stdout, exactly two lines):
//   esapi_floor cycles=N seconds=S cycles_per_s=X ak=rsa|ecc
//   phase_us init=.. startup=.. pcr_read=.. extend=.. quote=.. verify=..
// Any failure prints what failed on stderr and exits 1.

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tcti_swtpm.h>

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

constexpr TPMI_DH_PERSISTENT kAkHandle = 0x81010002;
constexpr int kNumPcrs = 24;
constexpr int kExtendPcrs = 8;  // PCRs 0-7 are extended each cycle

[[noreturn]] void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::fputs("esapi_floor: ", stderr);
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
    va_end(ap);
    std::exit(1);
}

void check_rc(TSS2_RC rc, const char *what) {
    if (rc != TSS2_RC_SUCCESS)
        die("%s failed: 0x%x (%s)", what, rc, Tss2_RC_Decode(rc));
}

uint64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

double median_us(std::vector<uint64_t> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    double ns = (n % 2) ? double(v[n / 2]) : (double(v[n / 2 - 1]) + double(v[n / 2])) / 2.0;
    return ns / 1000.0;
}

const EVP_MD *md_for(TPMI_ALG_HASH alg) {
    switch (alg) {
    case TPM2_ALG_SHA1: return EVP_sha1();
    case TPM2_ALG_SHA256: return EVP_sha256();
    case TPM2_ALG_SHA384: return EVP_sha384();
    case TPM2_ALG_SHA512: return EVP_sha512();
    case TPM2_ALG_SM3_256: return EVP_get_digestbyname("SM3");
    default: return nullptr;
    }
}

void digest(const EVP_MD *md, const void *data, size_t len, uint8_t *out) {
    unsigned int outlen = 0;
    if (EVP_Digest(data, len, out, &outlen, md, nullptr) != 1) die("EVP_Digest failed");
}

struct Bank {
    TPMI_ALG_HASH alg;
    const EVP_MD *md;
    size_t size;                          // digest size in bytes
    uint8_t pcr[kNumPcrs][64];            // values read this cycle
    uint8_t event[kExtendPcrs][64];       // digest extended into PCR i each cycle
};

struct Options {
    int port = -1;
    int cycles = 200;
    int warmup = 2;
    bool ecc = false;
    bool verbose = false;
};

Options parse_args(int argc, char **argv) {
    Options o;
    auto need = [&](int &i) -> const char * {
        if (i + 1 >= argc) die("%s needs a value", argv[i]);
        return argv[++i];
    };
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--port") o.port = std::atoi(need(i));
        else if (a == "--cycles") o.cycles = std::atoi(need(i));
        else if (a == "--warmup") o.warmup = std::atoi(need(i));
        else if (a == "--ak") {
            std::string v = need(i);
            if (v == "ecc") o.ecc = true;
            else if (v != "rsa") die("--ak must be rsa or ecc");
        } else if (a == "--verbose") o.verbose = true;
        else if (a == "-h" || a == "--help") {
            std::printf("usage: esapi_floor --port P [--cycles N] [--ak rsa|ecc] [--warmup W] [--verbose]\n");
            std::exit(0);
        } else die("unknown argument '%s'", argv[i]);
    }
    if (o.port <= 0 || o.port >= 65535) die("--port P is required (ctrl port is P+1)");
    if (o.cycles <= 0 || o.warmup < 0) die("bad --cycles/--warmup");
    return o;
}

TPM2B_PUBLIC ak_template(bool ecc) {
    TPM2B_PUBLIC t{};
    TPMT_PUBLIC &p = t.publicArea;
    p.nameAlg = TPM2_ALG_SHA256;
    // Restricted signing key; noDA so the unorderly power losses below never
    // bump the lockout counter (notes, gotcha 6).
    p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                         TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                         TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_NODA;
    if (ecc) {
        p.type = TPM2_ALG_ECC;
        TPMS_ECC_PARMS &e = p.parameters.eccDetail;
        e.symmetric.algorithm = TPM2_ALG_NULL;
        e.scheme.scheme = TPM2_ALG_ECDSA;
        e.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
        e.curveID = TPM2_ECC_NIST_P256;
        e.kdf.scheme = TPM2_ALG_NULL;
    } else {
        p.type = TPM2_ALG_RSA;
        TPMS_RSA_PARMS &r = p.parameters.rsaDetail;
        r.symmetric.algorithm = TPM2_ALG_NULL;
        r.scheme.scheme = TPM2_ALG_RSASSA;
        r.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
        r.keyBits = 2048;
        r.exponent = 0;  // default 65537
    }
    return t;
}

// Public part of the AK as an OpenSSL 3 EVP_PKEY (fromdata: no deprecated RSA/EC_KEY API).
EVP_PKEY *to_evp(const TPMT_PUBLIC &pub) {
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *n = nullptr, *e = nullptr;
    uint8_t point[65];
    const char *type;
    if (pub.type == TPM2_ALG_RSA) {
        type = "RSA";
        n = BN_bin2bn(pub.unique.rsa.buffer, pub.unique.rsa.size, nullptr);
        e = BN_new();
        BN_set_word(e, pub.parameters.rsaDetail.exponent ? pub.parameters.rsaDetail.exponent : 65537);
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
    } else {
        type = "EC";
        const TPM2B_ECC_PARAMETER &x = pub.unique.ecc.x, &y = pub.unique.ecc.y;
        if (x.size > 32 || y.size > 32) die("unexpected P-256 coordinate size");
        // Uncompressed point 04||X||Y, coordinates left-padded to 32 bytes.
        std::memset(point, 0, sizeof point);
        point[0] = 0x04;
        std::memcpy(point + 1 + 32 - x.size, x.buffer, x.size);
        std::memcpy(point + 33 + 32 - y.size, y.buffer, y.size);
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point);
    }
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
    EVP_PKEY *pkey = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        die("building the AK EVP_PKEY failed");
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return pkey;
}

// Allocated PCR banks (those with at least one PCR selected).
std::vector<Bank> get_banks(ESYS_CONTEXT *ctx) {
    TPMI_YES_NO more = TPM2_NO;
    TPMS_CAPABILITY_DATA *cap = nullptr;
    check_rc(Esys_GetCapability(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_PCRS, 0, 1,
                                &more, &cap),
             "GetCapability(PCRS)");
    std::vector<Bank> banks;
    const TPML_PCR_SELECTION &sel = cap->data.assignedPCR;
    for (UINT32 i = 0; i < sel.count; ++i) {
        const TPMS_PCR_SELECTION &s = sel.pcrSelections[i];
        bool any = false;
        for (int b = 0; b < s.sizeofSelect; ++b) any |= s.pcrSelect[b] != 0;
        if (!any) continue;
        Bank bk{};
        bk.alg = s.hash;
        bk.md = md_for(s.hash);
        if (!bk.md) die("allocated PCR bank 0x%x has no OpenSSL digest", s.hash);
        bk.size = size_t(EVP_MD_get_size(bk.md));
        // A fixed "measurement" per PCR, hashed with the bank's algorithm.
        for (int p = 0; p < kExtendPcrs; ++p) {
            char ev[64];
            int len = std::snprintf(ev, sizeof ev, "tpmlab-bench event pcr=%d", p);
            digest(bk.md, ev, size_t(len), bk.event[p]);
        }
        banks.push_back(bk);
    }
    Esys_Free(cap);
    if (banks.empty()) die("no allocated PCR banks");
    return banks;
}

ESYS_TR provision_ak(ESYS_CONTEXT *ctx, bool ecc, TPMT_PUBLIC *pub_out) {
    // Evict a previous AK at 0x81010002 if present.
    TPMI_YES_NO more = TPM2_NO;
    TPMS_CAPABILITY_DATA *cap = nullptr;
    check_rc(Esys_GetCapability(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
                                kAkHandle, 1, &more, &cap),
             "GetCapability(HANDLES)");
    bool present = cap->data.handles.count > 0 && cap->data.handles.handle[0] == kAkHandle;
    Esys_Free(cap);
    if (present) {
        ESYS_TR old = ESYS_TR_NONE, none = ESYS_TR_NONE;
        check_rc(Esys_TR_FromTPMPublic(ctx, kAkHandle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &old),
                 "TR_FromTPMPublic(old AK)");
        check_rc(Esys_EvictControl(ctx, ESYS_TR_RH_OWNER, old, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                   ESYS_TR_NONE, kAkHandle, &none),
                 "EvictControl(evict old AK)");
    }

    TPM2B_SENSITIVE_CREATE in_sensitive{};
    TPM2B_PUBLIC in_public = ak_template(ecc);
    TPM2B_DATA outside_info{};
    TPML_PCR_SELECTION creation_pcr{};
    ESYS_TR transient = ESYS_TR_NONE;
    TPM2B_PUBLIC *out_public = nullptr;
    check_rc(Esys_CreatePrimary(ctx, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                ESYS_TR_NONE, &in_sensitive, &in_public, &outside_info,
                                &creation_pcr, &transient, &out_public, nullptr, nullptr, nullptr),
             "CreatePrimary(AK)");
    *pub_out = out_public->publicArea;
    Esys_Free(out_public);

    ESYS_TR persistent = ESYS_TR_NONE;
    check_rc(Esys_EvictControl(ctx, ESYS_TR_RH_OWNER, transient, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                               ESYS_TR_NONE, kAkHandle, &persistent),
             "EvictControl(persist AK)");
    check_rc(Esys_FlushContext(ctx, transient), "FlushContext(AK transient)");
    return persistent;  // ESYS_TR of a persistent handle stays valid across power cycles
}

// Reads all banks x 24 PCRs. PCR_Read returns at most 8 digests per call, so
// clear what came back from the request and ask again until nothing is left.
void read_all_pcrs(ESYS_CONTEXT *ctx, std::vector<Bank> &banks) {
    TPML_PCR_SELECTION want{};
    want.count = UINT32(banks.size());
    for (size_t i = 0; i < banks.size(); ++i) {
        want.pcrSelections[i].hash = banks[i].alg;
        want.pcrSelections[i].sizeofSelect = 3;
        std::memset(want.pcrSelections[i].pcrSelect, 0xff, 3);
    }
    for (;;) {
        bool left = false;
        for (UINT32 i = 0; i < want.count; ++i)
            for (int b = 0; b < 3; ++b) left |= want.pcrSelections[i].pcrSelect[b] != 0;
        if (!left) return;

        UINT32 counter = 0;
        TPML_PCR_SELECTION *got = nullptr;
        TPML_DIGEST *vals = nullptr;
        check_rc(Esys_PCR_Read(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &want, &counter, &got,
                               &vals),
                 "PCR_Read");
        // Values come in selection order: bank by bank, PCR index ascending.
        UINT32 v = 0;
        for (UINT32 s = 0; s < got->count; ++s) {
            const TPMS_PCR_SELECTION &gs = got->pcrSelections[s];
            size_t bi = 0;
            while (bi < banks.size() && banks[bi].alg != gs.hash) ++bi;
            if (bi == banks.size()) die("PCR_Read returned unrequested bank 0x%x", gs.hash);
            for (int p = 0; p < kNumPcrs && p / 8 < gs.sizeofSelect; ++p) {
                if (!(gs.pcrSelect[p / 8] & (1u << (p % 8)))) continue;
                if (v >= vals->count || vals->digests[v].size != banks[bi].size)
                    die("PCR_Read returned a short or mis-sized digest list");
                std::memcpy(banks[bi].pcr[p], vals->digests[v].buffer, banks[bi].size);
                ++v;
                want.pcrSelections[bi].pcrSelect[p / 8] &= uint8_t(~(1u << (p % 8)));
            }
        }
        bool progress = v > 0;
        Esys_Free(got);
        Esys_Free(vals);
        if (!progress) die("PCR_Read made no progress");
    }
}

// After Startup(CLEAR), PC-client PCRs 0-16 and 23 are all-zero, 17-22 all-FF.
// Checking this proves the power cycle really happened.
void check_reset_values(const std::vector<Bank> &banks) {
    for (const Bank &b : banks)
        for (int p = 0; p < kNumPcrs; ++p) {
            uint8_t expect = (p >= 17 && p <= 22) ? 0xff : 0x00;
            for (size_t i = 0; i < b.size; ++i)
                if (b.pcr[p][i] != expect)
                    die("PCR %d (bank 0x%x) is not at its reset value after Startup(CLEAR)", p, b.alg);
        }
}

void extend_pcrs(ESYS_CONTEXT *ctx, const std::vector<Bank> &banks) {
    for (int p = 0; p < kExtendPcrs; ++p) {
        TPML_DIGEST_VALUES d{};
        d.count = UINT32(banks.size());
        for (size_t i = 0; i < banks.size(); ++i) {
            d.digests[i].hashAlg = banks[i].alg;
            std::memcpy(&d.digests[i].digest, banks[i].event[p], banks[i].size);
        }
        check_rc(Esys_PCR_Extend(ctx, ESYS_TR_PCR0 + ESYS_TR(p), ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                 ESYS_TR_NONE, &d),
                 "PCR_Extend");
    }
}

struct Verifier {
    EVP_PKEY *pkey;
    bool ecc;
    bool verbose;
    TPML_PCR_SELECTION quote_sel;
    uint64_t last_reset = 0;
    bool have_last = false;
    int safe_cycles = 0;

    // The sha256 PCR values the quote must cover. Computed locally by replaying
    // the extends on the values read this cycle (cheaper than a second PCR_Read
    // of 24 PCRs = 3 more TPM round trips).
    void expected_pcr_digest(const Bank &sha256, uint8_t out[32]) const {
        uint8_t pcrs[kNumPcrs][32];
        for (int p = 0; p < kNumPcrs; ++p) {
            if (p < kExtendPcrs) {
                uint8_t buf[64];
                std::memcpy(buf, sha256.pcr[p], 32);
                std::memcpy(buf + 32, sha256.event[p], 32);
                digest(EVP_sha256(), buf, sizeof buf, pcrs[p]);
            } else {
                std::memcpy(pcrs[p], sha256.pcr[p], 32);
            }
        }
        digest(EVP_sha256(), pcrs, sizeof pcrs, out);
    }

    void verify(const TPM2B_ATTEST &quoted, const TPMT_SIGNATURE &sig, const uint8_t nonce[32],
                const Bank &sha256) {
        TPMS_ATTEST a{};
        size_t off = 0;
        check_rc(Tss2_MU_TPMS_ATTEST_Unmarshal(quoted.attestationData, quoted.size, &off, &a),
                 "TPMS_ATTEST_Unmarshal");
        if (off != quoted.size) die("trailing bytes after TPMS_ATTEST");
        if (a.magic != TPM2_GENERATED_VALUE) die("attest magic 0x%x", a.magic);
        if (a.type != TPM2_ST_ATTEST_QUOTE) die("attest type 0x%x", a.type);
        if (a.extraData.size != 32 || std::memcmp(a.extraData.buffer, nonce, 32) != 0)
            die("attest extraData does not echo the nonce");
        const TPML_PCR_SELECTION &qs = a.attested.quote.pcrSelect;
        if (qs.count != 1 || qs.pcrSelections[0].hash != TPM2_ALG_SHA256 ||
            qs.pcrSelections[0].sizeofSelect < 3 ||
            std::memcmp(qs.pcrSelections[0].pcrSelect, quote_sel.pcrSelections[0].pcrSelect, 3) != 0)
            die("attest pcrSelect is not sha256:0-23");
        uint8_t expect[32];
        expected_pcr_digest(sha256, expect);
        if (a.attested.quote.pcrDigest.size != 32 ||
            std::memcmp(a.attested.quote.pcrDigest.buffer, expect, 32) != 0)
            die("attest pcrDigest does not match the replayed sha256 PCRs 0-23");

        // EH key: counters are not obfuscated, so an unorderly power cycle must
        // show resetCount +1 and restartCount 0.
        const TPMS_CLOCK_INFO &ci = a.clockInfo;
        if (ci.restartCount != 0) die("restartCount %u after TPM Reset", ci.restartCount);
        if (have_last && ci.resetCount != last_reset + 1)
            die("resetCount went %llu -> %u, expected +1", (unsigned long long)last_reset,
                ci.resetCount);
        last_reset = ci.resetCount;
        have_last = true;
        safe_cycles += ci.safe ? 1 : 0;
        if (verbose)
            std::fprintf(stderr, "quote clock=%llu resetCount=%u restartCount=%u safe=%u\n",
                         (unsigned long long)ci.clock, ci.resetCount, ci.restartCount, ci.safe);

        // Signature over SHA-256(attest bytes).
        uint8_t h[32];
        digest(EVP_sha256(), quoted.attestationData, quoted.size, h);
        std::vector<uint8_t> der;
        const uint8_t *sigp;
        size_t siglen;
        if (ecc) {
            if (sig.sigAlg != TPM2_ALG_ECDSA || sig.signature.ecdsa.hash != TPM2_ALG_SHA256)
                die("quote signature is not ECDSA-SHA256 (0x%x)", sig.sigAlg);
            // TPM gives raw r,s; OpenSSL wants a DER ECDSA-Sig-Value.
            ECDSA_SIG *es = ECDSA_SIG_new();
            BIGNUM *r = BN_bin2bn(sig.signature.ecdsa.signatureR.buffer,
                                  sig.signature.ecdsa.signatureR.size, nullptr);
            BIGNUM *s = BN_bin2bn(sig.signature.ecdsa.signatureS.buffer,
                                  sig.signature.ecdsa.signatureS.size, nullptr);
            if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) die("ECDSA_SIG build failed");
            int len = i2d_ECDSA_SIG(es, nullptr);
            if (len <= 0) die("i2d_ECDSA_SIG failed");
            der.resize(size_t(len));
            uint8_t *p = der.data();
            i2d_ECDSA_SIG(es, &p);
            ECDSA_SIG_free(es);
            sigp = der.data();
            siglen = der.size();
        } else {
            if (sig.sigAlg != TPM2_ALG_RSASSA || sig.signature.rsassa.hash != TPM2_ALG_SHA256)
                die("quote signature is not RSASSA-SHA256 (0x%x)", sig.sigAlg);
            sigp = sig.signature.rsassa.sig.buffer;
            siglen = sig.signature.rsassa.sig.size;
        }
        EVP_PKEY_CTX *vc = EVP_PKEY_CTX_new(pkey, nullptr);
        if (!vc || EVP_PKEY_verify_init(vc) != 1 ||
            (!ecc && EVP_PKEY_CTX_set_rsa_padding(vc, RSA_PKCS1_PADDING) != 1) ||
            EVP_PKEY_CTX_set_signature_md(vc, EVP_sha256()) != 1)
            die("EVP_PKEY verify setup failed");
        int ok = EVP_PKEY_verify(vc, sigp, siglen, h, sizeof h);
        EVP_PKEY_CTX_free(vc);
        if (ok != 1) die("quote signature does not verify");
    }
};

}  // namespace

int main(int argc, char **argv) {
    Options opt = parse_args(argc, argv);

    // swtpm TCTI: one TCP connection per command; Reset sends CMD_INIT on ctrl P+1.
    std::string conf = "host=127.0.0.1,port=" + std::to_string(opt.port);
    size_t tcti_size = 0;
    check_rc(Tss2_Tcti_Swtpm_Init(nullptr, &tcti_size, nullptr), "Tss2_Tcti_Swtpm_Init(size)");
    auto *tcti = static_cast<TSS2_TCTI_CONTEXT *>(std::calloc(1, tcti_size));
    if (!tcti) die("out of memory");
    check_rc(Tss2_Tcti_Swtpm_Init(tcti, &tcti_size, conf.c_str()), "Tss2_Tcti_Swtpm_Init");
    ESYS_CONTEXT *ctx = nullptr;
    check_rc(Esys_Initialize(&ctx, tcti, nullptr), "Esys_Initialize");

    // ---- setup (not timed) ----
    TSS2_RC rc = Esys_Startup(ctx, TPM2_SU_CLEAR);
    if (rc != TSS2_RC_SUCCESS && rc != TPM2_RC_INITIALIZE)  // 0x100: already started, fine
        check_rc(rc, "Startup(CLEAR) at setup");
    std::vector<Bank> banks = get_banks(ctx);
    const Bank *sha256 = nullptr;
    for (const Bank &b : banks)
        if (b.alg == TPM2_ALG_SHA256) sha256 = &b;
    if (!sha256) die("sha256 PCR bank is not allocated; cannot quote sha256:0-23");

    TPMT_PUBLIC ak_pub{};
    ESYS_TR ak = provision_ak(ctx, opt.ecc, &ak_pub);

    Verifier ver{to_evp(ak_pub), opt.ecc, opt.verbose, {}};
    ver.quote_sel.count = 1;
    ver.quote_sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
    ver.quote_sel.pcrSelections[0].sizeofSelect = 3;
    std::memset(ver.quote_sel.pcrSelections[0].pcrSelect, 0xff, 3);
    TPMT_SIG_SCHEME scheme{};
    scheme.scheme = TPM2_ALG_NULL;  // use the key's own scheme

    // ---- cycles ----
    enum { INIT, STARTUP, PCR_READ, EXTEND, QUOTE, VERIFY, NPHASES };
    std::vector<uint64_t> phase[NPHASES];
    for (auto &v : phase) v.reserve(size_t(opt.cycles));
    uint64_t start = 0;
    const int total = opt.warmup + opt.cycles;
    for (int c = 0; c < total; ++c) {
        if (c == opt.warmup) start = now_ns();
        uint64_t t[NPHASES + 1];

        // Unorderly power loss: no Shutdown, straight to CMD_INIT.
        t[0] = now_ns();
        check_rc(Tss2_Tcti_Swtpm_Reset(tcti), "Tss2_Tcti_Swtpm_Reset (CMD_INIT)");
        t[1] = now_ns();
        check_rc(Esys_Startup(ctx, TPM2_SU_CLEAR), "Startup(CLEAR)");
        t[2] = now_ns();
        read_all_pcrs(ctx, banks);
        check_reset_values(banks);
        t[3] = now_ns();
        extend_pcrs(ctx, banks);
        t[4] = now_ns();

        TPM2B_DATA nonce{};
        nonce.size = 32;
        if (RAND_bytes(nonce.buffer, 32) != 1) die("RAND_bytes failed");
        TPM2B_ATTEST *quoted = nullptr;
        TPMT_SIGNATURE *signature = nullptr;
        check_rc(Esys_Quote(ctx, ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &nonce, &scheme,
                            &ver.quote_sel, &quoted, &signature),
                 "Quote");
        t[5] = now_ns();
        ver.verify(*quoted, *signature, nonce.buffer, *sha256);
        Esys_Free(quoted);
        Esys_Free(signature);
        t[6] = now_ns();

        if (c >= opt.warmup)
            for (int p = 0; p < NPHASES; ++p) phase[p].push_back(t[p + 1] - t[p]);
    }
    double seconds = double(now_ns() - start) / 1e9;

    if (opt.verbose)
        std::fprintf(stderr, "cycles with safe=1: %d of %d\n", ver.safe_cycles, total);
    std::printf("esapi_floor cycles=%d seconds=%.3f cycles_per_s=%.1f ak=%s\n", opt.cycles, seconds,
                opt.cycles / seconds, opt.ecc ? "ecc" : "rsa");
    std::printf("phase_us init=%.0f startup=%.0f pcr_read=%.0f extend=%.0f quote=%.0f verify=%.0f\n",
                median_us(phase[INIT]), median_us(phase[STARTUP]), median_us(phase[PCR_READ]),
                median_us(phase[EXTEND]), median_us(phase[QUOTE]), median_us(phase[VERIFY]));

    EVP_PKEY_free(ver.pkey);
    Esys_Finalize(&ctx);
    Tss2_Tcti_Finalize(tcti);
    std::free(tcti);
    return 0;
}
