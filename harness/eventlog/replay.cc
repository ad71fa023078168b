#include "harness/replay.h"

#include <openssl/evp.h>
#include <sched.h>

#include <algorithm>
#include <cstring>
#include <system_error>
#include <thread>

namespace tpmlab {
namespace {

constexpr char kStartupLocality[] = "StartupLocality";  // 16 bytes with its NUL

// One bank being replayed: its digest fetched once, its PCRs in one flat
// buffer that every extend hashes from and finalises into (cache-line
// aligned, so threads extending different banks share no line).
struct alignas(64) Bank {
  uint8_t pcrs[kPcrCount][EVP_MAX_MD_SIZE];
  uint16_t alg_id = 0;
  HashAlg alg{};
  EVP_MD* md = nullptr;
  unsigned size = 0;
  unsigned group = 0;  // the thread that extends it; 0 is the caller's
  uint32_t extended = 0;
};

struct Banks {
  std::vector<Bank> list;
  ~Banks() {
    for (Bank& b : list) EVP_MD_free(b.md);
  }
};

// Banks are independent, so a long log replays each group of banks on its
// own thread, when the process may run on more than one CPU.
constexpr size_t kThreadedExtends = 16384;

}  // namespace

unsigned UsableCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  const int n = CPU_COUNT(&set);
  return n > 1 ? static_cast<unsigned>(n) : 1;
}

namespace {

// Extends, in log order, every digest for a bank of `group`. With `events`,
// also counts the events that extend some bank (of any group). Works from
// its own copy of the bank table, so the hot loop touches no shared line.
Status ExtendGroup(const EventLog& log, std::vector<Bank>& banks, unsigned group, size_t* events) {
  struct Slot {
    uint16_t alg_id;
    unsigned size;
    bool mine;
    EVP_MD* md;
    uint8_t (*pcrs)[EVP_MAX_MD_SIZE];
    uint32_t extended;
  };
  std::vector<Slot> slots;
  slots.reserve(banks.size());
  for (Bank& b : banks) slots.push_back({b.alg_id, b.size, b.group == group, b.md, b.pcrs, 0});
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return Status::Error(Layer::kHarness, "OpenSSL: out of memory");
  Slot* const first = slots.data();
  Slot* const last = first + slots.size();
  size_t count = 0;
  uint8_t joined[2 * EVP_MAX_MD_SIZE];
  for (const Event& e : log.events()) {
    if (e.type == ev::kNoAction || e.pcr >= kPcrCount) continue;
    bool any = false;
    for (uint32_t i = 0; i < e.digest_count; ++i) {
      const auto& d = log.DigestAt(e, i);
      Slot* b = first;
      while (b != last && b->alg_id != d.alg) ++b;
      if (b == last || d.size != b->size) continue;  // a digest of the wrong size cannot extend
      any = true;
      if (!b->mine) continue;
      // PCR || digest hashed in one update: a provider call less per extend.
      uint8_t* pcr = b->pcrs[e.pcr];
      std::memcpy(joined, pcr, b->size);
      std::memcpy(joined + b->size, log.DigestBytes(d).data(), d.size);
      unsigned int len = 0;
      EVP_DigestInit_ex2(ctx, b->md, nullptr);
      EVP_DigestUpdate(ctx, joined, 2 * b->size);
      EVP_DigestFinal_ex(ctx, pcr, &len);
      b->extended |= 1u << e.pcr;
    }
    count += any ? 1 : 0;
  }
  EVP_MD_CTX_free(ctx);
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].mine) banks[i].extended = slots[i].extended;
  }
  if (events != nullptr) *events = count;
  return Status::Ok();
}

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
    if (e.type != ev::kNoAction && e.pcr < kPcrCount && (kDrtmPcrs & (1u << e.pcr)) != 0) replay.drtm = true;
  }
  const uint8_t pcr0_start = replay.hcrtm ? 4 : replay.startup_locality;

  // replay.pcrs orders the banks; a bank appears once however often the
  // Spec ID event lists it.
  Banks banks;
  for (uint16_t id : algs) {
    auto alg = HashAlgFromId(id);
    if (!alg) continue;  // an algorithm tpmlab has no name for: not replayed
    if (replay.pcrs.count(*alg) != 0) continue;
    EVP_MD* md = EVP_MD_fetch(nullptr, OpenSslDigestName(*alg), nullptr);
    if (md == nullptr) {
      return Status::Error(Layer::kHarness, std::string("OpenSSL cannot compute ") + HashAlgName(*alg));
    }
    PcrBank& values = replay.pcrs[*alg];
    for (int i = 0; i < kPcrCount; ++i) {
      values[i] = PcrResetValue(*alg, i, pcr0_start);
      // A dynamic launch reset the DRTM PCRs to zero before measuring.
      if (replay.drtm && (kDrtmPcrs & (1u << i)) != 0) std::fill(values[i].begin(), values[i].end(), 0);
    }
    replay.extended[*alg] = 0;
    Bank& b = banks.list.emplace_back();
    b.alg = *alg;
    b.alg_id = id;
    b.md = md;
    b.size = static_cast<unsigned>(values[0].size());
  }
  for (Bank& b : banks.list) {
    const PcrBank& values = replay.pcrs[b.alg];
    for (int i = 0; i < kPcrCount; ++i) std::memcpy(b.pcrs[i], values[i].data(), b.size);
  }

  unsigned groups = 1;
  if (banks.list.size() > 1 && log.size() * banks.list.size() >= kThreadedExtends) {
    groups = std::min<unsigned>(static_cast<unsigned>(banks.list.size()), UsableCpus());
  }
  for (size_t i = 0; i < banks.list.size(); ++i) banks.list[i].group = static_cast<unsigned>(i % groups);
  std::vector<std::thread> workers;
  std::vector<Status> worker_status(groups);
  std::vector<unsigned> unstarted;
  for (unsigned g = 1; g < groups; ++g) {
    try {
      workers.emplace_back([&, g] { worker_status[g] = ExtendGroup(log, banks.list, g, nullptr); });
    } catch (const std::system_error&) {
      unstarted.push_back(g);  // no thread: the caller extends this group after its own
    }
  }
  Status status = ExtendGroup(log, banks.list, 0, &replay.events_extended);
  for (unsigned g : unstarted) worker_status[g] = ExtendGroup(log, banks.list, g, nullptr);
  for (std::thread& t : workers) t.join();
  for (Status& s : worker_status) {
    if (status.ok() && !s.ok()) status = std::move(s);
  }
  if (!status.ok()) return status;
  for (const Bank& b : banks.list) {
    PcrBank& values = replay.pcrs[b.alg];
    for (int i = 0; i < kPcrCount; ++i) values[i].assign(b.pcrs[i], b.pcrs[i] + b.size);
    replay.extended[b.alg] = b.extended;
  }
  return replay;
}

uint32_t ReplayScope(const Replay& replay, HashAlg bank) {
  auto extended = replay.extended.find(bank);
  const uint32_t drtm = extended == replay.extended.end() ? 0 : extended->second & kDrtmPcrs;
  return kMeasuredBootPcrs | drtm;
}

std::map<HashAlg, std::vector<int>> CompareReplay(const Replay& replay, const PcrValues& tpm) {
  std::map<HashAlg, std::vector<int>> differ;
  for (const auto& [alg, values] : replay.pcrs) {
    auto it = tpm.find(alg);
    if (it == tpm.end()) continue;
    const uint32_t scope = ReplayScope(replay, alg);
    for (int i = 0; i < kPcrCount; ++i) {
      if ((scope & (1u << i)) != 0 && values[i] != it->second[i]) differ[alg].push_back(i);
    }
  }
  return differ;
}

}  // namespace tpmlab
