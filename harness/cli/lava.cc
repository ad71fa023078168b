// Inside a LAVA test job, each run's verdicts also go to LAVA as test cases,
// through the job's own `lava-test-case` helper (LAVA puts it on PATH and
// sets LAVA_RESULT_DIR in its test shell): one case per expectation, one for
// the run completing, and the verified cycles per second as a measurement.
// TPMLAB_LAVA=0 turns it off; outside LAVA nothing happens.
#include "lava.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

extern char** environ;

namespace tpmlab::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// `program` as the shell would find it on PATH ("" when it is not there).
std::string OnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = dirs.find(':', start);
    const std::string dir = dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
    const fs::path candidate = fs::path(dir.empty() ? "." : dir) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "";
}

// LAVA splits a signal on blanks and '=' and ends it at '>': a case name keeps
// letters, digits, '.', '-' and '_' only.
std::string CaseName(const std::string& text) {
  std::string out;
  for (char c : text) {
    const bool kept = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    if (kept) {
      out += c;
    } else if (!out.empty() && out.back() != '_') {
      out += '_';
    }
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out.empty() ? "case" : out;
}

// Runs the helper with our stdout, which is where LAVA reads its signals.
bool Run(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::cout.flush();
  std::fflush(stdout);
  pid_t pid = -1;
  if (::posix_spawn(&pid, argv[0].c_str(), nullptr, nullptr, args.data(), environ) != 0) return false;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// "2026-12-06T20:24:15.147Z" in seconds since the epoch, with its milliseconds.
double UtcSeconds(const std::string& iso) {
  std::tm tm{};
  const char* rest = ::strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return 0;
  const double fraction = *rest == '.' ? std::atof(rest) : 0.0;
  return static_cast<double>(::timegm(&tm)) + fraction;
}

}  // namespace

std::string LavaTestCaseHelper() {
  const char* off = std::getenv("TPMLAB_LAVA");
  if (off && std::string(off) == "0") return "";
  if (!std::getenv("LAVA_RESULT_DIR")) return "";
  return OnPath("lava-test-case");
}

void ReportToLava(const fs::path& run_json, const std::string& prefix) {
  const std::string helper = LavaTestCaseHelper();
  if (helper.empty()) return;
  std::ifstream in(run_json);
  const json run = json::parse(in, nullptr, false);
  if (run.is_discarded()) {
    std::cerr << "tpmlab: LAVA: cannot read " << run_json.string() << " to report its results\n";
    return;
  }
  const std::string base = CaseName(prefix.empty() ? run.value("scenario", "run") : prefix);
  int failed_reports = 0;
  auto report = [&](const std::string& name, const std::string& result, const std::string& units = "",
                    const std::string& measurement = "") {
    std::vector<std::string> argv = {helper, CaseName(base + "." + name), "--result", result};
    if (!measurement.empty()) argv.insert(argv.end(), {"--units", units, "--measurement", measurement});
    if (!Run(argv)) ++failed_reports;
  };
  const std::string status = run.value("status", "error");
  report("run-completes", status == "passed" || status == "failed" ? "pass" : "fail");
  // "expect at FILE:18:5 on step 3 (power_cycle): SECURE_BOOT_DISABLED" is
  // "step-3.SECURE_BOOT_DISABLED": the same case in every job, wherever the
  // scenario file was.
  for (const auto& e : run.value("expectations", json::array())) {
    const std::string name = e.value("name", "expectation");
    const size_t said = name.rfind(": ");
    report("step-" + std::to_string(e.value("step", 0)) + "." + (said == std::string::npos ? name : name.substr(said + 2)),
           e.value("passed", false) ? "pass" : "fail");
  }
  const int cycles = run["summary"].value("power_cycles", 0);
  const double seconds = UtcSeconds(run.value("finished_at", "")) - UtcSeconds(run.value("started_at", ""));
  if (cycles > 0 && seconds > 0) {
    char rate[32];
    std::snprintf(rate, sizeof(rate), "%.2f", static_cast<double>(cycles) / seconds);
    report("cycles-per-second", "pass", "cycles/s", rate);
  }
  if (failed_reports > 0) {
    std::cerr << "tpmlab: LAVA: " << helper << " failed for " << failed_reports << " report(s)\n";
  }
}

}  // namespace tpmlab::cli
