// tpmlab eventlog show | replay | diff

#include <algorithm>
#include <array>
#include <exception>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>
#include <system_error>
#include <thread>

#include "exit_codes.h"
#include "harness/align.h"
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

Json DiffEventJson(const EventLog& log, size_t index) {
  const Event& e = log.events()[index];
  return {{"index", index}, {"offset", e.log_offset}, {"type", EventTypeName(e.type)},
          {"digests", DigestsJson(log, e)}, {"summary", DecodeEventData(log, e).summary}};
}

// Per PCR with a difference: {"added": [...], "removed": [...], "changed":
// [{"a", "b", "differs"}]}, as AlignEventLogs (harness/align.h) pairs them.
Json DiffPcrs(const EventLog& la, const EventLog& lb, const LogAlignment& alignment) {
  Json pcrs = Json::object();
  for (const EventDifference& d : alignment.differences) {
    Json& pcr = pcrs[std::to_string(d.pcr)];
    if (pcr.is_null()) pcr = {{"added", Json::array()}, {"removed", Json::array()}, {"changed", Json::array()}};
    switch (d.kind) {
      case EventDifference::Kind::kAdded: pcr["added"].push_back(DiffEventJson(lb, *d.after)); break;
      case EventDifference::Kind::kRemoved: pcr["removed"].push_back(DiffEventJson(la, *d.before)); break;
      case EventDifference::Kind::kChanged: {
        Json differs = Json::array();
        if (d.digest_differs) differs.push_back("digest");
        if (d.data_differs) differs.push_back("data");
        pcr["changed"].push_back(
            {{"a", DiffEventJson(la, *d.before)}, {"b", DiffEventJson(lb, *d.after)}, {"differs", differs}});
        break;
      }
    }
  }
  for (uint32_t pcr : alignment.positional_pcrs) {
    if (pcrs.contains(std::to_string(pcr))) pcrs[std::to_string(pcr)]["alignment"] = "positional";
  }
  return pcrs;
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
  const LogAlignment alignment = AlignEventLogs(*la, *lb);
  Json pcrs = DiffPcrs(*la, *lb, alignment);
  std::vector<uint32_t> changed_pcrs;  // in numeric order, for the text form
  for (const EventDifference& d : alignment.differences) {
    if (changed_pcrs.empty() || changed_pcrs.back() != d.pcr) changed_pcrs.push_back(d.pcr);
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
    for (uint16_t alg : LogBanks(*log)) list.push_back(AlgName(alg));
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
            << (alignment.common_banks.empty() ? "no bank in common" : std::to_string(values.size()) + " banks with PCR values that differ")
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
