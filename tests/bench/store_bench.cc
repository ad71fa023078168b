// What the store costs per step: the steps of a recorded run written again
// into a fresh database, one transaction each (as a run commits them), then
// read back with ForEachStep.
//
//   store_bench SOURCE.db RUN_ID OUT.db|postgresql://… [STEPS]
//
// Prints the median and 90th percentile of RecordStep (the commit included),
// the database's bytes per step (a SQLite file's; store_backends_bench.sh
// asks PostgreSQL for its own) and how long ForEachStep took over them all.
//
//   store_bench --read DB RUN_ID
//
// Only reads: how long ForEachStep takes over a stored run, and the commands
// its steps hold (trace_bench.sh sets `tpmlab trace` against it).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "harness/store.h"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

uint64_t FolderBytes(const std::filesystem::path& db) {
  uint64_t n = 0;
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const auto size = std::filesystem::file_size(db.string() + suffix, ec);
    if (!ec) n += size;
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tpmlab;
  if (argc == 4 && std::string(argv[1]) == "--read") {
    auto db = Store::Open(argv[2]);
    if (!db.ok()) return std::fprintf(stderr, "%s\n", db.status().ToString().c_str()), 1;
    int64_t steps = 0, commands = 0;
    const auto t0 = Clock::now();
    Status each = (*db)->ForEachStep(std::stoll(argv[3]), [&](StepResult&& s) {
      ++steps;
      commands += static_cast<int64_t>(s.trace.size());
      return Status::Ok();
    });
    std::printf("ForEachStep %.1f ms (%lld steps, %lld commands)\n", Ms(Clock::now() - t0),
                static_cast<long long>(steps), static_cast<long long>(commands));
    return each.ok() ? 0 : 1;
  }
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s SOURCE.db RUN_ID OUT.db [STEPS]\n", argv[0]);
    return 2;
  }
  const int64_t run_id = std::stoll(argv[2]);
  const int total = argc > 4 ? std::stoi(argv[4]) : 0;
  auto source = Store::Open(argv[1]);
  if (!source.ok()) return std::fprintf(stderr, "%s\n", source.status().ToString().c_str()), 1;
  std::vector<StepResult> steps;
  Status read = (*source)->ForEachStep(run_id, [&](StepResult&& s) {
    steps.push_back(std::move(s));
    return Status::Ok();
  });
  if (!read.ok() || steps.empty()) return std::fprintf(stderr, "no steps: %s\n", read.ToString().c_str()), 1;

  const bool postgres = IsDatabaseUrl(argv[3]);
  if (!postgres) std::filesystem::remove(argv[3]);
  auto out = Store::Open(argv[3]);
  if (!out.ok()) return std::fprintf(stderr, "%s\n", out.status().ToString().c_str()), 1;
  RunInfo info;
  info.scenario = "store_bench";
  info.started_at = "2026-12-06T00:00:00Z";
  auto run = (*out)->BeginRun(info);
  if (!run.ok()) return 1;
  const int n = total > 0 ? total : static_cast<int>(steps.size());
  std::vector<double> commit_ms;
  for (int i = 0; i < n; ++i) {
    StepResult s = steps[static_cast<size_t>(i) % steps.size()];
    s.index = i;
    const auto t0 = Clock::now();
    Status st = (*out)->RecordStep(*run, s);
    commit_ms.push_back(Ms(Clock::now() - t0));
    if (!st.ok()) return std::fprintf(stderr, "%s\n", st.ToString().c_str()), 1;
  }
  std::sort(commit_ms.begin(), commit_ms.end());
  const auto t0 = Clock::now();
  int walked = 0;
  Status each = (*out)->ForEachStep(*run, [&](StepResult&&) {
    ++walked;
    return Status::Ok();
  });
  const double walk_ms = Ms(Clock::now() - t0);
  out->reset();
  std::printf("steps %d  RecordStep median %.3f ms  p90 %.3f ms  ForEachStep %.0f ms (%d steps)", n,
              commit_ms[commit_ms.size() / 2], commit_ms[commit_ms.size() * 9 / 10], walk_ms, walked);
  if (!postgres) std::printf("  db %.0f bytes/step", static_cast<double>(FolderBytes(argv[3])) / n);
  std::printf("\n");
  return each.ok() ? 0 : 1;
}
