// One event alignment (harness/align.h) behind `tpmlab eventlog diff` and
// drift: the same pairs of logs go through the CLI (the tpmlab binary named
// by TPMLAB_BINARY, `eventlog diff --json`) and through DiffEventLogs, and
// both must report the same added, removed and changed events, which must
// be the ones align.h's rules give. Among the pairs are the two where the
// aligners before issue 13 disagreed: a gap whose events changed type order
// (the CLI paired by type, drift by position) and an event whose data
// changed under the same digest (the CLI reported it, drift did not).
#define BOOST_TEST_MODULE align
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "harness/align.h"
#include "harness/boot_source.h"
#include "harness/drift.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// (change, pcr, before index or -1, after index or -1)
using Change = std::tuple<std::string, uint32_t, long, long>;
using Changes = std::set<Change>;

long Index(const std::optional<size_t>& i) { return i ? static_cast<long>(*i) : -1L; }

Changes FromDrift(const EventLog& a, const EventLog& b) {
  Changes out;
  for (const EventChange& e : DiffEventLogs(a, b).events) out.emplace(e.change, e.pcr, Index(e.before), Index(e.after));
  return out;
}

// What align.h says, with the CLI's "differs" per changed pair.
Changes FromAlignment(const EventLog& a, const EventLog& b, std::map<std::pair<long, long>, Json>* differs = nullptr) {
  Changes out;
  for (const EventDifference& d : AlignEventLogs(a, b).differences) {
    const char* kind = d.kind == EventDifference::Kind::kAdded     ? "added"
                       : d.kind == EventDifference::Kind::kRemoved ? "removed"
                                                                   : "changed";
    out.emplace(kind, d.pcr, Index(d.before), Index(d.after));
    if (differs != nullptr && d.kind == EventDifference::Kind::kChanged) {
      Json list = Json::array();
      if (d.digest_differs) list.push_back("digest");
      if (d.data_differs) list.push_back("data");
      (*differs)[{Index(d.before), Index(d.after)}] = list;
    }
  }
  return out;
}

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/tpmlab-align-test-XXXXXX";
    BOOST_REQUIRE(mkdtemp(pattern) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string Run(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  BOOST_REQUIRE(pipe != nullptr);
  char buf[65536];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  pclose(pipe);
  return out;
}

// `tpmlab eventlog diff --json a b` on the two files, as Changes; `differs`
// gets each changed pair's "differs" list.
Changes FromCli(const fs::path& a, const fs::path& b, std::map<std::pair<long, long>, Json>& differs) {
  const char* tpmlab = std::getenv("TPMLAB_BINARY");
  BOOST_REQUIRE_MESSAGE(tpmlab != nullptr, "TPMLAB_BINARY names the tpmlab binary (ctest sets it)");
  const Json out = Json::parse(Run(std::string(tpmlab) + " eventlog diff --json '" + a.string() + "' '" +
                                   b.string() + "' 2>/dev/null"));
  Changes changes;
  for (const auto& [pcr_text, d] : out.at("pcrs").items()) {
    const auto pcr = static_cast<uint32_t>(std::stoul(pcr_text));
    for (const auto& e : d.at("added")) changes.emplace("added", pcr, -1L, e.at("index").get<long>());
    for (const auto& e : d.at("removed")) changes.emplace("removed", pcr, e.at("index").get<long>(), -1L);
    for (const auto& c : d.at("changed")) {
      const long x = c.at("a").at("index").get<long>(), y = c.at("b").at("index").get<long>();
      changes.emplace("changed", pcr, x, y);
      differs[{x, y}] = c.at("differs");
    }
  }
  return changes;
}

std::string Describe(const Changes& c) {
  std::string out;
  for (const auto& [change, pcr, before, after] : c) {
    out += change + " PCR" + std::to_string(pcr) + " " + std::to_string(before) + "/" + std::to_string(after) + "; ";
  }
  return out;
}

// Both paths agree with each other and with AlignEventLogs; returns that alignment.
Changes BothPaths(const EventLog& a, const EventLog& b, const std::string& name) {
  TempDir dir;
  const fs::path fa = dir.path() / "a.bin", fb = dir.path() / "b.bin";
  for (const auto& [path, log] : {std::pair{fa, &a}, std::pair{fb, &b}}) {
    const Bytes bytes = WriteEventLog(*log);
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                 static_cast<std::streamsize>(bytes.size()));
  }
  std::map<std::pair<long, long>, Json> cli_differs, differs;
  const Changes cli = FromCli(fa, fb, cli_differs);
  const Changes drift = FromDrift(a, b);
  const Changes aligned = FromAlignment(a, b, &differs);
  BOOST_TEST(cli == aligned, name << ": CLI " << Describe(cli) << " alignment " << Describe(aligned));
  BOOST_TEST(drift == aligned, name << ": drift " << Describe(drift) << " alignment " << Describe(aligned));
  BOOST_TEST((cli_differs == differs), name);
  return aligned;
}

Bytes Digest(HashAlg alg, ByteView in) {
  auto d = Hash(alg, in);
  BOOST_REQUIRE(d.ok());
  return *d;
}

// An event whose digests hash `measured` (the data itself when empty).
void Add(EventLog& log, const std::vector<HashAlg>& banks, uint32_t pcr, uint32_t type, const Bytes& data,
         const std::string& measured = "") {
  std::vector<std::pair<uint16_t, Bytes>> digests;
  const Bytes in = measured.empty() ? data : Bytes(measured.begin(), measured.end());
  for (HashAlg alg : banks) digests.emplace_back(static_cast<uint16_t>(alg), Digest(alg, in));
  log.Append(pcr, type, digests, data);
}

Bytes Text(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes ImageLoad(uint64_t location) {
  Bytes d;
  for (uint64_t v : {location, uint64_t{4096}, uint64_t{0}, uint64_t{4}}) {
    for (int i = 0; i < 8; ++i) d.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  d.insert(d.end(), {0x7F, 0xFF, 4, 0});
  return d;
}

Bytes Blob(uint64_t base) {
  Bytes d;
  for (uint64_t v : {base, uint64_t{0x1000}}) {
    for (int i = 0; i < 8; ++i) d.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  return d;
}

const std::vector<HashAlg> kBanks = {HashAlg::kSha1, HashAlg::kSha256};

struct Pair {
  EventLog a = EventLog::CryptoAgile(kBanks), b = EventLog::CryptoAgile(kBanks);
  void A(uint32_t pcr, uint32_t type, const Bytes& data, const std::string& measured = "") {
    Add(a, kBanks, pcr, type, data, measured);
  }
  void B(uint32_t pcr, uint32_t type, const Bytes& data, const std::string& measured = "") {
    Add(b, kBanks, pcr, type, data, measured);
  }
};

BOOST_AUTO_TEST_CASE(a_gap_in_another_type_order) {
  // The old CLI paired the tag events across the gap (changed 2/1, removed
  // 1); the old drift went by position (removed 1 and 2, added 1). One
  // search by type pairs the tags and leaves the action removed.
  Pair p;
  for (auto* side : {&p.a, &p.b}) Add(*side, kBanks, 4, ev::kSeparator, Text("s"));
  p.A(4, ev::kEfiAction, Text("one"));
  p.A(4, ev::kEventTag, Text("tag"));
  p.B(4, ev::kEventTag, Text("tag2"));
  for (auto* side : {&p.a, &p.b}) Add(*side, kBanks, 4, ev::kSeparator, Text("e"));
  BOOST_TEST(Describe(BothPaths(p.a, p.b, "type order")) == "changed PCR4 2/1; removed PCR4 1/-1; ");
}

BOOST_AUTO_TEST_CASE(the_same_digest_with_other_data_is_a_change) {
  // The old drift reported nothing for this pair, the old CLI a data change.
  Pair p;
  p.A(4, ev::kEfiBootServicesApplication, ImageLoad(0x7E000000), "kernel");
  p.B(4, ev::kEfiBootServicesApplication, ImageLoad(0x7F000000), "kernel");
  BOOST_TEST(Describe(BothPaths(p.a, p.b, "data only")) == "changed PCR4 0/0; ");
  const LogAlignment al = AlignEventLogs(p.a, p.b);
  BOOST_REQUIRE(al.differences.size() == 1u);
  BOOST_TEST(!al.differences[0].digest_differs);
  BOOST_TEST(al.differences[0].data_differs);
}

BOOST_AUTO_TEST_CASE(the_same_description_pairs_before_the_same_type) {
  // Two firmware volumes; the first is gone, the second has new contents:
  // the volume at the same address is the one that changed.
  Pair p;
  p.A(0, ev::kEfiPlatformFirmwareBlob, Blob(0x1000), "v1");
  p.A(0, ev::kEfiPlatformFirmwareBlob, Blob(0x2000), "w1");
  p.B(0, ev::kEfiPlatformFirmwareBlob, Blob(0x2000), "w2");
  for (auto* side : {&p.a, &p.b}) Add(*side, kBanks, 0, ev::kSeparator, Bytes(4, 0));
  BOOST_TEST(Describe(BothPaths(p.a, p.b, "blob")) == "changed PCR0 1/0; removed PCR0 0/-1; ");
}

BOOST_AUTO_TEST_CASE(moved_events_and_no_action_records) {
  Pair p;
  p.A(8, ev::kIpl, Text("a"));
  p.A(8, ev::kIpl, Text("b"));
  p.B(8, ev::kIpl, Text("b"));
  p.B(8, ev::kIpl, Text("a"));
  // EV_NO_ACTION digests are zero: told apart by their data.
  Bytes loc0 = Text("StartupLocality"), loc3 = loc0;
  loc0.insert(loc0.end(), {0, 0});
  loc3.insert(loc3.end(), {0, 3});
  for (auto [side, data] : {std::pair{&p.a, loc0}, std::pair{&p.b, loc3}}) {
    side->Append(0, ev::kNoAction, {{0x0004, Bytes(20, 0)}, {0x000B, Bytes(32, 0)}}, data);
  }
  BOOST_TEST(Describe(BothPaths(p.a, p.b, "moved")) == "added PCR8 -1/1; changed PCR0 2/2; removed PCR8 0/-1; ");
}

BOOST_AUTO_TEST_CASE(logs_with_no_bank_in_common_compare_data) {
  const std::vector<HashAlg> sha1 = {HashAlg::kSha1}, sha256 = {HashAlg::kSha256};
  EventLog a = EventLog::CryptoAgile(sha1), b = EventLog::CryptoAgile(sha256);
  Add(a, sha1, 0, ev::kSCrtmVersion, Text("1.0"));
  Add(b, sha256, 0, ev::kSCrtmVersion, Text("1.0"));
  Add(a, sha1, 7, ev::kEfiAction, Text("x"));
  Add(b, sha256, 7, ev::kEfiAction, Text("y"));
  BOOST_TEST(Describe(BothPaths(a, b, "no common bank")) == "changed PCR7 1/1; ");
  const LogAlignment al = AlignEventLogs(a, b);
  BOOST_TEST(al.common_banks.empty());
  BOOST_TEST(al.differences.at(0).digest_differs);
}

BOOST_AUTO_TEST_CASE(the_firmware_models_through_both_paths) {
  const fs::path models = fs::path(TPMLAB_SOURCE_DIR) / "scenarios" / "firmware";
  auto load = [&](const std::string& name) {
    auto model = LoadFirmwareModel(models / (name + ".yaml"));
    BOOST_REQUIRE_MESSAGE(model.ok(), model.status().ToString());
    return MeasuredBootLog(*model, {}, kBanks);
  };
  const EventLog baseline = load("baseline");
  for (const auto& f : fs::directory_iterator(models)) {
    if (f.path().extension() != ".yaml") continue;
    const EventLog variant = load(f.path().stem().string());
    BothPaths(baseline, variant, f.path().stem().string());
    BothPaths(variant, baseline, f.path().stem().string() + " reversed");
  }
}

BOOST_AUTO_TEST_CASE(the_fixture_logs_through_both_paths) {
  const fs::path folder = fs::path(TPMLAB_FIXTURES_DIR) / "eventlogs";
  const fs::path a = folder / "arch-linux-workstation.bin", b = folder / "tpm2tools-event-arch-linux.bin";
  if (!fs::exists(a) || !fs::exists(b)) {
    BOOST_TEST_MESSAGE("no fixtures at " << folder << ": skipped");
    return;
  }
  auto read = [](const fs::path& path) {
    auto log = ReadEventLogFile(path.string());
    BOOST_REQUIRE_MESSAGE(log.ok(), log.status().ToString());
    return std::move(log).value();
  };
  const Changes c = BothPaths(read(a), read(b), "arch-linux");
  BOOST_TEST(c.size() == 2u, Describe(c));
}

BOOST_AUTO_TEST_CASE(a_long_middle_too_different_is_compared_by_position) {
  EventLog a = EventLog::CryptoAgile({HashAlg::kSha256}), b = EventLog::CryptoAgile({HashAlg::kSha256});
  for (int i = 0; i < 2500; ++i) Add(a, {HashAlg::kSha256}, 10, ev::kEventTag, Text("a" + std::to_string(i)));
  for (int i = 0; i < 2600; ++i) Add(b, {HashAlg::kSha256}, 10, ev::kEventTag, Text("b" + std::to_string(i)));
  const LogAlignment al = AlignEventLogs(a, b);
  BOOST_TEST((al.positional_pcrs == std::vector<uint32_t>{10}));
  BOOST_TEST(al.differences.size() == 2600u);
}

}  // namespace
}  // namespace tpmlab
