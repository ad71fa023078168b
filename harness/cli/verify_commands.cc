#include "commands.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "exit_codes.h"
#include "harness/drift.h"
#include "harness/ek_certificate.h"
#include "harness/replay.h"
#include "harness/run_files.h"
#include "harness/snapshot_json.h"
#include "harness/store.h"
#include "harness/verify.h"

namespace tpmlab::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Where a snapshot comes from: "run.json:STEP" (a run's output) or
// "tpmlab.db:RUN:STEP" (the results database).
struct SnapshotRef {
  std::string text;
  fs::path file;                 // run.json, or the database
  std::optional<int64_t> run;    // set for a database
  int64_t step = 0;
};

Result<SnapshotRef> ParseSnapshotRef(const std::string& ref) {
  const auto last = ref.rfind(':');
  if (last == std::string::npos) {
    return Status::Parse(ref + ": name a snapshot as RUN.json:STEP or DATABASE:RUN:STEP");
  }
  auto number = [&ref](const std::string& text) -> Result<int64_t> {
    try {
      size_t used = 0;
      const long long v = std::stoll(text, &used);
      if (used == text.size() && v >= 0) return static_cast<int64_t>(v);
    } catch (...) {
    }
    return Status::Parse(ref + ": '" + text + "' is not a step or run number");
  };
  SnapshotRef r{ref, {}, {}, 0};
  TRY_ASSIGN(r.step, number(ref.substr(last + 1)));
  const std::string head = ref.substr(0, last);
  if (head.ends_with(".json")) {
    r.file = head;
    return r;
  }
  const auto mid = head.rfind(':');
  if (mid == std::string::npos) return Status::Parse(ref + ": name a snapshot as RUN.json:STEP or DATABASE:RUN:STEP");
  TRY_ASSIGN(r.run, number(head.substr(mid + 1)));
  r.file = head.substr(0, mid);
  return r;
}

Result<json> ReadRunJson(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return Status::Parse(file.string() + ": cannot read");
  json run = json::parse(in, nullptr, false);
  if (run.is_discarded() || !run.contains("steps")) return Status::Parse(file.string() + ": not a tpmlab run.json");
  return run;
}

Result<Snapshot> LoadSnapshotFromRunJson(const SnapshotRef& ref) {
  TRY_ASSIGN(json run, ReadRunJson(ref.file));
  if (!run["steps"].is_array()) return Status::Parse(ref.file.string() + ": 'steps' is not a list of steps");
  for (size_t i = 0; i < run["steps"].size(); ++i) {
    const json& s = run["steps"][i];
    // A hand-edited step of another shape is bad input naming its place, never an escaped exception.
    const std::string pointer = ref.file.string() + " /steps/" + std::to_string(i);
    auto is_it = CatchingJsonErrors(pointer, [&]() -> Result<bool> { return s.value("index", -1) == ref.step; });
    if (!is_it.ok()) return is_it.status();
    if (!*is_it) continue;
    if (!s.contains("snapshot")) return Status::Parse(ref.text + ": that step took no snapshot");
    // Inline, or (a compact run.json) in the database it names.
    return SnapshotOfRunStep(s["snapshot"], ref.file.parent_path(), ref.text);
  }
  return Status::Parse(ref.text + ": no step " + std::to_string(ref.step) + " in " + ref.file.string());
}

Result<Snapshot> LoadSnapshot(const SnapshotRef& ref) {
  if (!ref.run) {
    auto snapshot = LoadSnapshotFromRunJson(ref);
    if (!snapshot.ok()) return snapshot.status().At(Location(ref.file.string()));
    return snapshot;
  }
  if (!IsDatabaseUrl(ref.file) && !fs::exists(ref.file)) return Status::Parse(ref.file.string() + ": no such database");
  TRY_ASSIGN(auto store, Store::Open(ref.file));
  return store->LoadSnapshot(*ref.run, static_cast<int>(ref.step));
}

Result<Snapshot> LoadSnapshotRef(const std::string& text) {
  TRY_ASSIGN(SnapshotRef ref, ParseSnapshotRef(text));
  return LoadSnapshot(ref);
}

Result<EnrollmentHistory> LoadEnrollmentFile(const std::string& file) {
  std::ifstream in(file);
  if (!in) return Status::Parse(file + ": cannot read the enrollment").At(Location(file));
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) return Status::Parse(file + ": not JSON").At(Location(file));
  auto history = EnrollmentHistoryFromJson(j, file);
  if (!history.ok()) return history.status().At(Location(file));
  return history;
}

bool SameFile(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  return fs::equivalent(a, b, ec);
}

// Whether an enrollment history was written by the run a snapshot is from:
// it names that run's database and id (a run's enrollment.json does), or,
// naming no run, it lies beside that run.json.
bool FromTheSameRun(const EnrollmentHistory& h, const fs::path& enrollment_file, const SnapshotRef& ref) {
  if (h.run && ref.run) return h.run->run_id == *ref.run && SameFile(ref.file, h.run->database);
  if (h.run) {
    auto run = ReadRunJson(ref.file);
    // (a run_id or database of another type, hand-edited, names no run)
    if (!run.ok() || !(*run)["run_id"].is_number_integer() || (*run)["run_id"].get<int64_t>() != h.run->run_id) {
      return false;
    }
    // Both wrote the same absolute path; the folder may have moved since.
    const std::string db = (*run)["database"].is_string() ? (*run)["database"].get<std::string>() : std::string();
    return db == h.run->database || SameFile(db, h.run->database);
  }
  auto folder = [](const fs::path& file) { return file.parent_path().empty() ? fs::path(".") : file.parent_path(); };
  return !ref.run && SameFile(folder(enrollment_file), folder(ref.file));
}

// The enrollment to judge a snapshot against, and a line saying which one.
struct ChosenEnrollment {
  std::optional<Enrollment> enrollment;
  json about;
};

ChosenEnrollment ChooseEnrollment(const EnrollmentHistory& h, const std::string& file, const SnapshotRef* ref) {
  ChosenEnrollment c;
  c.about = {{"file", file}, {"enrollments", h.records.size()}};
  if (ref == nullptr || !FromTheSameRun(h, file, *ref)) {
    // Another run's (or a standalone) enrollment: its latest is the reference.
    c.enrollment = h.records.back().enrollment;
    c.about["step"] = h.records.back().step;
    c.about["why"] = h.records.size() > 1 ? "the latest: the file is not from this snapshot's run" : "the only one";
    return c;
  }
  const EnrollmentRecord* in_force = EnrollmentInForceAt(h.records, static_cast<int>(ref->step));
  if (in_force == nullptr) {
    c.about["step"] = nullptr;
    c.about["why"] = "the run had not enrolled before step " + std::to_string(ref->step) + ": judged without one";
    return c;
  }
  c.enrollment = in_force->enrollment;
  c.about["step"] = in_force->step;
  c.about["why"] = "in force at step " + std::to_string(ref->step);
  return c;
}

Result<Bytes> ReadFile(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status::Parse(file + ": cannot read");
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// An AK public key given as PEM or DER SubjectPublicKeyInfo.
Result<Bytes> ReadPublicKey(const std::string& file) {
  TRY_ASSIGN(Bytes bytes, ReadFile(file));
  const std::string text(bytes.begin(), bytes.end());
  const auto begin = text.find("-----BEGIN PUBLIC KEY-----");
  if (begin == std::string::npos) return bytes;
  const auto body = begin + 26;
  const auto end = text.find("-----END PUBLIC KEY-----", body);
  if (end == std::string::npos) return Status::Parse(file + ": PEM without an END line");
  std::string b64;
  for (char c : text.substr(body, end - body)) {
    if (!std::isspace(static_cast<unsigned char>(c))) b64.push_back(c);
  }
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  Bytes der;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : b64) {
    if (c == '=') break;
    const auto v = kAlphabet.find(c);
    if (v == std::string::npos) return Status::Parse(file + ": PEM body is not base64");
    acc = acc << 6 | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      der.push_back(static_cast<uint8_t>(acc >> bits));
    }
  }
  return der;
}

void PrintVerdict(const Verdict& v) {
  if (v.alarms.empty()) std::cout << "no alarm\n";
  for (const auto& a : v.alarms) {
    std::cout << SeverityName(a.severity) << " " << a.code << ": " << a.message << "\n";
    for (const auto& [k, val] : a.evidence) {
      if (!val.empty()) std::cout << "    " << k << ": " << val << "\n";
    }
  }
  for (const auto& n : v.not_run) std::cout << "not run: " << n << "\n";
}


int Fail(const Status& s) {
  std::cerr << "tpmlab: " << s.message() << "\n";
  return ExitFor(s);
}

struct VerifyArgs {
  std::string snapshot, previous, enrollment, ek_roots;
  std::string quote, signature, ak, pcrs, log, nonce;
  std::string pcr_selection;
  bool json_out = false;
};

// What tpmlab itself asks every TPM for (the runner's default request), and
// so what a verifier of its evidence asks for when neither --pcr-selection
// nor the enrollment says otherwise.
constexpr QuoteRequest kDefaultRequest{HashAlg::kSha256, 0xFFFFFF, HashAlg::kSha256};

// "sha256:0-7,10,14-15": one bank and its PCRs.
Result<QuoteRequest> ParsePcrSelection(const std::string& text) {
  const auto bad = [&text](const std::string& why) {
    return Status::Parse("--pcr-selection '" + text + "': " + why + " (expected BANK:PCRS, e.g. sha256:0-7,10)");
  };
  const auto colon = text.find(':');
  if (colon == std::string::npos) return bad("no bank");
  QuoteRequest r = kDefaultRequest;
  auto bank = HashAlgFromName(text.substr(0, colon));
  if (!bank) return bad("unknown bank '" + text.substr(0, colon) + "'");
  r.bank = *bank;
  r.pcrs = 0;
  std::string list = text.substr(colon + 1);
  if (list.find(':') != std::string::npos) return bad("one bank only: tpmlab quotes one bank");
  size_t at = 0;
  while (at <= list.size()) {
    const auto comma = list.find(',', at);
    const std::string item = list.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    int first = -1, last = -1;
    char extra = 0;
    const int n = std::sscanf(item.c_str(), "%d-%d%c", &first, &last, &extra);
    if (n == 1 && item.find('-') == std::string::npos) last = first;
    if (!(n == 1 || n == 2) || item.empty() || !std::isdigit(static_cast<unsigned char>(item[0])) || first < 0 ||
        last < first || last >= kPcrCount) {
      return bad("'" + item + "' is not a PCR 0-23 or a range of them");
    }
    for (int i = first; i <= last; ++i) r.pcrs |= 1u << i;
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return r;
}

std::string DescribeRequest(const QuoteRequest& r) {
  std::string out = std::string(HashAlgName(r.bank)) + ":";
  bool first = true;
  for (int i = 0; i < kPcrCount; ++i) {
    if (!(r.pcrs & (1u << i))) continue;
    int j = i;
    while (j + 1 < kPcrCount && (r.pcrs & (1u << (j + 1)))) ++j;
    out += (first ? "" : ",") + std::to_string(i) + (j > i ? "-" + std::to_string(j) : "");
    first = false;
    i = j;
  }
  return out + ", signed " + HashAlgName(r.signature_hash);
}

// Builds the snapshot to judge from loose files (what tpm2_quote writes).
Result<Snapshot> SnapshotFromFiles(const VerifyArgs& a) {
  if (a.quote.empty() || a.signature.empty() || a.ak.empty() || a.pcrs.empty() || a.nonce.empty()) {
    return Status::Parse("verify from files needs --quote, --signature, --ak, --pcrs and --nonce");
  }
  Snapshot s;
  TRY_ASSIGN(s.quote.attest, ReadFile(a.quote));
  TRY_ASSIGN(s.quote.signature, ReadFile(a.signature));
  TRY_ASSIGN(s.ak.public_der, ReadPublicKey(a.ak));
  auto nonce = FromHex(a.nonce);
  if (!nonce.ok()) return Status::Parse("--nonce: " + nonce.status().message());
  s.nonce = *nonce;
  std::ifstream in(a.pcrs);
  if (!in) return Status::Parse(a.pcrs + ": cannot read");
  json pcrs = json::parse(in, nullptr, false);
  if (pcrs.is_discarded()) return Status::Parse(a.pcrs + ": not JSON ({bank: {\"0\": hex, ...}})");
  TRY_ASSIGN(s.pcrs, PcrsFromJson(pcrs.contains("pcrs") ? pcrs["pcrs"] : pcrs, a.pcrs));
  for (const auto& [bank, values] : s.pcrs) s.banks.push_back(bank);
  if (!a.log.empty()) {
    TRY_ASSIGN(Bytes log, ReadFile(a.log));
    s.eventlog = std::move(log);
  }
  // (the evidence's own AK; Verify judges it again with the enrolled one)
  s.quote_check = VerifyQuote(s.quote, s.ak.public_der, s.nonce, s.pcrs);
  s.properties.firmware_version = s.quote_check.attest.firmware_version;
  // Loose files carry no EK: say so instead of raising EK alarms.
  s.ek_error = "";
  return s;
}

int RunVerify(const VerifyArgs& a) {
  std::optional<SnapshotRef> ref;
  if (!a.snapshot.empty()) {
    auto parsed = ParseSnapshotRef(a.snapshot);
    if (!parsed.ok()) return Fail(parsed.status());
    ref = std::move(*parsed);
  }
  Result<Snapshot> now = ref ? LoadSnapshot(*ref) : SnapshotFromFiles(a);
  if (!now.ok()) return Fail(now.status());
  std::optional<Snapshot> previous;
  if (!a.previous.empty()) {
    auto p = LoadSnapshotRef(a.previous);
    if (!p.ok()) return Fail(p.status());
    previous = std::move(*p);
  }
  ChosenEnrollment chosen;
  if (!a.enrollment.empty()) {
    auto history = LoadEnrollmentFile(a.enrollment);
    if (!history.ok()) return Fail(history.status());
    chosen = ChooseEnrollment(*history, a.enrollment, ref ? &*ref : nullptr);
  }
  const std::optional<Enrollment>& enrollment = chosen.enrollment;
  VerifyOptions options;
  if (!a.ek_roots.empty()) {
    auto roots = LoadEkRoots(a.ek_roots);
    if (!roots.ok()) return Fail(Status::Parse("--ek-roots: " + roots.status().message()));
    options.ek_roots = std::move(*roots);
  }
  // The request is the verifier's, never the evidence's: --pcr-selection,
  // else what the enrollment asks of this DUT, else what tpmlab asks for.
  QuoteRequest request = kDefaultRequest;
  std::string request_from = "tpmlab's default";
  if (!a.pcr_selection.empty()) {
    auto parsed = ParsePcrSelection(a.pcr_selection);
    if (!parsed.ok()) return Fail(parsed.status());
    request = *parsed;
    request_from = "--pcr-selection";
  } else if (enrollment && enrollment->quote_request) {
    request = *enrollment->quote_request;
    request_from = "the enrollment";
  }
  if (enrollment && enrollment->quote_request) request.signature_hash = enrollment->quote_request->signature_hash;
  now->quote_bank = request.bank;
  now->quote_pcrs = request.pcrs;
  Verdict v = Verify(*now, previous ? &*previous : nullptr, enrollment ? &*enrollment : nullptr, options);
  if (a.snapshot.empty()) {
    // Loose files say nothing of the EK or hierarchies: those checks did not run.
    static const std::vector<std::string> kEkCodes = {alarm::kEkMissing, alarm::kEkCertMissing, alarm::kEkCertInvalid,
                                                       alarm::kEkChanged};
    const auto about_ek = [](const std::string& code) {
      return std::find(kEkCodes.begin(), kEkCodes.end(), code) != kEkCodes.end();
    };
    std::erase_if(v.alarms, [&](const Alarm& al) { return about_ek(al.code); });
    std::erase_if(v.not_run, [&](const std::string& line) { return about_ek(line.substr(0, line.find(':'))); });
    for (const auto& code : kEkCodes) v.not_run.push_back(code + ": verifying loose files, no EK given");
  }
  if (a.json_out) {
    json out = VerdictToJson(v);
    if (!chosen.about.is_null()) out["enrollment"] = chosen.about;
    out["request"] = {{"selection", DescribeRequest(request)}, {"from", request_from},
                      {"nonce", ToHex(now->nonce)}, {"nonce_from", ref ? "the run's request" : "--nonce"}};
    std::cout << out.dump(2) << "\n";
  } else {
    if (!chosen.about.is_null()) {
      const json& step = chosen.about["step"];
      std::cout << "enrollment: " << a.enrollment
                << (step.is_number() && step.get<int>() >= 0 ? ", made at step " + step.dump() : std::string()) << " ("
                << chosen.about["why"].get<std::string>() << ")\n";
    }
    std::cout << "request: " << DescribeRequest(request) << " (" << request_from << ")\n";
    PrintVerdict(v);
  }
  return v.alarms.empty() ? kExitPassed : kExitFailed;
}

}  // namespace

void PrintDrift(const Drift& d) {
  if (d.empty()) {
    std::cout << "no drift\n";
    return;
  }
  for (const auto& [bank, pcrs] : d.pcrs) {
    std::cout << HashAlgName(bank) << " PCRs changed:";
    for (int p : pcrs) std::cout << " " << p;
    std::cout << "\n";
  }
  for (const auto& e : d.events) {
    std::cout << "  PCR " << e.pcr << " " << e.change << " " << EventTypeName(e.type);
    if (!e.before_summary.empty()) std::cout << "\n      before: " << e.before_summary;
    if (!e.after_summary.empty()) std::cout << "\n      after:  " << e.after_summary;
    std::cout << "\n";
  }
  for (const auto& c : d.causes) {
    std::cout << "cause " << c.code << (c.pcr >= 0 ? " (PCR " + std::to_string(c.pcr) + ")" : "") << ": "
              << c.detail << "\n";
  }
}

std::vector<Command> AddVerifyCommands(CLI::App& app) {
  std::vector<Command> commands;

  auto verify_args = std::make_shared<VerifyArgs>();
  auto* verify = app.add_subcommand("verify", "Judge a snapshot as a verifier would; exit 1 on any alarm");
  verify->add_option("SNAPSHOT", verify_args->snapshot, "RUN.json:STEP or DATABASE:RUN:STEP");
  verify->add_option("--previous", verify_args->previous, "The DUT's earlier snapshot (counter and clock checks)");
  verify->add_option("--enrollment", verify_args->enrollment,
                     "enrollment.json (EK, AK, golden reference); for a step of the run that wrote it, the "
                     "enrollment in force at that step");
  verify->add_option("--ek-roots", verify_args->ek_roots,
                     "TPM manufacturer root/intermediate certificates (PEM or DER file, or a folder of them) the "
                     "EK certificate must chain to; without it the chain is not checked (listed as not run)");
  verify->add_option("--quote", verify_args->quote, "Instead of a snapshot: TPMS_ATTEST file");
  verify->add_option("--signature", verify_args->signature, "TPMT_SIGNATURE file");
  verify->add_option("--ak", verify_args->ak,
                     "The AK public key the evidence names (PEM or DER); with --enrollment the quote is checked "
                     "with the enrolled AK, and another key here is AK_UNKNOWN");
  verify->add_option("--pcrs", verify_args->pcrs, "PCR values as JSON {bank: {\"0\": hex}}");
  verify->add_option("--nonce", verify_args->nonce, "The nonce sent, hex");
  verify->add_option("--pcr-selection", verify_args->pcr_selection,
                     "The PCRs the verifier asked to be quoted, BANK:PCRS (e.g. sha256:0-7,10); default: the "
                     "enrollment's quote_request, else sha256:0-23 (what tpmlab asks every TPM for)");
  verify->add_option("--log", verify_args->log, "The TCG event log");
  verify->add_flag("--json", verify_args->json_out, "JSON output");
  commands.push_back({verify, [verify_args] { return RunVerify(*verify_args); }});

  auto diff_args = std::make_shared<std::array<std::string, 2>>();
  auto diff_json = std::make_shared<bool>(false);
  auto* diff = app.add_subcommand("diff", "What changed between two snapshots, and why; exit 1 when they differ");
  diff->add_option("A", (*diff_args)[0], "RUN.json:STEP or DATABASE:RUN:STEP")->required();
  diff->add_option("B", (*diff_args)[1], "RUN.json:STEP or DATABASE:RUN:STEP")->required();
  diff->add_flag("--json", *diff_json, "JSON output");
  commands.push_back({diff, [diff_args, diff_json] {
                        auto a = LoadSnapshotRef((*diff_args)[0]);
                        if (!a.ok()) return Fail(a.status());
                        auto b = LoadSnapshotRef((*diff_args)[1]);
                        if (!b.ok()) return Fail(b.status());
                        const Drift d = DiffSnapshots(*a, *b);
                        if (*diff_json) {
                          std::cout << DriftToJson(d).dump(2) << "\n";
                        } else {
                          PrintDrift(d);
                        }
                        return static_cast<int>(d.empty() ? kExitPassed : kExitFailed);
                      }});

  auto enroll_args = std::make_shared<std::array<std::string, 3>>();  // snapshot, out, dut
  auto* enroll = app.add_subcommand("enroll", "Enroll a DUT from a known-good snapshot (EK, AK, golden PCRs and log)");
  enroll->add_option("SNAPSHOT", (*enroll_args)[0], "RUN.json:STEP or DATABASE:RUN:STEP")->required();
  enroll->add_option("-o,--out", (*enroll_args)[1], "Where to write the enrollment (default enrollment.json)");
  enroll->add_option("--dut", (*enroll_args)[2], "The DUT's name (default dut0)");
  commands.push_back({enroll, [enroll_args] {
                        auto s = LoadSnapshotRef((*enroll_args)[0]);
                        if (!s.ok()) return Fail(s.status());
                        if (!s->quote_check.verified()) {
                          std::cerr << "tpmlab: refusing to enroll from a snapshot whose quote does not verify: "
                                    << s->quote_check.failure << "\n";
                          return static_cast<int>(kExitFailed);
                        }
                        const std::string out = (*enroll_args)[1].empty() ? "enrollment.json" : (*enroll_args)[1];
                        const std::string dut = (*enroll_args)[2].empty() ? "dut0" : (*enroll_args)[2];
                        std::ofstream(out) << EnrollmentToJson(EnrollFromSnapshot(*s, dut)).dump(2) << "\n";
                        std::cout << "enrolled " << dut << " from " << (*enroll_args)[0] << ": " << out << "\n";
                        return static_cast<int>(kExitPassed);
                      }});
  return commands;
}

}  // namespace tpmlab::cli
