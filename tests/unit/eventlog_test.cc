// The event log parser, writer and replay (harness/eventlog.h, replay.h):
// the public fixture logs replay to their expected PCRs, written logs round
// trip byte for byte, and damaged logs parse or fail with an offset, never
// crash (run this under the `debug` preset's ASan and UBSan too).
#define BOOST_TEST_MODULE eventlog
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "harness/event_data.h"
#include "harness/eventlog.h"
#include "harness/findings.h"
#include "harness/replay.h"
#include "needs.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;
using Digests = std::vector<std::pair<uint16_t, Bytes>>;

const fs::path kFixtures = test::FixturesDir() / "eventlogs";

Bytes ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

nlohmann::json Expected() {
  std::ifstream in(kFixtures / "expected.json");
  return nlohmann::json::parse(in);
}

uint16_t Id(HashAlg alg) { return static_cast<uint16_t>(alg); }

// A digest that depends on the bank and a seed, of the bank's size.
Bytes FakeDigest(HashAlg alg, uint32_t seed) {
  Bytes d(HashSize(alg));
  for (size_t i = 0; i < d.size(); ++i) d[i] = static_cast<uint8_t>(seed * 31 + i * 7 + Id(alg));
  return d;
}

// Everything a caller may do with a parsed log, so ASan and UBSan see it all.
void UseEverything(const EventLog& log) {
  auto replay = ReplayEventLog(log);
  BOOST_CHECK(replay.ok());
  (void)CheckEventLog(log);
  for (const Event& e : log.events()) {
    DecodedEvent d = DecodeEventData(log, e);
    (void)d.data.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);  // throws on bad UTF-8
  }
  auto again = ParseEventLog(WriteEventLog(log));
  BOOST_CHECK(again.ok());
}

// Parses damaged bytes: either a log or an error at an offset inside them.
// Returns "" when that holds, else what went wrong (for one message, not
// thousands of assertion lines).
std::string ParsesOrFailsCleanly(const Bytes& bytes) {
  auto log = ParseEventLog(ByteView(bytes));
  if (log.ok()) {
    UseEverything(*log);
    return "";
  }
  const Status& s = log.status();
  if (s.layer() != Layer::kParse) return "not a parse error: " + s.ToString();
  if (!s.offset()) return "no offset: " + s.message();
  if (*s.offset() > bytes.size()) {
    return "offset " + std::to_string(*s.offset()) + " past the end (" + std::to_string(bytes.size()) + "): " + s.message();
  }
  return "";
}

// --- (a) the fixtures --------------------------------------------------------

// The fixture folder is optional (it lives outside the repository).
BOOST_AUTO_TEST_CASE(fixtures_replay_to_their_expected_pcrs, TPMLAB_NEEDS("fixtures", kFixtures / "expected.json")) {
  int replayed = 0, malformed = 0, either = 0;
  const nlohmann::json expected = Expected();
  for (const auto& [name, want] : expected.items()) {
    BOOST_TEST_CONTEXT(name) {
      const Bytes bytes = ReadFile(kFixtures / name);
      auto log = ParseEventLog(ByteView(bytes));
      const std::string expect = want.at("expect");
      if (expect == "malformed") {
        ++malformed;
        BOOST_REQUIRE(!log.ok());
        BOOST_CHECK(log.status().offset().has_value());
        BOOST_CHECK_LE(log.status().offset().value_or(bytes.size() + 1), bytes.size());
        BOOST_CHECK_NE(log.status().message().find("byte"), std::string::npos);
        continue;
      }
      if (expect == "either") {
        ++either;
        BOOST_CHECK(ParsesOrFailsCleanly(bytes).empty());
        continue;
      }
      ++replayed;
      BOOST_REQUIRE_MESSAGE(log.ok(), log.status().message());
      BOOST_CHECK_EQUAL(LogFormatName(log->format()), want.at("format").get<std::string>());
      BOOST_CHECK_EQUAL(log->size(), want.at("events").get<size_t>());
      auto replay = ReplayEventLog(*log);
      BOOST_REQUIRE(replay.ok());
      // Banks with extended PCRs are exactly the expected banks, bank by
      // bank the extended PCRs exactly the listed ones, each with its value.
      const auto& pcrs = want.at("pcrs");
      size_t banks_extended = 0;
      for (const auto& [alg, values] : replay->pcrs) {
        const uint32_t mask = replay->extended.at(alg);
        if (mask == 0) continue;
        ++banks_extended;
        const std::string bank = HashAlgName(alg);
        BOOST_TEST_CONTEXT("bank " << bank) {
          BOOST_REQUIRE(pcrs.contains(bank));
          const auto& listed = pcrs.at(bank);
          for (int i = 0; i < kPcrCount; ++i) {
            const std::string pcr = std::to_string(i);
            BOOST_CHECK_MESSAGE(((mask >> i) & 1u) == (listed.contains(pcr) ? 1u : 0u),
                                "PCR" << i << (listed.contains(pcr) ? " listed but not extended" : " extended but not listed"));
            if (listed.contains(pcr)) BOOST_CHECK_EQUAL(ToHex(values[i]), listed.at(pcr).get<std::string>());
          }
        }
      }
      BOOST_CHECK_EQUAL(banks_extended, pcrs.size());
    }
  }
  BOOST_TEST_MESSAGE(replayed << " fixtures replayed, " << malformed << " malformed, " << either << " either");
  BOOST_CHECK_GT(replayed, 0);
}

// Comparing two logs' events: what a SHA1-format log keeps when written in
// crypto-agile form.
bool SameEvents(const EventLog& a, const EventLog& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const Event& x = a.events()[i];
    const Event& y = b.events()[i];
    if (x.pcr != y.pcr || x.type != y.type || x.digest_count != y.digest_count) return false;
    for (uint32_t k = 0; k < x.digest_count; ++k) {
      ByteView dx = a.DigestBytes(a.DigestAt(x, k)), dy = b.DigestBytes(b.DigestAt(y, k));
      if (a.DigestAt(x, k).alg != b.DigestAt(y, k).alg || !std::equal(dx.begin(), dx.end(), dy.begin(), dy.end())) return false;
    }
    ByteView px = a.Data(x), py = b.Data(y);
    if (!std::equal(px.begin(), px.end(), py.begin(), py.end())) return false;
  }
  return true;
}

BOOST_AUTO_TEST_CASE(fixtures_survive_a_write_and_parse, TPMLAB_NEEDS("fixtures", kFixtures / "expected.json")) {
  int identical = 0;
  const nlohmann::json expected = Expected();
  for (const auto& [name, want] : expected.items()) {
    if (want.at("expect") != "replays") continue;
    BOOST_TEST_CONTEXT(name) {
      const Bytes bytes = ReadFile(kFixtures / name);
      auto log = ParseEventLog(ByteView(bytes));
      BOOST_REQUIRE(log.ok());
      const Bytes written = WriteEventLog(*log);
      auto again = ParseEventLog(ByteView(written));
      BOOST_REQUIRE(again.ok());
      BOOST_CHECK(SameEvents(*log, *again));
      if (log->format() == LogFormat::kCryptoAgile) BOOST_CHECK(*log == *again);
      identical += written == bytes ? 1 : 0;
    }
  }
  BOOST_TEST_MESSAGE(identical << " fixtures are written back byte for byte");
}

// --- (b) writer round trips --------------------------------------------------

// A log with `events` events over `banks`: every third event carries only
// some banks, some have no data, one has a megabyte.
EventLog BuildLog(const std::vector<HashAlg>& banks, int events, uint32_t seed) {
  EventLog log = EventLog::CryptoAgile(banks);
  std::mt19937 rng(seed);
  for (int i = 0; i < events; ++i) {
    Digests digests;
    for (size_t b = 0; b < banks.size(); ++b) {
      if (i % 3 == 2 && b % 2 == 1) continue;  // partial: fewer digests than banks
      digests.push_back({Id(banks[b]), FakeDigest(banks[b], rng())});
    }
    Bytes data;
    if (i % 5 == 1) data.clear();                        // empty data
    else if (i == 7) data.assign(1 << 20, 0xA5);         // big data
    else data.resize(rng() % 300, static_cast<uint8_t>(i));
    const uint32_t types[] = {ev::kSeparator, ev::kEfiAction, ev::kIpl, ev::kEfiVariableBoot, 0x12345678};
    log.Append(static_cast<uint32_t>(rng() % 25), types[rng() % 5], digests, data);
  }
  return log;
}

BOOST_AUTO_TEST_CASE(written_logs_round_trip) {
  const std::vector<std::vector<HashAlg>> bank_sets = {
      {HashAlg::kSha256},
      {HashAlg::kSha1, HashAlg::kSha256},
      {HashAlg::kSha1, HashAlg::kSha256, HashAlg::kSha384},
      {HashAlg::kSha1, HashAlg::kSha256, HashAlg::kSha384, HashAlg::kSha512},
  };
  for (const auto& banks : bank_sets) {
    for (int events : {0, 1, 12}) {
      BOOST_TEST_CONTEXT(banks.size() << " banks, " << events << " events") {
        const EventLog log = BuildLog(banks, events, static_cast<uint32_t>(banks.size() * 100 + events));
        const Bytes written = WriteEventLog(log);
        auto parsed = ParseEventLog(ByteView(written));
        BOOST_REQUIRE_MESSAGE(parsed.ok(), parsed.status().message());
        BOOST_CHECK(*parsed == log);                       // parse(write(x)) == x
        BOOST_CHECK(WriteEventLog(*parsed) == written);    // write(parse(b)) == b
        BOOST_CHECK_EQUAL(parsed->spec().algorithms.size(), banks.size());
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(events_without_digests_and_a_huge_pcr_index_round_trip) {
  EventLog log = EventLog::CryptoAgile({HashAlg::kSha256});
  log.Append(0xFFFFFFFF, ev::kNoAction, {}, AsBytes("no digests at all"));
  log.Append(23, ev::kSeparator, {{Id(HashAlg::kSha256), Bytes(32, 1)}}, {});
  const Bytes written = WriteEventLog(log);
  auto parsed = ParseEventLog(ByteView(written));
  BOOST_REQUIRE(parsed.ok());
  BOOST_CHECK(*parsed == log);
  BOOST_CHECK_EQUAL(parsed->events()[0].digest_count, 0u);
  BOOST_CHECK(ReplayEventLog(*parsed).ok());
}

// --- the replay scope and DRTM -------------------------------------------------

Bytes Measured(HashAlg alg, std::string_view what) {
  auto h = Hash(alg, AsBytes(what));
  BOOST_REQUIRE(h.ok());
  return *h;
}

// PCR values a TPM reached: each PCR's reset value (DRTM PCRs at zero when
// `drtm_launch`), then `extends` in order.
PcrValues TpmAfter(HashAlg alg, const std::vector<std::pair<int, std::string>>& extends, bool drtm_launch) {
  PcrValues tpm;
  for (int i = 0; i < kPcrCount; ++i) tpm[alg][i] = PcrResetValue(alg, i);
  if (drtm_launch) {
    for (int i = 17; i <= 22; ++i) tpm[alg][i] = Bytes(HashSize(alg), 0);
  }
  for (const auto& [pcr, what] : extends) tpm[alg][pcr] = ExtendPcr(alg, tpm[alg][pcr], Measured(alg, what));
  return tpm;
}

EventLog LogOf(HashAlg alg, const std::vector<std::pair<int, std::string>>& events) {
  EventLog log = EventLog::CryptoAgile({alg});
  for (const auto& [pcr, what] : events) {
    log.Append(static_cast<uint32_t>(pcr), ev::kEventTag, {{Id(alg), Measured(alg, what)}}, AsBytes(what));
  }
  return log;
}

BOOST_AUTO_TEST_CASE(replay_scope_is_keylimes_measured_boot_pcrs) {
  constexpr HashAlg kAlg = HashAlg::kSha256;
  const std::vector<std::pair<int, std::string>> boot = {{0, "firmware"}, {7, "SecureBoot"}, {4, "shim"}};
  const Replay replay = *ReplayEventLog(LogOf(kAlg, boot));
  uint32_t expected = 0;
  for (int pcr : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15}) expected |= 1u << pcr;
  BOOST_TEST(ReplayScope(replay, kAlg) == expected);

  // IMA's PCR 10, debug 16, application 23 and unlaunched DRTM PCRs: not
  // the firmware log's to account for.
  std::vector<std::pair<int, std::string>> extends = boot;
  for (int pcr : {10, 16, 17, 23}) extends.emplace_back(pcr, "not in the firmware log");
  BOOST_TEST(CompareReplay(replay, TpmAfter(kAlg, extends, false)).empty());

  // An unlogged extend of PCR 11 (in scope, no events: expected at reset).
  extends.emplace_back(11, "systemd-pcrphase: sysinit");
  const auto differ = CompareReplay(replay, TpmAfter(kAlg, extends, false));
  BOOST_TEST((differ == std::map<HashAlg, std::vector<int>>{{kAlg, {11}}}));
}

// A dynamic launch resets PCRs 17-22 to zero before measuring into them, so
// a log with DRTM events replays them from zero (not from all ones, their
// value after _TPM_Init), and compares the ones it extends.
BOOST_AUTO_TEST_CASE(a_drtm_log_replays_pcrs_17_to_22_from_zero) {
  for (HashAlg alg : {HashAlg::kSha1, HashAlg::kSha256}) {
    BOOST_TEST_CONTEXT(HashAlgName(alg)) {
      const std::vector<std::pair<int, std::string>> events = {
          {0, "firmware"}, {17, "SINIT ACM"}, {17, "policy control"}, {18, "MLE"}, {7, "SecureBoot"}};
      const Replay replay = *ReplayEventLog(LogOf(alg, events));
      BOOST_TEST(replay.drtm);
      const PcrValues tpm = TpmAfter(alg, events, true);
      for (int pcr = 17; pcr <= 22; ++pcr) BOOST_TEST(replay.pcrs.at(alg)[pcr] == tpm.at(alg)[pcr], "PCR " << pcr);
      BOOST_TEST((ReplayScope(replay, alg) & kDrtmPcrs) == ((1u << 17) | (1u << 18)));
      BOOST_TEST(CompareReplay(replay, tpm).empty());
      // An extend of PCR 18 the log does not show is a mismatch there.
      PcrValues more = tpm;
      more[alg][18] = ExtendPcr(alg, more[alg][18], Measured(alg, "unlogged"));
      BOOST_TEST((CompareReplay(replay, more) == std::map<HashAlg, std::vector<int>>{{alg, {18}}}));
    }
  }
  // Without DRTM events they stay at all ones and are not compared.
  const Replay plain = *ReplayEventLog(LogOf(HashAlg::kSha256, {{0, "firmware"}}));
  BOOST_TEST(!plain.drtm);
  BOOST_TEST(plain.pcrs.at(HashAlg::kSha256)[17] == Bytes(32, 0xFF));
  BOOST_TEST((ReplayScope(plain, HashAlg::kSha256) & kDrtmPcrs) == 0u);
}

// --- (c) damaged logs ---------------------------------------------------------

// The logs to damage: small fixtures of each format, and a written one.
std::vector<std::pair<std::string, Bytes>> Victims() {
  std::vector<std::pair<std::string, Bytes>> out;
  // Seven events: the megabyte one (event 7) would make truncating at every offset slow.
  out.push_back({"written", WriteEventLog(BuildLog({HashAlg::kSha1, HashAlg::kSha256}, 7, 7))});
  if (!fs::exists(kFixtures)) return out;
  for (const char* name : {"tpm2tools-event.bin", "tpm2tools-event-uefivar.bin", "tpm2tools-event-sd-boot-fedora37.bin",
                           "tpm2tools-event-uefi-sha1-log.bin", "short_no_action_eventlog.bin",
                           "crypto_agile_eventlog.bin", "tpm2tools-specid-vendordata.bin"}) {
    if (fs::exists(kFixtures / name)) out.push_back({name, ReadFile(kFixtures / name)});
  }
  return out;
}

// Byte offsets of the u32 framing fields: the Spec ID event's size and
// algorithm count, then each of the first `n` events' digest count (agile)
// and data size.
std::vector<size_t> FramingFields(const Bytes& bytes, size_t n) {
  std::vector<size_t> at;
  auto log = ParseEventLog(ByteView(bytes));
  if (!log.ok()) return at;
  if (log->format() == LogFormat::kCryptoAgile) at.insert(at.end(), {28, 32 + 24});
  for (size_t i = 0; i < std::min(n, log->size()); ++i) {
    const Event& e = log->events()[i];
    if (log->format() == LogFormat::kCryptoAgile) at.push_back(e.log_offset + 8);
    at.push_back(e.data_offset - 4);
  }
  return at;
}

void Put32(Bytes& b, size_t at, uint32_t v) {
  for (int k = 0; k < 4; ++k) b[at + k] = static_cast<uint8_t>(v >> (8 * k));
}

uint32_t Get32(const Bytes& b, size_t at) {
  return uint32_t{b[at]} | uint32_t{b[at + 1]} << 8 | uint32_t{b[at + 2]} << 16 | uint32_t{b[at + 3]} << 24;
}

BOOST_AUTO_TEST_CASE(truncated_logs_parse_or_fail_with_an_offset) {
  for (const auto& [name, bytes] : Victims()) {
    std::string first_problem;
    size_t problems = 0;
    for (size_t cut = 0; cut <= bytes.size(); ++cut) {
      const std::string p = ParsesOrFailsCleanly(Bytes(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut)));
      if (p.empty()) continue;
      if (problems++ == 0) first_problem = "cut at " + std::to_string(cut) + ": " + p;
    }
    BOOST_CHECK_MESSAGE(problems == 0, name << ": " << problems << " bad truncations, first " << first_problem);
  }
}

BOOST_AUTO_TEST_CASE(damaged_sizes_and_counts_parse_or_fail_with_an_offset) {
  for (const auto& [name, bytes] : Victims()) {
    std::string first_problem;
    size_t problems = 0, tried = 0;
    auto attempt = [&](const Bytes& damaged, const std::string& what) {
      ++tried;
      const std::string p = ParsesOrFailsCleanly(damaged);
      if (!p.empty() && problems++ == 0) first_problem = what + ": " + p;
    };
    for (size_t at : FramingFields(bytes, 8)) {
      const uint32_t original = Get32(bytes, at);
      // Every byte of the field flipped and set to a few edge values...
      for (size_t k = 0; k < 4; ++k) {
        for (uint8_t v : {uint8_t(bytes[at + k] ^ 0xFF), uint8_t{0}, uint8_t{1}, uint8_t{0x80}, uint8_t{0xFF}}) {
          Bytes damaged = bytes;
          damaged[at + k] = v;
          attempt(damaged, "byte " + std::to_string(at + k) + " = " + std::to_string(v));
        }
      }
      // ...and the whole field inflated, zeroed and maxed.
      for (uint32_t v : {0u, 1u, original + 1, original * 2 + 1, original + 0x10000, 0x7FFFFFFFu, 0x80000000u,
                         0xFFFFFFFFu, static_cast<uint32_t>(bytes.size())}) {
        Bytes damaged = bytes;
        Put32(damaged, at, v);
        attempt(damaged, "field at " + std::to_string(at) + " = " + std::to_string(v));
      }
    }
    // And random single-byte damage anywhere, with a fixed seed.
    std::mt19937 rng(42);
    for (int i = 0; i < 2000 && !bytes.empty(); ++i) {
      Bytes damaged = bytes;
      const size_t at = rng() % bytes.size();
      damaged[at] = static_cast<uint8_t>(rng());
      attempt(damaged, "random byte " + std::to_string(at));
    }
    BOOST_TEST_MESSAGE(name << ": " << tried << " damaged copies");
    BOOST_CHECK_MESSAGE(problems == 0, name << ": " << problems << " bad results, first " << first_problem);
  }
}

// Zero bytes after the last event are padding whatever their length (1 to
// 11 of them used to be "truncated event header" in a crypto-agile log,
// where 12 or more were accepted); a short tail with anything non-zero in
// it is still an error, at the tail's byte offset.
BOOST_AUTO_TEST_CASE(a_zero_tail_of_any_length_is_padding) {
  EventLog agile = EventLog::CryptoAgile({HashAlg::kSha1, HashAlg::kSha256});
  for (uint32_t i = 0; i < 3; ++i) {
    agile.Append(i, ev::kEfiAction, {{Id(HashAlg::kSha1), FakeDigest(HashAlg::kSha1, i)},
                                     {Id(HashAlg::kSha256), FakeDigest(HashAlg::kSha256, i)}}, AsBytes("action"));
  }
  // A SHA1-format log: TCG_PCR_EVENTs only, a 32-byte header each.
  Bytes sha1;
  for (uint32_t i = 0; i < 3; ++i) {
    Bytes header(32, 0);
    Put32(header, 0, i);
    Put32(header, 4, ev::kAction);
    Put32(header, 28, 4);
    sha1.insert(sha1.end(), header.begin(), header.end());
    sha1.insert(sha1.end(), {'t', 'e', 'x', 't'});
  }
  for (const auto& [name, log, header] :
       {std::tuple{"crypto-agile", WriteEventLog(agile), size_t{12}}, std::tuple{"sha1", sha1, size_t{32}}}) {
    const size_t events = ParseEventLog(ByteView(log))->size();
    BOOST_REQUIRE(events == 3u);
    for (size_t tail = 1; tail <= 40; ++tail) {
      Bytes padded = log;
      padded.resize(log.size() + tail, 0);
      auto parsed = ParseEventLog(ByteView(padded));
      BOOST_TEST_REQUIRE(parsed.ok(), name << " + " << tail << " zero bytes: " << parsed.status().ToString());
      BOOST_TEST(parsed->size() == events, name << " + " << tail << " zero bytes");
      // The same tail ending in a non-zero byte is no padding: an error inside the tail.
      padded.back() = 0x01;
      parsed = ParseEventLog(ByteView(padded));
      BOOST_TEST_REQUIRE(!parsed.ok(), name << " + " << tail << " bytes ending in 01");
      BOOST_TEST(parsed.status().offset().value_or(0) >= log.size(), parsed.status().ToString());
      BOOST_TEST(parsed.status().offset().value_or(padded.size() + 1) <= padded.size(), parsed.status().ToString());
      if (tail < header) {
        BOOST_TEST(*parsed.status().offset() == log.size(), parsed.status().ToString());
        BOOST_TEST(parsed.status().message().find("truncated event header") != std::string::npos,
                   parsed.status().ToString());
      }
    }
  }
}

// A Spec ID event too short for its own fixed fields, at the very end of
// the file: ParseEventLog reads numberOfAlgorithms past the buffer (ASan:
// heap-buffer-overflow, eventlog.cc); the parser checks the Spec ID event
// size against its 29-byte minimum before reading.
BOOST_AUTO_TEST_CASE(spec_id_event_shorter_than_its_fields) {
  for (uint32_t size = 24; size < 29; ++size) {
    Bytes b(32, 0);
    Put32(b, 4, ev::kNoAction);
    Put32(b, 28, size);
    const char sig[] = "Spec ID Event03";
    b.insert(b.end(), sig, sig + 16);
    b.resize(32 + size, 0);
    BOOST_CHECK_MESSAGE(ParsesOrFailsCleanly(b).empty(), "Spec ID event of " << size << " bytes");
  }
}

}  // namespace
}  // namespace tpmlab
