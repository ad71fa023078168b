// Recorded firmware: the events a real machine's firmware logged, re-extended
// as they stand into an emulated TPM, so it reaches that machine's PCRs.
#include <string>

#include "harness/boot_source.h"
#include "harness/replay.h"
#include "recorded.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;

Status Bad(const std::string& message) { return Status::Error(Layer::kScenario, message); }

// "event 12 (PCR 0, EV_EFI_HCRTM_EVENT)": the index `tpmlab eventlog show` gives.
std::string EventName(size_t index, const Event& e) {
  return "event " + std::to_string(index) + " (PCR " + std::to_string(e.pcr) + ", " + EventTypeName(e.type) + ")";
}

// The banks a log carries digests for, as tpmlab names them; sm3_256 and
// algorithms tpmlab has no name for are left out (no TPM bank to replay into).
std::vector<std::string> LogBanks(const EventLog& log) {
  if (log.format() == LogFormat::kSha1) return {"sha1"};
  std::vector<std::string> banks;
  for (const auto& a : log.spec().algorithms) {
    auto alg = HashAlgFromId(a.alg);
    if (!alg || *alg == HashAlg::kSm3_256) continue;
    const std::string name = HashAlgName(*alg);
    if (std::find(banks.begin(), banks.end(), name) == banks.end()) banks.push_back(name);
  }
  return banks;
}

// Every extended event carries a digest of the right size for `bank`.
Status CheckBank(const EventLog& log, HashAlg bank, const std::string& where) {
  const auto& events = log.events();
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    if (e.type == ev::kNoAction) continue;
    auto digest = log.DigestFor(e, static_cast<uint16_t>(bank));
    if (!digest || digest->size() != HashSize(bank)) {
      return Bad(where + ": " + EventName(i, e) + " carries no " + HashAlgName(bank) +
                 " digest, so it cannot be replayed into a TPM's " + HashAlgName(bank) +
                 " bank (a model with `recorded:` may give `banks:` without it)");
    }
  }
  return Status::Ok();
}

}  // namespace

Status AttachRecordedLog(FirmwareModel& model, const fs::path& file) {
  const std::string where = file.string();
  auto read = ReadEventLogFile(where);
  if (!read.ok()) return Bad(where + ": not an event log tpmlab can read: " + read.status().message());
  auto log = std::make_shared<const EventLog>(std::move(*read));
  const auto& events = log->events();
  if (events.empty()) return Bad(where + ": the event log holds no event");

  std::optional<size_t> hcrtm;
  std::optional<uint8_t> locality;
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    if (auto loc = StartupLocalityOf(*log, e)) locality = *loc;
    if (e.type == ev::kNoAction) continue;
    if (e.type == ev::kEfiHcrtmEvent && e.pcr == 0) hcrtm = i;
    if (e.pcr >= static_cast<uint32_t>(kPcrCount) || (kDrtmPcrs & (1u << e.pcr)) != 0) {
      return Bad(where + ": " + EventName(i, e) +
                 ": a dynamic launch (DRTM, PCRs 17-22) cannot be replayed by an emulated platform's firmware");
    }
  }

  if (!model.banks) model.banks = LogBanks(*log);
  for (const std::string& name : *model.banks) {
    auto bank = HashAlgFromName(name);
    if (!bank) return Bad(where + ": unknown bank '" + name + "'");
    TRY(CheckBank(*log, *bank, where));
  }

  // PCR0's start: an H-CRTM (the TPM hashes its data before Startup, and
  // PCR0 starts at 00..04 whatever the StartupLocality event says), else the
  // locality of Startup.
  if (hcrtm) {
    const Event& e = events[*hcrtm];
    if (!model.hcrtm) {
      return Bad(where + ": " + EventName(*hcrtm, e) +
                 ": a log records only the digest of what the H-CRTM measured; give that data as `hcrtm:` "
                 "in a model with `recorded: " + file.filename().string() + "`");
    }
    const std::string& data = *model.hcrtm;
    for (const std::string& name : *model.banks) {
      const HashAlg bank = *HashAlgFromName(name);
      TRY_ASSIGN(Bytes h, Hash(bank, AsBytes(data)));
      auto recorded = log->DigestFor(e, static_cast<uint16_t>(bank));
      if (!recorded || Bytes(recorded->begin(), recorded->end()) != h) {
        return Bad(where + ": " + EventName(*hcrtm, e) + ": the model's hcrtm data does not hash to the " + name +
                   " digest the log recorded");
      }
    }
    model.startup_locality.reset();
  } else {
    if (model.hcrtm) return Bad(where + ": the model gives hcrtm, but the log has no H-CRTM event");
    if (locality && *locality != 0 && *locality != 3) {
      return Bad(where + ": the log's StartupLocality event names locality " + std::to_string(*locality) +
                 ", which an emulated platform cannot start from (0 or 3)");
    }
    model.startup_locality = locality.value_or(0);
  }
  model.recorded = file.string();
  model.recorded_log = std::move(log);
  model.sources.push_back(file.string());
  return Status::Ok();
}

Result<EventLog> RecordedBootLog(const FirmwareModel& model, const std::vector<HashAlg>& banks) {
  if (!model.recorded_log) return Bad("firmware model '" + model.name + "' is not a recorded one");
  const EventLog& recorded = *model.recorded_log;
  for (HashAlg bank : banks) TRY(CheckBank(recorded, bank, model.recorded));
  EventLog log = EventLog::CryptoAgile(banks);
  for (const Event& e : recorded.events()) {
    std::vector<std::pair<uint16_t, Bytes>> digests;
    for (HashAlg bank : banks) {
      // EV_NO_ACTION digests are zeros whatever the log had (never extended).
      auto d = e.type == ev::kNoAction ? std::nullopt : recorded.DigestFor(e, static_cast<uint16_t>(bank));
      digests.emplace_back(static_cast<uint16_t>(bank), d ? Bytes(d->begin(), d->end()) : Bytes(HashSize(bank), 0));
    }
    log.Append(e.pcr, e.type, digests, recorded.Data(e));
  }
  return log;
}

}  // namespace tpmlab
