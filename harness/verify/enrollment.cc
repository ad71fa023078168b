#include "harness/enrollment.h"

#include "harness/snapshot_json.h"

namespace tpmlab {

using nlohmann::json;

Enrollment EnrollFromSnapshot(const Snapshot& s, const std::string& dut) {
  Enrollment e;
  e.dut = dut;
  e.enrolled_at = UtcNow();
  e.ek_name = s.ek.name;
  e.ek_public_der = s.ek.public_der;
  e.ek_certificate = s.ek_certificate;
  e.ak_name = s.ak.name;
  e.ak_public_der = s.ak.public_der;
  e.ak_qualified_name = s.ak.qualified_name;
  QuoteRequest request{s.quote_bank, s.quote_pcrs, HashAlg::kSha256};
  if (auto sig = ParseSignature(s.quote.signature); sig.ok()) {
    // The AK's own hash, when it is one the verifier accepts at all.
    auto hash = HashAlgFromId(sig->hash_alg);
    if (hash && *hash != HashAlg::kSha1) request.signature_hash = *hash;
  }
  e.quote_request = request;
  // The signed firmwareVersion, not the unsigned GetCapability answer.
  e.firmware_version = s.quote_check.parsed ? s.quote_check.attest.firmware_version : s.properties.firmware_version;
  e.banks = s.banks;
  e.golden_pcrs = s.pcrs;
  e.golden_eventlog = s.eventlog;
  return e;
}

namespace {

json PcrList(uint32_t mask) {
  json out = json::array();
  for (int i = 0; i < kPcrCount; ++i) {
    if (mask & (1u << i)) out.push_back(i);
  }
  return out;
}

}  // namespace

json EnrollmentToJson(const Enrollment& e) {
  json banks = json::array();
  for (HashAlg b : e.banks) banks.push_back(HashAlgName(b));
  json request = nullptr;
  if (e.quote_request) {
    request = {{"bank", HashAlgName(e.quote_request->bank)},
               {"pcrs", PcrList(e.quote_request->pcrs)},
               {"signature_hash", HashAlgName(e.quote_request->signature_hash)}};
  }
  return {{"dut", e.dut},
          {"enrolled_at", e.enrolled_at},
          {"ek_name", ToHex(e.ek_name)},
          {"ek_public_der", ToHex(e.ek_public_der)},
          {"ek_certificate", e.ek_certificate ? json(ToHex(*e.ek_certificate)) : json(nullptr)},
          {"ak_name", ToHex(e.ak_name)},
          {"ak_public_der", ToHex(e.ak_public_der)},
          {"ak_qualified_name", ToHex(e.ak_qualified_name)},
          {"quote_request", request},
          {"firmware_version", e.firmware_version},
          {"banks", banks},
          {"golden_pcrs", PcrsToJson(e.golden_pcrs)},
          {"golden_eventlog", e.golden_eventlog ? json(ToHex(*e.golden_eventlog)) : json(nullptr)}};
}

namespace {

Result<Bytes> HexField(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || !j[key].is_string()) {
    return Status::Parse(where + ": enrollment field '" + key + "' is missing or not a string");
  }
  auto bytes = FromHex(j[key].get<std::string>());
  if (!bytes.ok()) return Status::Parse(where + ": enrollment field '" + key + "': " + bytes.status().message());
  return bytes;
}

Result<QuoteRequest> QuoteRequestFromJson(const json& j, const std::string& where) {
  const std::string at = where + ": enrollment field 'quote_request'";
  if (!j.is_object()) return Status::Parse(at + " is not an object {bank, pcrs, signature_hash}");
  QuoteRequest r;
  auto bank = HashAlgFromName(j.value("bank", std::string("sha256")));
  auto hash = HashAlgFromName(j.value("signature_hash", std::string("sha256")));
  if (!bank) return Status::Parse(at + ": unknown bank");
  if (!hash) return Status::Parse(at + ": unknown signature_hash");
  r.bank = *bank;
  r.signature_hash = *hash;
  const json pcrs = j.value("pcrs", json::array());
  if (!pcrs.is_array()) return Status::Parse(at + ": 'pcrs' is not a list of PCR numbers");
  for (const auto& p : pcrs) {
    if (!p.is_number_integer() || p.get<int>() < 0 || p.get<int>() >= kPcrCount) {
      return Status::Parse(at + ": 'pcrs' holds " + p.dump() + ", not a PCR number 0-23");
    }
    r.pcrs |= 1u << p.get<int>();
  }
  return r;
}

Result<Enrollment> ReadEnrollment(const json& j, const std::string& where) {
  if (!j.is_object()) return Status::Parse(where + ": an enrollment is a JSON object");
  Enrollment e;
  e.dut = j.value("dut", "");
  e.enrolled_at = j.value("enrolled_at", "");
  TRY_ASSIGN(e.ek_name, HexField(j, "ek_name", where));
  TRY_ASSIGN(e.ek_public_der, HexField(j, "ek_public_der", where));
  TRY_ASSIGN(e.ak_name, HexField(j, "ak_name", where));
  TRY_ASSIGN(e.ak_public_der, HexField(j, "ak_public_der", where));
  if (j.contains("ak_qualified_name") && j["ak_qualified_name"].is_string()) {
    TRY_ASSIGN(e.ak_qualified_name, HexField(j, "ak_qualified_name", where));
  }
  if (j.contains("quote_request") && !j["quote_request"].is_null()) {
    TRY_ASSIGN(e.quote_request, QuoteRequestFromJson(j["quote_request"], where));
  }
  if (j.contains("ek_certificate") && j["ek_certificate"].is_string()) {
    TRY_ASSIGN(e.ek_certificate, HexField(j, "ek_certificate", where));
  }
  if (j.contains("golden_eventlog") && j["golden_eventlog"].is_string()) {
    TRY_ASSIGN(e.golden_eventlog, HexField(j, "golden_eventlog", where));
  }
  e.firmware_version = j.value("firmware_version", uint64_t{0});
  for (const auto& b : j.value("banks", json::array())) {
    auto bank = b.is_string() ? HashAlgFromName(b.get<std::string>()) : std::nullopt;
    if (!bank) return Status::Parse(where + ": unknown bank in 'banks'");
    e.banks.push_back(*bank);
  }
  TRY_ASSIGN(e.golden_pcrs, PcrsFromJson(j.value("golden_pcrs", json::object()), where));
  return e;
}

}  // namespace

Result<Enrollment> EnrollmentFromJson(const json& j, const std::string& where) {
  return CatchingJsonErrors(where, [&] { return ReadEnrollment(j, where); });
}

json EnrollmentHistoryToJson(const std::vector<EnrollmentRecord>& history, const EnrollmentRun& run) {
  json all = json::array();
  for (const auto& r : history) {
    json one = EnrollmentToJson(r.enrollment);
    one["step"] = r.step;
    all.push_back(std::move(one));
  }
  json out = history.empty() ? json::object() : all.back();
  out["run_id"] = run.run_id;
  out["database"] = run.database;
  out["enrollments"] = std::move(all);
  return out;
}

namespace {

Result<EnrollmentHistory> ReadEnrollmentHistory(const json& j, const std::string& where) {
  EnrollmentHistory h;
  if (!j.is_object() || !j.contains("enrollments")) {
    TRY_ASSIGN(Enrollment e, EnrollmentFromJson(j, where));
    h.records.push_back({-1, std::move(e)});
    return h;
  }
  if (!j["enrollments"].is_array() || j["enrollments"].empty()) {
    return Status::Parse(where + ": 'enrollments' is not a list of enrollments");
  }
  int i = 0;
  for (const auto& one : j["enrollments"]) {
    const std::string at = where + ": enrollments[" + std::to_string(i++) + "]";
    TRY_ASSIGN(Enrollment e, EnrollmentFromJson(one, at));
    const json step = one.is_object() ? one.value("step", json()) : json();
    if (!step.is_number_integer()) return Status::Parse(at + ": 'step' is missing or not a whole number");
    h.records.push_back({step.get<int>(), std::move(e)});
  }
  if (j.contains("run_id") && j["run_id"].is_number_integer() && j.contains("database") && j["database"].is_string()) {
    h.run = EnrollmentRun{j["run_id"].get<int64_t>(), j["database"].get<std::string>()};
  }
  return h;
}

}  // namespace

Result<EnrollmentHistory> EnrollmentHistoryFromJson(const json& j, const std::string& where) {
  return CatchingJsonErrors(where, [&] { return ReadEnrollmentHistory(j, where); });
}

const EnrollmentRecord* EnrollmentInForceAt(const std::vector<EnrollmentRecord>& history, int step) {
  const EnrollmentRecord* in_force = nullptr;
  for (const auto& r : history) {
    if (r.step < step && (in_force == nullptr || r.step >= in_force->step)) in_force = &r;
  }
  return in_force;
}

}  // namespace tpmlab
