// Repro bundles (harness/bundle.h): a run folder packs and unpacks to the same
// bytes with its database rows beside them; hostile, damaged and truncated
// archives are refused with the member (and byte) that gave them away, and
// nothing lands outside the target folder. A replay (harness/bundle_replay.h)
// loads only the bundle's copies of its inputs and says what differs per step.
#define BOOST_TEST_MODULE bundle
#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/bundle.h"
#include "harness/bundle_replay.h"
#include "harness/run_files.h"
#include "harness/scenario_yaml.h"
#include "harness/store.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "tpmlab-bundle-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path); }
};

void WriteFile(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// A run folder as the runner leaves it, with two steps in its database.
fs::path MakeRun(const fs::path& root) {
  const fs::path run = root / "run";
  WriteFile(run / "inputs/short.yaml", "name: short\nplatform: {firmware: baseline}\nsteps: [boot]\n");
  WriteFile(run / "inputs/firmware/baseline.yaml", "name: baseline\n");
  WriteFile(run / "initial-state/tpm2-00.permall", std::string("\x00\x01\x02\xff state", 10));
  WriteFile(run / "eventlogs/ab.bin", std::string(3000, '\x5a'));
  WriteFile(run / "dut0/swtpm.log", "swtpm started\n");
  WriteFile(run / "dut0/tpm2-00.permall", "final state, not bundled");
  WriteFile(run / "dut0/.lock", "");

  auto store = Store::Open(run / "tpmlab.db");
  BOOST_REQUIRE(store.ok());
  RunInfo info;
  info.scenario = "short";
  info.seed = 7;
  info.started_at = "2026-01-01T00:00:00Z";
  auto run_id = (*store)->BeginRun(info);
  BOOST_REQUIRE(run_id.ok());
  StepResult boot;
  boot.index = 0;
  boot.action = "boot";
  boot.status = "passed";
  TraceRecord r;
  r.sequence = 1;
  r.command_code = 0x144;  // TPM2_CC_Startup
  r.command = {0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 0};
  r.response = {0x80, 0x01, 0, 0, 0, 0x0a, 0, 0, 0, 0};
  boot.trace.push_back(r);
  StepResult cycle;
  cycle.index = 1;
  cycle.action = "power_cycle";
  cycle.kind = "power-loss";
  cycle.status = "passed";
  cycle.alarms.push_back({"CLOCK_NOT_SAFE", Severity::kWarning, "safe is NO", {}});
  BOOST_REQUIRE((*store)->RecordStep(*run_id, boot).ok());
  BOOST_REQUIRE((*store)->RecordStep(*run_id, cycle).ok());

  const json run_json = {
      {"scenario", "short"},
      {"seed", 7},
      {"status", "passed"},
      {"database", fs::absolute(run / "tpmlab.db").string()},
      {"run_id", *run_id},
      {"inputs",
       {{"scenario", "inputs/short.yaml"},
        {"files", {"inputs/short.yaml", "inputs/firmware/baseline.yaml"}},
        {"initial_state", "initial-state"}}},
      {"steps",
       {{{"index", 0}, {"action", "boot"}, {"alarms", json::array()}},
        {{"index", 1}, {"action", "power_cycle"}, {"alarms", {{{"code", "CLOCK_NOT_SAFE"}}}}}}}};
  WriteFile(run / "run.json", run_json.dump(2));
  return run;
}

// An archive built member by member, as a hostile sender would.
struct RawMember {
  RawMember(std::string n, std::string d, unsigned t = AE_IFREG, std::string l = "")
      : name(std::move(n)), data(std::move(d)), type(t), link(std::move(l)) {}
  std::string name;
  std::string data;
  unsigned type;
  std::string link;  // symlink target or hard link name
};

void WriteRaw(const fs::path& file, const std::vector<RawMember>& members) {
  archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  BOOST_REQUIRE_EQUAL(archive_write_open_filename(a, file.c_str()), ARCHIVE_OK);
  for (const auto& m : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, m.name.c_str());
    archive_entry_set_filetype(e, m.type);
    archive_entry_set_perm(e, 0644);
    if (m.type == AE_IFLNK) archive_entry_set_symlink(e, m.link.c_str());
    if (m.type == AE_IFREG && !m.link.empty()) archive_entry_set_hardlink(e, m.link.c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(m.data.size()));
    BOOST_REQUIRE_EQUAL(archive_write_header(a, e), ARCHIVE_OK);
    if (!m.data.empty()) archive_write_data(a, m.data.data(), m.data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

void ExpectRefused(const fs::path& bundle, const fs::path& dir, const std::string& needle) {
  auto r = ExtractBundle(bundle, dir);
  BOOST_REQUIRE_MESSAGE(!r.ok(), "extracted " << bundle);
  BOOST_TEST((r.status().layer() == Layer::kParse), r.status().ToString());
  BOOST_TEST_MESSAGE(r.status().message());
  BOOST_TEST(r.status().message().find(needle) != std::string::npos,
             "'" << needle << "' not in: " << r.status().message());
  BOOST_TEST(fs::is_empty(dir), "extraction left files behind");
}

BOOST_AUTO_TEST_CASE(round_trip_keeps_every_byte_and_the_database_rows) {
  TempDir t;
  const fs::path run = MakeRun(t.path);
  const fs::path bundle = t.path / "run.tar.gz";
  Status written = WriteBundle(run / "run.json", bundle);  // run.json or its folder
  BOOST_REQUIRE_MESSAGE(written.ok(), written.ToString());
  BOOST_TEST(!fs::exists(t.path / "run.tar.gz.part"));

  auto out = ExtractBundle(bundle, t.path / "x");
  BOOST_REQUIRE_MESSAGE(out.ok(), out.status().ToString());
  for (const char* f : {"run.json", "inputs/short.yaml", "inputs/firmware/baseline.yaml",
                        "initial-state/tpm2-00.permall", "eventlogs/ab.bin", "dut0/swtpm.log"}) {
    BOOST_TEST(ReadFile(*out / f) == ReadFile(run / f), f);
  }
  BOOST_TEST(!fs::exists(*out / "dut0/tpm2-00.permall"), "only the DUT's logs travel");
  BOOST_TEST(!fs::exists(*out / "dut0/.lock"));
  BOOST_TEST(!fs::exists(*out / "tpmlab.db"), "the rows travel as trace.json");

  auto manifest = ReadBundleManifest(*out);
  BOOST_REQUIRE(manifest.ok());
  BOOST_TEST((*manifest)["format"] == "tpmlab-bundle");
  BOOST_TEST((*manifest)["version"] == 1);
  BOOST_TEST((*manifest)["seed"] == 7);
  BOOST_TEST((*manifest)["scenario_file"] == "inputs/short.yaml");
  BOOST_TEST((*manifest)["files"].size() == 7u);

  const json trace = json::parse(ReadFile(*out / "trace.json"));
  BOOST_REQUIRE_EQUAL(trace["steps"].size(), 2u);
  BOOST_TEST(trace["run"]["scenario"] == "short");
  BOOST_TEST(trace["steps"][0]["commands"][0]["name"] == "TPM2_Startup");
  BOOST_TEST(trace["steps"][0]["commands"][0]["command"] == "80010000000c000001440000");
  BOOST_TEST(trace["steps"][1]["alarms"][0]["code"] == "CLOCK_NOT_SAFE");

  BOOST_TEST(!ExtractBundle(bundle, t.path / "x").ok(), "a folder with files in it is not overwritten");
}

BOOST_AUTO_TEST_CASE(a_run_without_its_inputs_is_not_bundled) {
  TempDir t;
  const fs::path run = MakeRun(t.path);
  fs::remove_all(run / "initial-state");
  Status s = WriteBundle(run, t.path / "b.tar.gz");
  BOOST_TEST((s.layer() == Layer::kParse), s.ToString());
  BOOST_TEST(s.message().find("initial-state") != std::string::npos, s.message());
  BOOST_TEST(!fs::exists(t.path / "b.tar.gz"));
}

// A run on a real chip records no initial state: it is bundled without one.
BOOST_AUTO_TEST_CASE(a_run_on_a_real_chip_is_bundled_without_an_initial_state) {
  TempDir t;
  const fs::path run = MakeRun(t.path);
  fs::remove_all(run / "initial-state");
  std::ifstream in(run / "run.json");
  nlohmann::json r = nlohmann::json::parse(in);
  in.close();
  r["inputs"].erase("initial_state");
  std::ofstream(run / "run.json") << r.dump();
  Status s = WriteBundle(run, t.path / "b.tar.gz");
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  auto dir = ExtractBundle(t.path / "b.tar.gz", t.path / "x");
  BOOST_REQUIRE_MESSAGE(dir.ok(), dir.status().ToString());
  auto manifest = ReadBundleManifest(*dir);
  BOOST_REQUIRE_MESSAGE(manifest.ok(), manifest.status().ToString());
  BOOST_TEST(manifest->value("initial_state", "?") == "");
  BOOST_TEST(!fs::exists(t.path / "x" / "initial-state"));
}

BOOST_AUTO_TEST_CASE(hostile_members_are_refused_by_name) {
  TempDir t;
  const std::string manifest = R"({"format":"tpmlab-bundle","version":1,"files":[]})";
  // An absolute member inside this test's own folder: a leftover of another
  // run cannot make the check below fail.
  const std::string absolute = (t.path / "abs-target").string();
  struct Case {
    RawMember member;
    std::string needle;
  } cases[] = {
      {{"../x", "escaped"}, "'../x' has an absolute path or '..'"},
      {{"inputs/../../x", "escaped"}, "'inputs/../../x'"},
      {{absolute, "escaped"}, "'" + absolute + "' has an absolute path"},
      {{"inputs/link", "", AE_IFLNK, "/etc/passwd"}, "'inputs/link' is a symbolic link to '/etc/passwd'"},
      {{"inputs/hard", "", AE_IFREG, "bundle.json"}, "'inputs/hard' is a hard link"},
      {{"dev", "", AE_IFCHR, ""}, "'dev' is a device"},
  };
  int i = 0;
  for (const auto& c : cases) {
    const fs::path bundle = t.path / ("hostile" + std::to_string(i) + ".tar.gz");
    WriteRaw(bundle, {{"bundle.json", manifest}, c.member});
    ExpectRefused(bundle, t.path / ("out" + std::to_string(i++)), c.needle);
  }
  BOOST_TEST(!fs::exists(t.path / "x"));
  BOOST_TEST(!fs::exists(absolute));
}

BOOST_AUTO_TEST_CASE(a_truncated_bundle_names_the_byte_where_it_ends) {
  TempDir t;
  const fs::path run = MakeRun(t.path);
  const fs::path bundle = t.path / "run.tar.gz";
  BOOST_REQUIRE(WriteBundle(run, bundle).ok());
  const std::string bytes = ReadFile(bundle);
  WriteFile(t.path / "cut.tar.gz", bytes.substr(0, bytes.size() / 2));
  auto r = ExtractBundle(t.path / "cut.tar.gz", t.path / "out");
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST_MESSAGE(r.status().message());
  BOOST_TEST((r.status().layer() == Layer::kParse), r.status().ToString());
  BOOST_TEST(r.status().offset().has_value());
  BOOST_TEST(r.status().message().find("cut.tar.gz") != std::string::npos);
  BOOST_TEST(r.status().message().find("at byte") != std::string::npos);
  BOOST_TEST(fs::is_empty(t.path / "out"));

  // Cut inside a member's data: that member is named.
  std::string noise(256 * 1024, '\0');
  uint32_t x = 2463534242u;
  for (char& c : noise) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    c = static_cast<char>(x);
  }
  WriteFile(run / "eventlogs/ab.bin", noise);
  BOOST_REQUIRE(WriteBundle(run, t.path / "big.tar.gz").ok());
  const std::string big = ReadFile(t.path / "big.tar.gz");
  WriteFile(t.path / "bigcut.tar.gz", big.substr(0, big.size() / 2));
  ExpectRefused(t.path / "bigcut.tar.gz", t.path / "out1", "member 'eventlogs/ab.bin': cannot read its data");

  WriteFile(t.path / "noise.tar.gz", "this is not an archive at all");
  ExpectRefused(t.path / "noise.tar.gz", t.path / "out2", "not a readable tar.gz");
}

BOOST_AUTO_TEST_CASE(members_must_match_the_manifest) {
  TempDir t;
  const json manifest = {{"format", "tpmlab-bundle"},
                         {"version", 1},
                         {"files", {{{"path", "run.json"}, {"size", 2}, {"sha256", std::string(64, '0')}}}}};
  WriteRaw(t.path / "a.tar.gz", {{"bundle.json", manifest.dump()}, {"run.json", "{}"}});
  ExpectRefused(t.path / "a.tar.gz", t.path / "a", "member 'run.json' is damaged");

  WriteRaw(t.path / "b.tar.gz", {{"bundle.json", manifest.dump()}});
  ExpectRefused(t.path / "b.tar.gz", t.path / "b", "'run.json' is listed in bundle.json but missing");

  const json empty = {{"format", "tpmlab-bundle"}, {"version", 1}, {"files", json::array()}};
  WriteRaw(t.path / "c.tar.gz", {{"bundle.json", empty.dump()}, {"extra", "x"}});
  ExpectRefused(t.path / "c.tar.gz", t.path / "c", "'extra' is not listed");

  WriteRaw(t.path / "d.tar.gz", {{"run.json", "{}"}});
  ExpectRefused(t.path / "d.tar.gz", t.path / "d", "not a tpmlab bundle");

  const json newer = {{"format", "tpmlab-bundle"}, {"version", 9}, {"files", json::array()}};
  WriteRaw(t.path / "e.tar.gz", {{"bundle.json", newer.dump()}});
  ExpectRefused(t.path / "e.tar.gz", t.path / "e", "version 9 is newer");

  WriteRaw(t.path / "f.tar.gz", {{"bundle.json", empty.dump()}, {"dup", "1"}, {"dup", "2"}});
  ExpectRefused(t.path / "f.tar.gz", t.path / "f", "'dup' appears twice");
}

BOOST_AUTO_TEST_CASE(the_unpacked_size_is_capped) {
  TempDir t;
  const json empty = {{"format", "tpmlab-bundle"}, {"version", 1}, {"files", json::array()}};
  WriteRaw(t.path / "big.tar.gz", {{"bundle.json", empty.dump()}, {"big", std::string(1 << 20, '\0')}});
  BundleLimits limits;
  limits.max_total_bytes = 64 * 1024;
  auto r = ExtractBundle(t.path / "big.tar.gz", t.path / "out", limits);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().message().find("'big' would take the bundle past 65536 bytes") != std::string::npos,
             r.status().message());
  BOOST_TEST(fs::is_empty(t.path / "out"));
}

// --- replay: the bundle's own inputs, and what differs -----------------------

// A model file with one measured string that shows which copy was loaded.
std::string Model(const std::string& name, const std::string& crtm, const std::string& inherits = "") {
  return "name: " + name + "\n" + (inherits.empty() ? "" : "inherits: " + inherits + "\n") +
         "s_crtm_version: " + crtm + "\n";
}

// A run folder's inputs/ as the runner saves them, for a scenario that names
// its model by an absolute host path, the model inheriting by another; then
// unpacked as a bundle would be (bundle.json, run.json, inputs/).
fs::path BundleNamingHostPaths(const fs::path& root) {
  const fs::path host = root / "host";
  WriteFile(host / "base" / "base.yaml", Model("host-base", "base 1.0"));
  WriteFile(host / "models" / "custom.yaml", Model("custom", "custom 1.0", (host / "base" / "base.yaml").string()));
  WriteFile(host / "s" / "short.yaml", "name: short\nplatform: {firmware: " + (host / "models" / "custom.yaml").string() +
                                           "}\nsteps: [boot]\n");
  auto scenario = LoadScenarioFile(host / "s" / "short.yaml");
  BOOST_REQUIRE_MESSAGE(scenario.ok(), scenario.status().ToString());
  const fs::path unpacked = root / "unpacked";
  auto inputs = SaveRunInputs(*scenario, unpacked);
  BOOST_REQUIRE_MESSAGE(inputs.ok(), inputs.status().ToString());
  BOOST_TEST_MESSAGE("inputs: " << inputs->dump());
  WriteFile(unpacked / "run.json", json({{"seed", 5}, {"inputs", *inputs}, {"steps", json::array()}}).dump());
  WriteFile(unpacked / "bundle.json", json({{"format", "tpmlab-bundle"},
                                            {"version", 1},
                                            {"scenario_file", (*inputs)["scenario"]},
                                            {"files", json::array()}})
                                          .dump());
  return unpacked;
}

BOOST_AUTO_TEST_CASE(a_replay_loads_the_bundled_models_not_the_hosts) {
  TempDir t;
  const fs::path unpacked = BundleNamingHostPaths(t.path);
  // The host's files change and go: the bundle's copies are what replays.
  WriteFile(t.path / "host" / "models" / "custom.yaml", Model("custom", "EDITED ON THE HOST"));
  fs::remove(t.path / "host" / "base" / "base.yaml");

  auto plan = PlanReplay(unpacked);
  BOOST_REQUIRE_MESSAGE(plan.ok(), plan.status().ToString());
  BOOST_REQUIRE(plan->scenario.platform.firmware.has_value());
  const FirmwareModel& model = *plan->scenario.platform.firmware;
  BOOST_TEST(model.s_crtm_version == "custom 1.0");
  BOOST_TEST(model.sources.size() == 2u);
  for (const auto& source : model.sources) {
    BOOST_TEST(source.starts_with((fs::absolute(unpacked) / "inputs").string()), source << " is not in the bundle");
  }
  BOOST_TEST(plan->seed == 5u);
}

BOOST_AUTO_TEST_CASE(a_replay_never_reads_a_model_the_bundle_does_not_carry) {
  TempDir t;
  const fs::path unpacked = BundleNamingHostPaths(t.path);
  const fs::path elsewhere = t.path / "elsewhere.yaml";
  WriteFile(elsewhere, Model("elsewhere", "x"));
  auto inputs = json::parse(ReadFile(unpacked / "run.json"))["inputs"];

  // A name the run did not resolve: refused, even though the file exists here.
  ModelResolver bundled = BundledModels(unpacked, inputs);
  auto r = bundled(elsewhere.string(), fs::absolute(unpacked) / inputs["scenario"].get<std::string>());
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().message().find("the bundle carries no copy") != std::string::npos, r.status().message());

  // A bundle from before references were recorded: only files inside it.
  inputs.erase("models");
  bundled = BundledModels(unpacked, inputs);
  r = bundled(elsewhere.string(), fs::absolute(unpacked) / inputs["scenario"].get<std::string>());
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().message().find("outside the bundle") != std::string::npos, r.status().message());
  r = bundled("../../../elsewhere.yaml", fs::absolute(unpacked) / inputs["scenario"].get<std::string>());
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().message().find("outside the bundle") != std::string::npos, r.status().message());
}

BOOST_AUTO_TEST_CASE(a_bundle_lists_every_model_reference_its_run_resolved) {
  TempDir t;
  const fs::path unpacked = BundleNamingHostPaths(t.path);
  const json inputs = json::parse(ReadFile(unpacked / "run.json"))["inputs"];
  BOOST_REQUIRE_EQUAL(inputs["models"].size(), 2u);
  for (const auto& m : inputs["models"]) {
    for (const char* key : {"named_in", "file"}) {
      const std::string name = m[key];
      BOOST_TEST(name.starts_with("inputs/"), key << " " << name);
      BOOST_TEST(fs::is_regular_file(unpacked / name), name);
    }
    BOOST_TEST(fs::path(m["name"].get<std::string>()).is_absolute(), "the name as the scenario wrote it");
  }
}

// Two steps as run.json records them: a boot with a snapshot, then a reset.
json Steps(const std::string& pcr0, const std::string& log_sha, uint64_t second_reset_count, bool safe,
           const std::vector<std::string>& alarms) {
  auto snapshot = [&](uint64_t reset_count) {
    return json{{"pcrs", {{"sha1", {{"0", "aa"}, {"7", "77"}}}, {"sha256", {{"0", pcr0}, {"7", "77"}}}}},
                {"clock", {{"reset_count", reset_count}, {"restart_count", 0}, {"safe", safe}}},
                {"eventlog", {{"sha256", log_sha}, {"events", 20}}}};
  };
  json codes = json::array();
  for (const auto& a : alarms) codes.push_back({{"code", a}});
  return json::array({{{"index", 0}, {"action", "boot"}, {"status", "passed"}, {"alarms", json::array()},
                       {"snapshot", snapshot(3)}},
                      {{"index", 1}, {"action", "power_cycle"}, {"kind", "reset"}, {"status", "passed"},
                       {"alarms", codes}, {"snapshot", snapshot(second_reset_count)}}});
}

BOOST_AUTO_TEST_CASE(identical_runs_compare_the_same) {
  const json steps = Steps("00", "ab", 4, true, {"PCR_POLICY_MISMATCH", "PCR_POLICY_MISMATCH"});
  const auto rows = CompareRunSteps(steps, steps);
  BOOST_REQUIRE_EQUAL(rows.size(), 2u);
  for (const auto& r : rows) BOOST_TEST(r.same(), r.index);
  BOOST_TEST(rows[1].action == "power_cycle");
  BOOST_TEST(rows[1].kind == "reset");
  BOOST_TEST(*rows[1].recorded_alarms == std::vector<std::string>{"PCR_POLICY_MISMATCH"}, "codes once each");
}

BOOST_AUTO_TEST_CASE(a_replay_whose_pcr0_differs_says_so) {
  // Same alarms, same counters: only the measurement moved.
  const auto rows = CompareRunSteps(Steps("00", "ab", 4, true, {}), Steps("01", "ab", 4, true, {}));
  BOOST_REQUIRE_EQUAL(rows.size(), 2u);
  for (const auto& r : rows) {
    BOOST_TEST(!r.same(), r.index);
    BOOST_TEST(r.differences == std::vector<std::string>{"PCR0 differs (sha256)"}, r.index);
  }
  const json j = ComparisonToJson(rows);
  BOOST_TEST(j[0]["same"] == false);
  BOOST_TEST(j[0]["differs"][0] == "PCR0 differs (sha256)");
}

BOOST_AUTO_TEST_CASE(event_logs_counters_safe_and_alarms_are_compared) {
  const auto rows = CompareRunSteps(Steps("00", "abcdef0123456789", 4, true, {"EK_CHANGED"}),
                                    Steps("00", "fedcba9876543210", 3, false, {"CLOCK_NOT_SAFE"}));
  BOOST_REQUIRE_EQUAL(rows.size(), 2u);
  auto has = [&](int step, const std::string& text) {
    for (const auto& d : rows[step].differences) {
      if (d.find(text) != std::string::npos) return true;
    }
    BOOST_TEST_MESSAGE("step " << step << ": " << json(rows[step].differences).dump());
    return false;
  };
  BOOST_TEST(has(0, "event log differs (sha256 abcdef01… recorded, fedcba98… replayed"));
  BOOST_TEST(has(0, "safe: recorded YES, replayed NO"));
  BOOST_TEST(has(1, "reset_count: recorded up, replayed same"));
  BOOST_TEST(has(1, "alarms: -EK_CHANGED +CLOCK_NOT_SAFE"));
  BOOST_TEST(!has(1, "PCR"));
}

// After a power loss, safe is a matter of when libtpms saved its clock: noted
// as timing, not counted; any other alarm still differs.
BOOST_AUTO_TEST_CASE(safe_after_a_power_loss_is_timing_not_a_difference) {
  json recorded = Steps("00", "ab", 4, true, {"EK_CHANGED"});
  json replayed = Steps("00", "ab", 4, true, {"CLOCK_NOT_SAFE"});
  for (json* steps : {&recorded, &replayed}) (*steps)[1]["kind"] = "power-loss";
  replayed[1]["snapshot"]["clock"]["safe"] = false;
  auto rows = CompareRunSteps(recorded, replayed);
  BOOST_REQUIRE_EQUAL(rows.size(), 2u);
  BOOST_TEST(rows[0].same());
  BOOST_TEST(rows[1].differences == std::vector<std::string>{"alarms: -EK_CHANGED"});
  BOOST_TEST((rows[1].timing == std::vector<std::string>{"alarms: +CLOCK_NOT_SAFE", "safe: recorded YES, replayed NO"}));

  recorded[1]["alarms"] = json::array();
  rows = CompareRunSteps(recorded, replayed);
  BOOST_TEST(rows[1].same(), json(rows[1].differences).dump());
  BOOST_TEST(ComparisonToJson(rows)[1]["timing"].size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_step_only_one_run_has_is_a_difference) {
  json shorter = Steps("00", "ab", 4, true, {});
  shorter.erase(1);
  const auto rows = CompareRunSteps(Steps("00", "ab", 4, true, {}), shorter);
  BOOST_REQUIRE_EQUAL(rows.size(), 2u);
  BOOST_TEST(rows[0].same());
  BOOST_TEST(rows[1].differences == std::vector<std::string>{"only in the recorded run"});
  BOOST_TEST(!rows[1].replayed_alarms.has_value());
}

}  // namespace
}  // namespace tpmlab
