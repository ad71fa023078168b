#include "harness/replay.h"

#include <openssl/evp.h>

#include <cstring>

namespace tpmlab {
namespace {

constexpr char kStartupLocality[] = "StartupLocality";  // 16 bytes with its NUL

const EVP_MD* Digest(HashAlg alg) {
  switch (alg) {
    case HashAlg::kSha1: return EVP_sha1();
    case HashAlg::kSha256: return EVP_sha256();
    case HashAlg::kSha384: return EVP_sha384();
    case HashAlg::kSha512: return EVP_sha512();
    case HashAlg::kSm3_256: return EVP_get_digestbyname("SM3");
  }
  return nullptr;
}

// One bank being replayed: its digest fetched once, one context reused.
struct Bank {
  HashAlg alg;
  const EVP_MD* md;
  PcrBank* values;
  uint32_t* extended;
};

}  // namespace

std::optional<uint8_t> StartupLocalityOf(const EventLog& log, const Event& e) {
  if (e.type != ev::kNoAction || e.pcr != 0) return std::nullopt;
  ByteView d = log.Data(e);
  if (d.size() < 17 || std::memcmp(d.data(), kStartupLocality, 16) != 0) return std::nullopt;
  return d[16];
}

Result<Replay> ReplayEventLog(const EventLog& log) {
  Replay replay;
  std::vector<uint16_t> algs;
  if (log.format() == LogFormat::kSha1) {
    algs.push_back(static_cast<uint16_t>(HashAlg::kSha1));
  } else {
    for (const auto& a : log.spec().algorithms) algs.push_back(a.alg);
  }
  // Where PCR0 starts depends on events anywhere before its first extend:
  // find the StartupLocality and H-CRTM events first.
  for (const Event& e : log.events()) {
    if (auto loc = StartupLocalityOf(log, e)) replay.startup_locality = *loc;
    if (e.type == ev::kEfiHcrtmEvent && e.pcr == 0) replay.hcrtm = true;
  }
  const uint8_t pcr0_start = replay.hcrtm ? 4 : replay.startup_locality;

  std::vector<Bank> banks;
  for (uint16_t id : algs) {
    auto alg = HashAlgFromId(id);
    if (!alg) continue;  // an algorithm tpmlab has no name for: not replayed
    const EVP_MD* md = Digest(*alg);
    if (md == nullptr) {
      return Status::Error(Layer::kHarness, std::string("OpenSSL cannot compute ") + HashAlgName(*alg));
    }
    PcrBank& values = replay.pcrs[*alg];
    for (int i = 0; i < kPcrCount; ++i) values[i] = PcrResetValue(*alg, i, pcr0_start);
    replay.extended[*alg] = 0;
  }
  for (auto& [alg, values] : replay.pcrs) {
    banks.push_back({alg, Digest(alg), &values, &replay.extended[alg]});
  }

  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  uint8_t out[EVP_MAX_MD_SIZE];
  for (const Event& e : log.events()) {
    if (e.type == ev::kNoAction || e.pcr >= kPcrCount) continue;
    bool any = false;
    for (uint32_t i = 0; i < e.digest_count; ++i) {
      const auto& d = log.DigestAt(e, i);
      for (Bank& b : banks) {
        if (static_cast<uint16_t>(b.alg) != d.alg) continue;
        Bytes& pcr = (*b.values)[e.pcr];
        if (d.size != pcr.size()) break;  // a digest of the wrong size cannot extend
        unsigned int len = 0;
        EVP_DigestInit_ex2(ctx, b.md, nullptr);
        EVP_DigestUpdate(ctx, pcr.data(), pcr.size());
        EVP_DigestUpdate(ctx, log.DigestBytes(d).data(), d.size);
        EVP_DigestFinal_ex(ctx, out, &len);
        std::memcpy(pcr.data(), out, len);
        *b.extended |= 1u << e.pcr;
        any = true;
        break;
      }
    }
    replay.events_extended += any ? 1 : 0;
  }
  EVP_MD_CTX_free(ctx);
  return replay;
}

std::map<HashAlg, std::vector<int>> CompareReplay(const Replay& replay, const PcrValues& tpm) {
  std::map<HashAlg, std::vector<int>> differ;
  for (const auto& [alg, values] : replay.pcrs) {
    auto it = tpm.find(alg);
    if (it == tpm.end()) continue;
    for (int i = 0; i < kPcrCount; ++i) {
      if (values[i] != it->second[i]) differ[alg].push_back(i);
    }
  }
  return differ;
}

}  // namespace tpmlab
