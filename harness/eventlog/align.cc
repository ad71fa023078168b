#include "harness/align.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>

namespace tpmlab {
namespace {

using Matches = std::vector<std::pair<size_t, size_t>>;

// Past this many edits in the middle of two sequences (after the common head
// and tail are set aside) the search stops and that middle is compared
// position by position: the search keeps O(edits²) positions, about 16 MB here.
constexpr int kMaxEdits = 2000;

// Matched pairs (i, j) of a longest common subsequence of a and b, ascending
// (Myers' O(ND) shortest edit script). False when it would take more than
// kMaxEdits edits.
bool CommonSubsequence(const uint32_t* a, int n, const uint32_t* b, int m, Matches& matches) {
  if (n == 0 || m == 0) return true;
  const int max = std::min(n + m, kMaxEdits);
  const int off = max + 1;
  std::vector<int> v(static_cast<size_t>(2 * max + 3), 0);
  std::vector<std::vector<int>> trace;  // trace[d][k + d] = furthest x on diagonal k after d edits
  int end_d = -1;
  for (int d = 0; d <= max && end_d < 0; ++d) {
    for (int k = -d; k <= d; k += 2) {
      int x = (k == -d || (k != d && v[off + k - 1] < v[off + k + 1])) ? v[off + k + 1] : v[off + k - 1] + 1;
      int y = x - k;
      while (x < n && y < m && a[x] == b[y]) ++x, ++y;
      v[off + k] = x;
      if (x >= n && y >= m) end_d = d;
    }
    trace.emplace_back(v.begin() + (off - d), v.begin() + (off + d + 1));
  }
  if (end_d < 0) return false;
  const size_t first = matches.size();
  int x = n, y = m;
  for (int d = end_d; d > 0; --d) {
    const std::vector<int>& prev = trace[static_cast<size_t>(d - 1)];
    auto at = [&prev, d](int k) { return prev[static_cast<size_t>(k + d - 1)]; };
    const int k = x - y;
    const int pk = (k == -d || (k != d && at(k - 1) < at(k + 1))) ? k + 1 : k - 1;
    const int px = at(pk), py = px - pk;
    while (x > px && y > py) {
      --x, --y;
      matches.emplace_back(static_cast<size_t>(x), static_cast<size_t>(y));
    }
    x = px, y = py;
  }
  while (x > 0 && y > 0) {
    --x, --y;
    matches.emplace_back(static_cast<size_t>(x), static_cast<size_t>(y));
  }
  std::reverse(matches.begin() + static_cast<std::ptrdiff_t>(first), matches.end());
  return true;
}

// Pairs of equal keys in order: the common head and tail, and between them
// a longest common subsequence, or equal keys at equal positions when the
// middle is too different to search (then `positional` is set).
Matches Match(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b, bool& positional) {
  Matches matches;
  size_t head = 0;
  while (head < a.size() && head < b.size() && a[head] == b[head]) {
    matches.emplace_back(head, head);
    ++head;
  }
  size_t tail = 0;
  while (tail < a.size() - head && tail < b.size() - head && a[a.size() - 1 - tail] == b[b.size() - 1 - tail]) {
    ++tail;
  }
  const size_t n = a.size() - head - tail, m = b.size() - head - tail;
  Matches middle;
  if (CommonSubsequence(a.data() + head, static_cast<int>(n), b.data() + head, static_cast<int>(m), middle)) {
    for (auto [i, j] : middle) matches.emplace_back(head + i, head + j);
  } else {
    positional = true;
    for (size_t k = 0; k < std::min(n, m); ++k) {
      if (a[head + k] == b[head + k]) matches.emplace_back(head + k, head + k);
    }
  }
  for (size_t t = tail; t > 0; --t) matches.emplace_back(a.size() - t, b.size() - t);
  return matches;
}

bool SameBytes(ByteView x, ByteView y) { return std::equal(x.begin(), x.end(), y.begin(), y.end()); }

// The rules of align.h, from the closest match to the loosest.
enum Step { kSameMeasurement, kSameData, kSameType, kUnmatched };

class Aligner {
 public:
  Aligner(const EventLog& a, const EventLog& b, LogAlignment& out) : a_(a), b_(b), out_(out) {
    std::vector<uint16_t> in_a = LogBanks(a), in_b = LogBanks(b);
    for (auto* algs : {&in_a, &in_b}) {
      std::sort(algs->begin(), algs->end());
      algs->erase(std::unique(algs->begin(), algs->end()), algs->end());
    }
    std::set_intersection(in_a.begin(), in_a.end(), in_b.begin(), in_b.end(), std::back_inserter(common_));
    out_.common_banks = common_;
  }

  void AlignPcr(uint32_t pcr, const std::vector<size_t>& ea, const std::vector<size_t>& eb) {
    pcr_ = pcr;
    ea_ = &ea;
    eb_ = &eb;
    positional_ = false;
    AlignRange(kSameMeasurement, 0, ea.size(), 0, eb.size());
    if (positional_) out_.positional_pcrs.push_back(pcr);
  }

 private:
  // A small integer per distinct key of `step`, shared by both logs.
  uint32_t Key(Step step, const EventLog& log, const Event& e) {
    if (step == kSameType) return e.type;
    std::string key;
    auto put = [&key](ByteView v) { key.append(reinterpret_cast<const char*>(v.data()), v.size()); };
    key.push_back(step == kSameMeasurement ? 'm' : 'd');
    for (int i = 0; i < 4; ++i) key.push_back(static_cast<char>(e.type >> (8 * i)));
    if (step == kSameMeasurement) {
      for (uint16_t alg : common_) {
        auto d = log.DigestFor(e, alg);
        key.push_back(d ? '+' : '-');
        if (d) put(*d);
      }
    }
    if (step == kSameData || common_.empty() || e.type == ev::kNoAction) {
      key.push_back('|');
      put(log.Data(e));
    }
    return ids_.emplace(std::move(key), static_cast<uint32_t>(ids_.size())).first->second;
  }

  // Events [a0, a1) and [b0, b1) of this PCR's sequences, which no closer
  // rule matched, matched by `step` and the looser rules after it.
  void AlignRange(Step step, size_t a0, size_t a1, size_t b0, size_t b1) {
    if (step == kUnmatched || a0 == a1 || b0 == b1) {
      for (size_t k = 0; k < std::max(a1 - a0, b1 - b0); ++k) {
        if (a0 + k < a1) out_.differences.push_back({EventDifference::Kind::kRemoved, pcr_, (*ea_)[a0 + k], {}});
        if (b0 + k < b1) out_.differences.push_back({EventDifference::Kind::kAdded, pcr_, {}, (*eb_)[b0 + k]});
      }
      return;
    }
    std::vector<uint32_t> ka, kb;
    ka.reserve(a1 - a0);
    kb.reserve(b1 - b0);
    for (size_t i = a0; i < a1; ++i) ka.push_back(Key(step, a_, a_.events()[(*ea_)[i]]));
    for (size_t j = b0; j < b1; ++j) kb.push_back(Key(step, b_, b_.events()[(*eb_)[j]]));
    const Step looser = static_cast<Step>(step + 1);
    size_t pa = a0, pb = b0;
    for (auto [i, j] : Match(ka, kb, positional_)) {
      AlignRange(looser, pa, a0 + i, pb, b0 + j);
      Pair(a0 + i, b0 + j);
      pa = a0 + i + 1;
      pb = b0 + j + 1;
    }
    AlignRange(looser, pa, a1, pb, b1);
  }

  // Two matched events: a difference when their data or digests differ.
  void Pair(size_t i, size_t j) {
    const size_t x = (*ea_)[i], y = (*eb_)[j];
    const Event& ex = a_.events()[x];
    const Event& ey = b_.events()[y];
    const bool data = !SameBytes(a_.Data(ex), b_.Data(ey));
    bool digest = common_.empty() && data;
    for (uint16_t alg : common_) {
      auto dx = a_.DigestFor(ex, alg), dy = b_.DigestFor(ey, alg);
      if (dx.has_value() != dy.has_value() || (dx && !SameBytes(*dx, *dy))) digest = true;
    }
    if (!data && !digest) return;
    out_.differences.push_back({EventDifference::Kind::kChanged, pcr_, x, y, digest, data});
  }

  const EventLog& a_;
  const EventLog& b_;
  LogAlignment& out_;
  std::vector<uint16_t> common_;
  std::unordered_map<std::string, uint32_t> ids_;
  uint32_t pcr_ = 0;
  const std::vector<size_t>* ea_ = nullptr;
  const std::vector<size_t>* eb_ = nullptr;
  bool positional_ = false;
};

}  // namespace

std::vector<uint16_t> LogBanks(const EventLog& log) {
  if (log.format() == LogFormat::kSha1) return {static_cast<uint16_t>(HashAlg::kSha1)};
  std::vector<uint16_t> banks;
  for (const auto& a : log.spec().algorithms) banks.push_back(a.alg);
  return banks;
}

LogAlignment AlignEventLogs(const EventLog& before, const EventLog& after) {
  LogAlignment out;
  Aligner aligner(before, after, out);
  std::map<uint32_t, std::pair<std::vector<size_t>, std::vector<size_t>>> by_pcr;
  for (size_t i = 0; i < before.size(); ++i) by_pcr[before.events()[i].pcr].first.push_back(i);
  for (size_t i = 0; i < after.size(); ++i) by_pcr[after.events()[i].pcr].second.push_back(i);
  for (const auto& [pcr, sequences] : by_pcr) aligner.AlignPcr(pcr, sequences.first, sequences.second);
  return out;
}

}  // namespace tpmlab
