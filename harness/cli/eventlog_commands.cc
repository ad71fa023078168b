// tpmlab eventlog show | replay | diff

#include <algorithm>
#include <array>
#include <exception>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>
#include <system_error>
#include <thread>

#include "exit_codes.h"
#include "harness/event_data.h"
#include "harness/findings.h"
#include "harness/replay.h"
#include "commands.h"

namespace tpmlab::cli {
namespace {

// --- tpmlab eventlog show | replay | diff ------------------------------------
// show and replay exit 0 when the log parsed (findings do not change it);
// diff exits 0 when the logs agree and 1 when they differ, as `tpmlab diff`
// does; each exits 2 when a log is malformed (the message names the file and
// the byte offset).

using Json = nlohmann::json;

std::string Dump(const Json& j) { return j.dump(2, ' ', false, Json::error_handler_t::replace); }

std::string AlgName(uint16_t id) {
  if (auto alg = HashAlgFromId(id)) return HashAlgName(*alg);
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%04x", id);
  return buf;
}

Json DigestsJson(const EventLog& log, const Event& e) {
  Json d = Json::object();
  for (uint32_t k = 0; k < e.digest_count; ++k) {
    const auto& ref = log.DigestAt(e, k);
    d[AlgName(ref.alg)] = ToHex(log.DigestBytes(ref));
  }
  return d;
}

Json FindingsJson(const std::vector<Finding>& findings) {
  Json out = Json::array();
  for (const auto& f : findings) {
    out.push_back({{"code", f.code}, {"message", f.message}, {"event", f.event_index}, {"pcr", f.pcr},
                   {"offset", f.offset}});
  }
  return out;
}

Result<EventLog> LoadLog(const std::string& file) {
  auto log = ReadEventLogFile(file);
  if (!log.ok()) std::cerr << "tpmlab: " << log.status().message() << "\n";
  return log;
}

// tpmlab eventlog show FILE [--json]
int EventlogShow(const std::string& file, bool as_json) {
  auto log = LoadLog(file);
  if (!log.ok()) return kExitUsage;
  const std::vector<Finding> findings = CheckEventLog(*log);
  const auto& events = log->events();
  const bool agile = log->format() == LogFormat::kCryptoAgile;
  if (as_json) {
    Json list = Json::array();
    for (size_t i = 0; i < events.size(); ++i) {
      const Event& e = events[i];
      DecodedEvent d = DecodeEventData(*log, e);
      list.push_back({{"index", i}, {"offset", e.log_offset}, {"pcr", e.pcr}, {"type", EventTypeName(e.type)},
                      {"type_value", e.type}, {"digests", DigestsJson(*log, e)}, {"data_size", e.data_size},
                      {"summary", d.summary}, {"data", std::move(d.data)}});
    }
    Json out = {{"file", file}, {"format", LogFormatName(log->format())}};
    if (agile) out["spec_id"] = SpecIdJson(log->spec());
    out["events"] = std::move(list);
    out["findings"] = FindingsJson(findings);
    std::cout << Dump(out) << "\n";
    return kExitPassed;
  }
  std::cout << file << ": " << LogFormatName(log->format()) << ", " << events.size() << " events, "
            << findings.size() << " findings\n";
  if (agile) {
    const auto& spec = log->spec();
    std::cout << "  Spec ID Event03: platform class " << spec.platform_class << ", spec "
              << int{spec.version_major} << "." << int{spec.version_minor} << " errata " << int{spec.errata}
              << ", banks";
    for (const auto& a : spec.algorithms) std::cout << " " << AlgName(a.alg);
    if (!spec.vendor_info.empty()) std::cout << ", vendor info " << ToHex(spec.vendor_info);
    std::cout << "\n";
  }
  size_t next_finding = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    std::cout << "\n#" << i << " @" << e.log_offset << " PCR" << e.pcr << " " << EventTypeName(e.type) << " ("
              << e.data_size << " bytes)\n";
    for (uint32_t k = 0; k < e.digest_count; ++k) {
      const auto& ref = log->DigestAt(e, k);
      std::string alg = AlgName(ref.alg);
      alg.resize(std::max<size_t>(alg.size(), 7), ' ');
      std::cout << "    " << alg << " " << ToHex(log->DigestBytes(ref)) << "\n";
    }
    std::cout << "    " << DecodeEventData(*log, e).summary << "\n";
    for (; next_finding < findings.size() && findings[next_finding].event_index == i; ++next_finding) {
      std::cout << "    ! " << findings[next_finding].code << ": " << findings[next_finding].message << "\n";
    }
  }
  return kExitPassed;
}

// A log this long has its findings checked on a second thread while the
// replay runs (both only read the log), when more than one CPU is usable.
constexpr size_t kParallelFindings = 16384;

// CheckEventLog, on its own thread when that is worth it; Get() joins it.
class FindingsJob {
 public:
  FindingsJob(const EventLog& log, bool parallel) : log_(log) {
    if (!parallel) return;
    try {
      thread_ = std::thread([this] {
        try {
          findings_ = CheckEventLog(log_);
        } catch (...) {
          error_ = std::current_exception();
        }
      });
    } catch (const std::system_error&) {
      // no thread: Get() checks on the caller's
    }
  }
  FindingsJob(const FindingsJob&) = delete;
  FindingsJob& operator=(const FindingsJob&) = delete;
  ~FindingsJob() {
    if (thread_.joinable()) thread_.join();
  }
  std::vector<Finding> Get() {
    if (!thread_.joinable()) return CheckEventLog(log_);
    thread_.join();
    if (error_) std::rethrow_exception(error_);
    return std::move(findings_);
  }

 private:
  const EventLog& log_;
  std::thread thread_;
  std::vector<Finding> findings_;
  std::exception_ptr error_;
};

// A JSON string as Dump writes it (UTF-8 kept, invalid bytes replaced).
void PutJsonString(std::string& out, const std::string& s) {
  out += Json(s).dump(-1, ' ', false, Json::error_handler_t::replace);
}

// tpmlab eventlog replay FILE [--json]
// The output is what Dump writes for {"file", "format", "events", "pcrs",
// "findings"} (keys sorted, except PCR numbers: 0, 1, 2, ..., 10 as a reader
// counts), written straight out rather than built as a JSON tree first.
int EventlogReplay(const std::string& file, bool as_json) {
  auto log = LoadLog(file);
  if (!log.ok()) return kExitUsage;
  FindingsJob checks(*log, log->size() >= kParallelFindings && UsableCpus() > 1);
  auto replay = ReplayEventLog(*log);
  if (!replay.ok()) {
    std::cerr << "tpmlab: " << replay.status().ToString() << "\n";
    return kExitRunError;
  }
  // The extended PCRs per bank: banks by name, PCRs by their decimal text.
  struct BankValues {
    const char* name;
    const PcrBank* values;
    uint32_t mask;
  };
  std::vector<BankValues> banks;
  for (const auto& [alg, values] : replay->pcrs) {
    const uint32_t mask = replay->extended.at(alg);
    if (mask != 0) banks.push_back({HashAlgName(alg), &values, mask});
  }
  std::sort(banks.begin(), banks.end(), [](const BankValues& a, const BankValues& b) {
    return std::string_view(a.name) < std::string_view(b.name);
  });
  std::array<int, kPcrCount> pcr_order;  // numeric: PCR 2 before PCR 11
  for (int i = 0; i < kPcrCount; ++i) pcr_order[i] = i;
  const std::vector<Finding> findings = checks.Get();

  std::string out;  // written out whenever it passes kChunk: a long list of findings is not held whole
  constexpr size_t kChunk = 64 * 1024;
  auto flush = [&out] {
    std::cout.write(out.data(), static_cast<std::streamsize>(out.size()));
    out.clear();
  };
  if (as_json) {
    out += "{\n  \"events\": " + std::to_string(log->size()) + ",\n  \"file\": ";
    PutJsonString(out, file);
    out += ",\n  \"findings\": ";
    if (findings.empty()) {
      out += "[]";
    } else {
      out += "[\n";
      for (size_t k = 0; k < findings.size(); ++k) {
        const Finding& f = findings[k];
        out += "    {\n      \"code\": ";
        PutJsonString(out, f.code);
        out += ",\n      \"event\": " + std::to_string(f.event_index) + ",\n      \"message\": ";
        PutJsonString(out, f.message);
        out += ",\n      \"offset\": " + std::to_string(f.offset) + ",\n      \"pcr\": " + std::to_string(f.pcr) +
               (k + 1 < findings.size() ? "\n    },\n" : "\n    }\n");
        if (out.size() >= kChunk) flush();
      }
      out += "  ]";
    }
    out += ",\n  \"format\": ";
    PutJsonString(out, LogFormatName(log->format()));
    out += ",\n  \"pcrs\": ";
    if (banks.empty()) {
      out += "{}";
    } else {
      out += "{\n";
      for (size_t b = 0; b < banks.size(); ++b) {
        out += "    ";
        PutJsonString(out, banks[b].name);
        out += ": {\n";
        bool first = true;
        for (int i : pcr_order) {
          if (!(banks[b].mask & (1u << i))) continue;
          out += first ? "      \"" : ",\n      \"";
          first = false;
          out += std::to_string(i) + "\": \"" + ToHex((*banks[b].values)[i]) + "\"";
        }
        out += b + 1 < banks.size() ? "\n    },\n" : "\n    }\n";
      }
      out += "  }";
    }
    out += "\n}\n";
  } else {
    out += file + ": " + LogFormatName(log->format()) + ", " + std::to_string(log->size()) + " events\n";
    for (const BankValues& b : banks) {
      for (int i : pcr_order) {
        if (!(b.mask & (1u << i))) continue;
        out += "  " + std::string(b.name) + ":" + std::to_string(i) + " " + ToHex((*b.values)[i]) + "\n";
      }
    }
    for (const auto& f : findings) {
      out += "  ! " + f.code + ": " + f.message + "\n";
      if (out.size() >= kChunk) flush();
    }
  }
  flush();
  return kExitPassed;
}

// Aligning two logs' events on one PCR. Events are equal when type and the
// digests of the banks both logs carry agree (type and data when they share
// no bank). A longest common subsequence finds what stayed; an unmatched
// event of A and one of B with the same type between the same anchors is a
// change, the rest were removed or added.
enum class Step { kSame, kRemoved, kAdded };
struct Aligned {
  Step step;
  size_t a = 0, b = 0;  // positions in the per-PCR sequences
};

constexpr size_t kMaxLcsCells = size_t{1} << 22;  // 16 MB of table; beyond, align by position

std::vector<Aligned> Align(const std::vector<std::string>& a, const std::vector<std::string>& b, bool& positional) {
  std::vector<Aligned> out;
  const size_t n = a.size(), m = b.size();
  size_t pre = 0, suf = 0;
  while (pre < n && pre < m && a[pre] == b[pre]) out.push_back({Step::kSame, pre, pre}), ++pre;
  while (suf < n - pre && suf < m - pre && a[n - 1 - suf] == b[m - 1 - suf]) ++suf;
  const size_t na = n - pre - suf, nb = m - pre - suf;
  if (na * nb <= kMaxLcsCells) {
    // lcs[i][j]: the longest common subsequence of a[pre+i..] and b[pre+j..].
    std::vector<uint32_t> lcs((na + 1) * (nb + 1), 0);
    auto at = [&](size_t i, size_t j) -> uint32_t& { return lcs[i * (nb + 1) + j]; };
    for (size_t i = na; i-- > 0;) {
      for (size_t j = nb; j-- > 0;) {
        at(i, j) = a[pre + i] == b[pre + j] ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));
      }
    }
    size_t i = 0, j = 0;
    while (i < na || j < nb) {
      if (i < na && j < nb && a[pre + i] == b[pre + j]) {
        out.push_back({Step::kSame, pre + i++, pre + j++});
      } else if (j == nb || (i < na && at(i + 1, j) >= at(i, j + 1))) {
        out.push_back({Step::kRemoved, pre + i++, 0});
      } else {
        out.push_back({Step::kAdded, 0, pre + j++});
      }
    }
  } else {
    positional = true;
    for (size_t k = 0; k < std::max(na, nb); ++k) {
      if (k < na && k < nb && a[pre + k] == b[pre + k]) {
        out.push_back({Step::kSame, pre + k, pre + k});
        continue;
      }
      if (k < na) out.push_back({Step::kRemoved, pre + k, 0});
      if (k < nb) out.push_back({Step::kAdded, 0, pre + k});
    }
  }
  for (size_t k = suf; k > 0; --k) out.push_back({Step::kSame, n - k, m - k});
  return out;
}

std::vector<uint16_t> Banks(const EventLog& log) {
  if (log.format() == LogFormat::kSha1) return {static_cast<uint16_t>(HashAlg::kSha1)};
  std::vector<uint16_t> banks;
  for (const auto& a : log.spec().algorithms) banks.push_back(a.alg);
  return banks;
}

std::string AlignKey(const EventLog& log, const Event& e, const std::vector<uint16_t>& shared) {
  std::string key = std::to_string(e.type) + ":";
  if (shared.empty()) {
    ByteView d = log.Data(e);
    return key + ToHex(d);
  }
  for (uint16_t alg : shared) {
    auto d = log.DigestFor(e, alg);
    key += d ? ToHex(*d) : "-";
    key += ":";
  }
  return key;
}

Json DiffEventJson(const EventLog& log, size_t index) {
  const Event& e = log.events()[index];
  return {{"index", index}, {"offset", e.log_offset}, {"type", EventTypeName(e.type)},
          {"digests", DigestsJson(log, e)}, {"summary", DecodeEventData(log, e).summary}};
}

bool SameData(const EventLog& a, const Event& ea, const EventLog& b, const Event& eb) {
  ByteView x = a.Data(ea), y = b.Data(eb);
  return std::equal(x.begin(), x.end(), y.begin(), y.end());
}

// Per PCR: {"added": [...], "removed": [...], "changed": [{"a", "b", "differs"}]}.
Json DiffPcr(const EventLog& la, const std::vector<size_t>& ia, const EventLog& lb, const std::vector<size_t>& ib,
             const std::vector<uint16_t>& shared) {
  std::vector<std::string> ka, kb;
  for (size_t i : ia) ka.push_back(AlignKey(la, la.events()[i], shared));
  for (size_t i : ib) kb.push_back(AlignKey(lb, lb.events()[i], shared));
  bool positional = false;
  const std::vector<Aligned> steps = Align(ka, kb, positional);
  Json added = Json::array(), removed = Json::array(), changed = Json::array();
  auto change = [&](size_t a, size_t b, bool digest) {
    Json differs = Json::array();
    if (digest) differs.push_back("digest");
    if (!SameData(la, la.events()[ia[a]], lb, lb.events()[ib[b]])) differs.push_back("data");
    if (differs.empty()) return;
    changed.push_back({{"a", DiffEventJson(la, ia[a])}, {"b", DiffEventJson(lb, ib[b])}, {"differs", differs}});
  };
  for (size_t s = 0; s < steps.size();) {
    if (steps[s].step == Step::kSame) {
      change(steps[s].a, steps[s].b, false);
      ++s;
      continue;
    }
    // A run of removed and added events between two anchors.
    std::vector<size_t> gone, came;
    for (; s < steps.size() && steps[s].step != Step::kSame; ++s) {
      (steps[s].step == Step::kRemoved ? gone : came).push_back(s);
    }
    std::vector<bool> paired(came.size(), false);
    for (size_t g : gone) {
      const size_t a = steps[g].a;
      size_t k = 0;
      while (k < came.size() && (paired[k] || la.events()[ia[a]].type != lb.events()[ib[steps[came[k]].b]].type)) ++k;
      if (k < came.size()) {
        paired[k] = true;
        change(a, steps[came[k]].b, true);
      } else {
        removed.push_back(DiffEventJson(la, ia[a]));
      }
    }
    for (size_t k = 0; k < came.size(); ++k) {
      if (!paired[k]) added.push_back(DiffEventJson(lb, ib[steps[came[k]].b]));
    }
  }
  if (added.empty() && removed.empty() && changed.empty()) return nullptr;
  Json out = {{"added", added}, {"removed", removed}, {"changed", changed}};
  if (positional) out["alignment"] = "positional";  // too long for the LCS table
  return out;
}

// "the digest and the data differ" from ["digest", "data"].
std::string WhatDiffers(const Json& differs) {
  std::string parts;
  for (size_t i = 0; i < differs.size(); ++i) {
    parts += (i == 0 ? "the " : " and the ") + differs[i].get<std::string>();
  }
  return parts + (differs.size() > 1 ? " differ" : " differs");
}

void PrintDiffEvent(const char* mark, const char* side, const Json& e) {
  std::cout << "  " << mark << " " << side << "#" << e["index"] << " @" << e["offset"] << " "
            << e["type"].get<std::string>() << "  " << e["summary"].get<std::string>() << "\n";
  for (const auto& [alg, hex] : e["digests"].items()) {
    std::cout << "      " << alg << " " << hex.get<std::string>() << "\n";
  }
}

// tpmlab eventlog diff A B [--json]
int EventlogDiff(const std::string& file_a, const std::string& file_b, bool as_json) {
  auto la = LoadLog(file_a);
  if (!la.ok()) return kExitUsage;
  auto lb = LoadLog(file_b);
  if (!lb.ok()) return kExitUsage;
  auto ra = ReplayEventLog(*la);
  auto rb = ReplayEventLog(*lb);
  if (!ra.ok() || !rb.ok()) {
    std::cerr << "tpmlab: " << (ra.ok() ? rb.status() : ra.status()).ToString() << "\n";
    return kExitRunError;
  }
  std::vector<uint16_t> shared;
  for (uint16_t alg : Banks(*la)) {
    const auto bb = Banks(*lb);
    if (std::find(bb.begin(), bb.end(), alg) != bb.end()) shared.push_back(alg);
  }
  std::map<uint32_t, std::pair<std::vector<size_t>, std::vector<size_t>>> by_pcr;
  for (size_t i = 0; i < la->size(); ++i) by_pcr[la->events()[i].pcr].first.push_back(i);
  for (size_t i = 0; i < lb->size(); ++i) by_pcr[lb->events()[i].pcr].second.push_back(i);
  Json pcrs = Json::object();
  std::vector<uint32_t> changed_pcrs;  // in numeric order, for the text form
  for (const auto& [pcr, seqs] : by_pcr) {
    Json d = DiffPcr(*la, seqs.first, *lb, seqs.second, shared);
    if (d.is_null()) continue;
    pcrs[std::to_string(pcr)] = std::move(d);
    changed_pcrs.push_back(pcr);
  }
  Json values = Json::object();
  for (const auto& [alg, va] : ra->pcrs) {
    auto vb = rb->pcrs.find(alg);
    if (vb == rb->pcrs.end()) continue;
    Json bank = Json::object();
    for (int i = 0; i < kPcrCount; ++i) {
      if (va[i] != vb->second[i]) bank[std::to_string(i)] = {{"a", ToHex(va[i])}, {"b", ToHex(vb->second[i])}};
    }
    if (!bank.empty()) values[HashAlgName(alg)] = std::move(bank);
  }
  Json banks = Json::object();
  for (const auto& [side, log] : {std::pair{"a", &*la}, std::pair{"b", &*lb}}) {
    Json list = Json::array();
    for (uint16_t alg : Banks(*log)) list.push_back(AlgName(alg));
    banks[side] = std::move(list);
  }
  Json out = {{"a", file_a}, {"b", file_b},
              {"format", {{"a", LogFormatName(la->format())}, {"b", LogFormatName(lb->format())}}},
              {"events", {{"a", la->size()}, {"b", lb->size()}}}, {"banks", banks},
              {"pcrs", pcrs}, {"pcr_values", values}};
  const int exit_code = pcrs.empty() && values.empty() ? kExitPassed : kExitFailed;
  if (as_json) {
    std::cout << Dump(out) << "\n";
    return exit_code;
  }
  if (exit_code == kExitPassed) {
    std::cout << file_a << " -> " << file_b << ": the same events and PCR values\n";
    return exit_code;
  }
  std::cout << file_a << " -> " << file_b << ": " << pcrs.size() << " PCRs with event changes, "
            << (shared.empty() ? "no bank in common" : std::to_string(values.size()) + " banks with PCR values that differ")
            << "\n";
  for (uint32_t pcr : changed_pcrs) {
    const Json& d = pcrs[std::to_string(pcr)];
    std::cout << "PCR" << pcr << ": " << d["added"].size() << " added, " << d["removed"].size() << " removed, "
              << d["changed"].size() << " changed" << (d.contains("alignment") ? " (aligned by position)" : "") << "\n";
    for (const auto& e : d["removed"]) PrintDiffEvent("-", "a", e);
    for (const auto& e : d["added"]) PrintDiffEvent("+", "b", e);
    for (const auto& c : d["changed"]) {
      std::cout << "  ~ changed: " << WhatDiffers(c["differs"]) << "\n";
      PrintDiffEvent(" ", "a", c["a"]);
      PrintDiffEvent(" ", "b", c["b"]);
    }
  }
  for (const auto& [bank, differ] : values.items()) {
    for (int i = 0; i < kPcrCount; ++i) {
      if (!differ.contains(std::to_string(i))) continue;
      const Json& v = differ[std::to_string(i)];
      std::cout << "value " << bank << ":" << i << "\n  a " << v["a"].get<std::string>() << "\n  b "
                << v["b"].get<std::string>() << "\n";
    }
  }
  return exit_code;
}

struct EventlogArgs {
  std::string file, other;
  bool json = false;
};

}  // namespace

std::vector<Command> AddEventlogCommands(CLI::App& app) {
  auto a = std::make_shared<EventlogArgs>();
  auto* eventlog = app.add_subcommand("eventlog", "Read, replay and compare TCG event logs");
  eventlog->require_subcommand(1);
  auto* show = eventlog->add_subcommand("show", "Print every event: PCR, type, digests, decoded data, findings");
  show->add_option("FILE", a->file, "Event log (binary_bios_measurements)")->required();
  show->add_flag("--json", a->json, "JSON output");
  auto* replay = eventlog->add_subcommand("replay", "Replay a log into PCR values per bank");
  replay->add_option("FILE", a->file, "Event log (binary_bios_measurements)")->required();
  replay->add_flag("--json", a->json, "JSON output");
  auto* diff = eventlog->add_subcommand(
      "diff", "Compare two logs per PCR: events added, removed, changed; PCR values; exit 1 when they differ");
  diff->add_option("A", a->file, "The log before")->required();
  diff->add_option("B", a->other, "The log after")->required();
  diff->add_flag("--json", a->json, "JSON output");
  return {{show, [a] { return EventlogShow(a->file, a->json); }},
          {replay, [a] { return EventlogReplay(a->file, a->json); }},
          {diff, [a] { return EventlogDiff(a->file, a->other, a->json); }}};
}

}  // namespace tpmlab::cli
