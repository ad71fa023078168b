#include "harness/snapshot_json.h"

#include <fstream>

namespace tpmlab {

using nlohmann::json;

json PcrsToJson(const PcrValues& pcrs) {
  json out = json::object();
  for (const auto& [bank, values] : pcrs) {
    json b = json::object();
    for (int i = 0; i < kPcrCount; ++i) b[std::to_string(i)] = ToHex(values[i]);
    out[HashAlgName(bank)] = std::move(b);
  }
  return out;
}

json ClockToJson(const ClockInfo& c) {
  return {{"clock_ms", c.clock_ms},
          {"reset_count", c.reset_count},
          {"restart_count", c.restart_count},
          {"safe", c.safe}};
}

json EventlogToJson(const Snapshot& s) {
  if (!s.eventlog) return nullptr;
  json matches = json::object();
  for (HashAlg bank : s.replay_banks) {
    auto it = s.replay_differs.find(bank);
    matches[HashAlgName(bank)] = it == s.replay_differs.end() ? json(true) : json(it->second);
  }
  auto digest = Hash(HashAlg::kSha256, *s.eventlog);
  return {{"events", s.eventlog_events},
          {"bytes", s.eventlog->size()},
          {"sha256", digest.ok() ? ToHex(*digest) : ""},
          {"replay_matches", matches}};
}

namespace {
std::string NvIndexHex(uint32_t index) {
  char hex[16];
  std::snprintf(hex, sizeof(hex), "0x%08x", index);
  return hex;
}
}  // namespace

json SnapshotToJson(const Snapshot& s) {
  json banks = json::array();
  for (HashAlg b : s.banks) banks.push_back(HashAlgName(b));
  json quoted = json::array();
  for (int i = 0; i < kPcrCount; ++i) {
    if (s.quote_pcrs & (1u << i)) quoted.push_back(i);
  }
  char fw[24];
  std::snprintf(fw, sizeof(fw), "0x%016llx", static_cast<unsigned long long>(s.properties.firmware_version));
  const auto& q = s.quote_check;
  return {
      {"taken_at", s.taken_at},
      {"taken_at_ms", s.taken_at_ms},
      {"quote_round_trip_ms", s.quote_round_trip_ms},
      {"banks", banks},
      {"pcrs", PcrsToJson(s.pcrs)},
      {"clock", ClockToJson(s.clock())},
      {"firmware_version", s.properties.firmware_version},
      {"firmware_version_hex", fw},
      {"quote_firmware_version", q.attest.firmware_version},
      {"manufacturer", s.properties.manufacturer},
      {"vendor_string", s.properties.vendor_string},
      {"spec", {{"level", s.properties.spec_level},
                {"revision", s.properties.spec_revision},
                {"year", s.properties.spec_year},
                {"day_of_year", s.properties.spec_day}}},
      {"quote",
       {{"verified", q.verified()},
        {"failure", q.failure},
        {"bank", HashAlgName(s.quote_bank)},
        {"pcrs", quoted},
        {"nonce", ToHex(s.nonce)},
        {"pcr_digest", ToHex(q.attest.pcr_digest)},
        {"attest", ToHex(s.quote.attest)},
        {"signature", ToHex(s.quote.signature)},
        {"attempts", s.quote_attempts},
        {"checks",
         {{"magic", q.magic_ok}, {"type", q.type_ok}, {"nonce", q.nonce_ok},
          {"pcr_digest", q.pcr_digest_ok}, {"signature", q.signature_ok}, {"covers_request", q.covers_request}}}}},
      {"ek_name", ToHex(s.ek.name)},
      {"srk_name", ToHex(s.srk.name)},
      {"ak_name", ToHex(s.ak.name)},
      {"ak_qualified_name", ToHex(s.ak.qualified_name)},
      {"ak_type", KeyTypeName(s.ak.type)},
      {"ak_public_der", ToHex(s.ak.public_der)},
      {"ek_public_der", ToHex(s.ek.public_der)},
      {"ek_certificate", s.ek_certificate ? json(ToHex(*s.ek_certificate)) : json(nullptr)},
      {"ek_certificate_index", s.ek_certificate ? json(NvIndexHex(s.ek_certificate_index)) : json(nullptr)},
      {"key_errors", {{"ek", s.ek_error}, {"srk", s.srk_error}, {"ak", s.ak_error}}},
      {"hierarchies", {{"platform", s.properties.platform_enabled},
                       {"owner", s.properties.owner_enabled},
                       {"endorsement", s.properties.endorsement_enabled}}},
      {"latency_us", s.latency_us},
      {"eventlog", EventlogToJson(s)},
  };
}

json ChecksToJson(const std::vector<Check>& checks) {
  json out = json::array();
  for (const auto& c : checks) out.push_back({{"name", c.name}, {"passed", c.passed}, {"detail", c.detail}});
  return out;
}

Result<PcrValues> PcrsFromJson(const json& j, const std::string& where) {
  PcrValues pcrs;
  if (!j.is_object()) return Status::Parse(where + ": PCRs must be an object of banks");
  for (const auto& [bank_name, values] : j.items()) {
    auto bank = HashAlgFromName(bank_name);
    if (!bank) return Status::Parse(where + ": unknown bank '" + bank_name + "'");
    PcrBank& out = pcrs[*bank];
    for (int i = 0; i < kPcrCount; ++i) out[i] = PcrResetValue(*bank, i);
    for (const auto& [index, hex] : values.items()) {
      int pcr = -1;
      try {
        pcr = std::stoi(index);
      } catch (...) {
      }
      if (pcr < 0 || pcr >= kPcrCount || !hex.is_string()) {
        return Status::Parse(where + ": bad PCR entry '" + index + "' in bank " + bank_name);
      }
      auto bytes = FromHex(hex.get<std::string>());
      if (!bytes.ok() || bytes->size() != HashSize(*bank)) {
        return Status::Parse(where + ": PCR " + bank_name + ":" + index + " is not a " +
                             std::to_string(HashSize(*bank)) + "-byte hex digest");
      }
      out[pcr] = std::move(*bytes);
    }
  }
  return pcrs;
}

namespace {

Result<Bytes> Hex(const json& j, const char* key, const std::string& where, bool required = true) {
  if (!j.contains(key) || j[key].is_null()) {
    if (!required) return Bytes{};
    return Status::Parse(where + ": snapshot field '" + key + "' is missing");
  }
  if (!j[key].is_string()) return Status::Parse(where + ": snapshot field '" + key + "' is not a hex string");
  auto b = FromHex(j[key].get<std::string>());
  if (!b.ok()) return Status::Parse(where + ": snapshot field '" + key + "': " + b.status().message());
  return b;
}

}  // namespace

Status JsonShapeError(const std::string& where, const json::exception& e) {
  return Status::Parse(where + ": not the shape tpmlab writes: " + e.what());
}

namespace {

Result<Snapshot> ReadSnapshot(const json& j, const std::filesystem::path& base_dir, const std::string& where) {
  if (!j.is_object()) return Status::Parse(where + ": a snapshot is a JSON object");
  Snapshot s;
  s.taken_at = j.value("taken_at", "");
  s.taken_at_ms = j.value("taken_at_ms", int64_t{0});
  s.quote_round_trip_ms = j.value("quote_round_trip_ms", int64_t{0});
  for (const auto& b : j.value("banks", json::array())) {
    auto bank = b.is_string() ? HashAlgFromName(b.get<std::string>()) : std::nullopt;
    if (!bank) return Status::Parse(where + ": unknown bank in 'banks'");
    s.banks.push_back(*bank);
  }
  TRY_ASSIGN(s.pcrs, PcrsFromJson(j.value("pcrs", json::object()), where));
  s.properties.firmware_version = j.value("firmware_version", uint64_t{0});
  s.properties.manufacturer = j.value("manufacturer", "");
  s.properties.vendor_string = j.value("vendor_string", "");
  const json spec = j.value("spec", json::object());
  s.properties.spec_level = spec.value("level", 0u);
  s.properties.spec_revision = spec.value("revision", 0u);
  s.properties.spec_year = spec.value("year", 0u);
  s.properties.spec_day = spec.value("day_of_year", 0u);
  const json latency = j.value("latency_us", json::object());
  for (const auto& [name, us] : latency.items()) {
    if (us.is_number()) s.latency_us[name] = us.get<double>();
  }
  const json h = j.value("hierarchies", json::object());
  s.properties.platform_enabled = h.value("platform", true);
  s.properties.owner_enabled = h.value("owner", true);
  s.properties.endorsement_enabled = h.value("endorsement", true);
  TRY_ASSIGN(s.ek.name, Hex(j, "ek_name", where));
  TRY_ASSIGN(s.srk.name, Hex(j, "srk_name", where));
  TRY_ASSIGN(s.ak.name, Hex(j, "ak_name", where));
  TRY_ASSIGN(s.ak.public_der, Hex(j, "ak_public_der", where));
  TRY_ASSIGN(s.ak.qualified_name, Hex(j, "ak_qualified_name", where, false));  // older run.json files lack it
  TRY_ASSIGN(s.ek.public_der, Hex(j, "ek_public_der", where, false));
  if (j.contains("ek_certificate") && !j["ek_certificate"].is_null()) {
    TRY_ASSIGN(s.ek_certificate, Hex(j, "ek_certificate", where));
    // Snapshots from before the ECC index was read hold the RSA certificate.
    s.ek_certificate_index = kEkCertRsaIndex;
    if (j.contains("ek_certificate_index") && j["ek_certificate_index"].is_string()) {
      const std::string index = j["ek_certificate_index"].get<std::string>();
      try {
        s.ek_certificate_index = static_cast<uint32_t>(std::stoul(index, nullptr, 16));
      } catch (...) {
        return Status::Parse(where + ": ek_certificate_index '" + index + "' is not a hex NV index");
      }
    }
  }
  const json errors = j.value("key_errors", json::object());
  s.ek_error = errors.value("ek", "");
  s.srk_error = errors.value("srk", "");
  s.ak_error = errors.value("ak", "");

  const json q = j.value("quote", json::object());
  auto bank = HashAlgFromName(q.value("bank", "sha256"));
  s.quote_bank = bank ? *bank : HashAlg::kSha256;
  for (const auto& p : q.value("pcrs", json::array())) {
    if (p.is_number_integer() && p.get<int>() >= 0 && p.get<int>() < kPcrCount) s.quote_pcrs |= 1u << p.get<int>();
  }
  TRY_ASSIGN(s.nonce, Hex(q, "nonce", where + " quote", false));
  TRY_ASSIGN(s.quote.attest, Hex(q, "attest", where + " quote", false));
  TRY_ASSIGN(s.quote.signature, Hex(q, "signature", where + " quote", false));
  s.quote_attempts = q.value("attempts", s.quote.attest.empty() ? 0 : 1);
  if (!s.quote.attest.empty()) {
    // Judge the quote again from its bytes rather than trusting "verified".
    // (the run's own request; a verifier judges it again with its own)
    s.quote_check = VerifyQuote(s.quote, s.ak.public_der, s.nonce, s.pcrs, {s.quote_bank, s.quote_pcrs});
  } else {
    s.quote_check.failure = q.value("failure", "no quote");
  }

  const json log = j.value("eventlog", json());
  if (log.is_object() && log.contains("file") && log["file"].is_string()) {
    const std::filesystem::path file = base_dir / log["file"].get<std::string>();
    std::ifstream in(file, std::ios::binary);
    if (!in) return Status::Parse(where + ": cannot read the event log " + file.string());
    s.eventlog = Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (log.is_object()) {
    // How the log replayed when the snapshot was taken: per bank compared,
    // true or the PCRs that differed.
    s.eventlog_events = log.value("events", size_t{0});
    const json replays = log.value("replay_matches", json::object());
    for (const auto& [name, matches] : replays.items()) {
      auto replayed = HashAlgFromName(name);
      if (!replayed) return Status::Parse(where + ": unknown bank '" + name + "' in eventlog.replay_matches");
      s.replay_banks.push_back(*replayed);
      if (matches.is_array()) s.replay_differs[*replayed] = matches.get<std::vector<int>>();
    }
  }
  return s;
}

}  // namespace

Result<Snapshot> SnapshotFromJson(const json& j, const std::filesystem::path& base_dir,
                                  const std::string& where) {
  return CatchingJsonErrors(where, [&] { return ReadSnapshot(j, base_dir, where); });
}

}  // namespace tpmlab
