// The comparison model (harness/compare.h) on digests fed step by step, no
// TPM or store: the latency sketch's quantiles, the regression threshold and
// its floors, counters that go back, alarms and expectations only in B, and
// the verdict lines that say so.
#define BOOST_TEST_MODULE compare
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <random>

#include "harness/compare.h"

namespace tpmlab {
namespace {

constexpr uint32_t kQuote = 0x158;
constexpr uint32_t kPcrRead = 0x17E;

// A power cycle step whose snapshot's verified quote carries `clock`.
StepResult Cycle(int index, const std::string& kind, ClockInfo clock) {
  StepResult s;
  s.index = index;
  s.action = "power_cycle";
  s.kind = kind;
  s.snapshot.emplace();
  s.snapshot->quote_check.parsed = true;
  s.snapshot->quote_check.attest.clock = clock;
  return s;
}

// Commands of `code`, each taking `ms`.
void Timed(StepResult& s, uint32_t code, int count, double ms) {
  for (int i = 0; i < count; ++i) {
    TraceRecord r;
    r.command_code = code;
    r.duration = std::chrono::nanoseconds(static_cast<int64_t>(ms * 1e6));
    s.trace.push_back(r);
  }
}

RunDigest Digest(const std::string& label, std::vector<StepResult> steps) {
  RunDigest d;
  d.label = label;
  for (auto& s : steps) d.Add(std::move(s));
  return d;
}

const AreaVerdict& VerdictOf(const Comparison& c, const std::string& area) {
  return *std::find_if(c.verdicts.begin(), c.verdicts.end(), [&](const AreaVerdict& v) { return v.area == area; });
}

BOOST_AUTO_TEST_CASE(sketch_quantiles_are_within_one_percent_of_the_exact_ones) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> us(8.0, 1.0);
  std::vector<double> all;
  LatencySketch sketch;
  for (int i = 0; i < 20000; ++i) {
    all.push_back(us(rng));
    sketch.Add(all.back());
  }
  std::sort(all.begin(), all.end());
  for (double q : {0.5, 0.9, 0.99}) {
    const double exact = all[static_cast<size_t>(q * (all.size() - 1))];
    BOOST_TEST(sketch.Quantile(q) == exact, boost::test_tools::tolerance(0.0101));
  }
  BOOST_TEST(sketch.count() == 20000u);
  BOOST_TEST(LatencySketch().Quantile(0.5) == 0.0);
}

BOOST_AUTO_TEST_CASE(a_command_slower_past_the_threshold_is_a_regression) {
  StepResult a = Cycle(1, "reset", {100, 1, 0, true}), b = Cycle(1, "reset", {100, 1, 0, true});
  Timed(a, kQuote, 20, 10.0);
  Timed(b, kQuote, 20, 16.0);  // 1.6x
  Timed(a, kPcrRead, 20, 2.0);
  Timed(b, kPcrRead, 20, 2.4);  // 1.2x: under the threshold
  const RunDigest da = Digest("A", {std::move(a)}), db = Digest("B", {std::move(b)});

  const Comparison c = CompareDigests(da, db, {});
  const auto quote = std::find_if(c.latency.begin(), c.latency.end(), [](auto& l) { return l.command == "TPM2_Quote"; });
  BOOST_REQUIRE(quote != c.latency.end());
  BOOST_TEST(*quote->ratio_p90 == 1.6, boost::test_tools::tolerance(0.02));
  BOOST_TEST((quote->regressed == std::vector<std::string>{"p50", "p90"}));  // 20 samples: no p99 verdict
  const auto read = std::find_if(c.latency.begin(), c.latency.end(), [](auto& l) { return l.command == "TPM2_PCR_Read"; });
  BOOST_TEST(read->regressed.empty());
  BOOST_TEST(VerdictOf(c, "latency").status == "regression");
  BOOST_TEST(VerdictOf(c, "latency").line.starts_with("latency: TPM2_Quote p50 1.6x slower (+6.0 ms)"));
  BOOST_TEST(c.differs());

  CompareOptions lenient;
  lenient.threshold = 2.0;
  BOOST_TEST(VerdictOf(CompareDigests(da, db, lenient), "latency").status == "same");
  CompareOptions floor;
  floor.min_delta_us = 7000;  // 6 ms slower is under this floor
  BOOST_TEST(VerdictOf(CompareDigests(da, db, floor), "latency").status == "same");
  // Faster is never a regression.
  BOOST_TEST(!CompareDigests(db, da, {}).differs());
}

BOOST_AUTO_TEST_CASE(counters_that_go_back_only_in_b_regress) {
  // A: resets count up, restartCount falls only with a reset.
  std::vector<StepResult> a_steps, b_steps;
  a_steps.push_back(Cycle(1, "restart", {100, 1, 1, true}));
  a_steps.push_back(Cycle(2, "reset", {200, 2, 0, true}));
  a_steps.push_back(Cycle(3, "power-loss", {250, 3, 0, false}));
  // B: restartCount falls without a reset, the clock goes back.
  b_steps.push_back(Cycle(1, "restart", {100, 1, 1, true}));
  b_steps.push_back(Cycle(2, "reset", {200, 1, 0, true}));
  b_steps.push_back(Cycle(3, "power-loss", {150, 2, 0, false}));
  const RunDigest a = Digest("A", std::move(a_steps)), b = Digest("B", std::move(b_steps));
  BOOST_TEST(a.counters.restart_count.monotonic());
  BOOST_TEST(a.counters.safe_no == 1);
  BOOST_TEST(a.counters.first_safe_no_step == 3);
  BOOST_TEST(!b.counters.restart_count.monotonic());
  BOOST_TEST(b.counters.clock.first_decrease_step == 3);

  const Comparison c = CompareDigests(a, b, {});
  BOOST_TEST(c.counters_regressed);
  BOOST_TEST(VerdictOf(c, "counters").status == "regression");
  BOOST_TEST(VerdictOf(c, "counters").line.find("went back") != std::string::npos);
  // A run against itself: same behaviour.
  BOOST_TEST(VerdictOf(CompareDigests(a, a, {}), "counters").status == "same");
}

BOOST_AUTO_TEST_CASE(alarms_and_expectations_only_in_b_regress_and_only_in_a_improve) {
  StepResult a = Cycle(1, "reset", {100, 1, 0, true}), b = Cycle(1, "reset", {100, 1, 0, true});
  b.alarms.push_back({"PCR_POLICY_MISMATCH", Severity::kError, "", {}});
  b.alarms.push_back({"PCR_POLICY_MISMATCH", Severity::kError, "", {}});  // two banks, one step
  RunDigest da = Digest("A", {std::move(a)}), db = Digest("B", {std::move(b)});
  da.AddOutcome({{"expectations", {{{"name", "e1"}, {"where", "s.yaml:3:5"}, {"passed", true}}}}});
  db.AddOutcome({{"expectations", {{{"name", "e1"}, {"where", "s.yaml:3:5"}, {"passed", false}}}}});

  const Comparison c = CompareDigests(da, db, {});
  BOOST_TEST(VerdictOf(c, "alarms").line == "alarms: only in B: PCR_POLICY_MISMATCH x1 from step 1: REGRESSION");
  BOOST_TEST((c.failed_only_in_b == std::vector<std::string>{"e1"}));
  BOOST_TEST(VerdictOf(c, "expectations").status == "regression");

  const Comparison back = CompareDigests(db, da, {});
  BOOST_TEST(VerdictOf(back, "alarms").status == "improved");
  BOOST_TEST(VerdictOf(back, "expectations").status == "improved");
  const auto json = ComparisonToJson(back);
  BOOST_TEST(json["alarms"]["only_in_a"][0]["code"] == "PCR_POLICY_MISMATCH");
  BOOST_TEST(json["differs"] == false);
}

BOOST_AUTO_TEST_CASE(a_step_is_kept_only_when_it_is_the_one_asked_for) {
  RunDigest d;
  d.pcr_step = 1;
  d.Add(Cycle(1, "reset", {100, 1, 0, true}));
  d.Add(Cycle(2, "reset", {200, 2, 0, true}));
  BOOST_TEST(d.snapshot_step == 1);
  RunDigest last;
  last.Add(Cycle(1, "reset", {100, 1, 0, true}));
  last.Add(Cycle(2, "reset", {200, 2, 0, true}));
  BOOST_TEST(last.snapshot_step == 2);
  BOOST_TEST(VerdictOf(CompareDigests(d, RunDigest{}, {}), "pcrs").line == "PCRs: not compared (B took no snapshot)");
}

}  // namespace
}  // namespace tpmlab
