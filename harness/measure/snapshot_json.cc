#include "harness/snapshot_json.h"

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
        {"checks",
         {{"magic", q.magic_ok}, {"type", q.type_ok}, {"nonce", q.nonce_ok},
          {"pcr_digest", q.pcr_digest_ok}, {"signature", q.signature_ok}}}}},
      {"ek_name", ToHex(s.ek.name)},
      {"srk_name", ToHex(s.srk.name)},
      {"ak_name", ToHex(s.ak.name)},
      {"ak_type", KeyTypeName(s.ak.type)},
      {"ak_public_der", ToHex(s.ak.public_der)},
      {"ek_public_der", ToHex(s.ek.public_der)},
      {"ek_certificate", s.ek_certificate ? json(ToHex(*s.ek_certificate)) : json(nullptr)},
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

}  // namespace tpmlab
