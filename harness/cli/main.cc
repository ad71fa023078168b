// tpmlab: the command line. Each area's subcommands live in their own file;
// this one parses and dispatches.
//
// Exit codes (stable; scripts and CI rely on them; exit_codes.h):
//   0  every step and check passed; no alarm; no drift
//   1  a check failed, a verifier alarmed, or two snapshots (or two event
//      logs) differ
//   2  bad input or usage: nothing ran (a malformed file names where)
//   3  the run could not complete: TPM, emulator, transport or store error
//   4  something tpmlab needs is not installed (the message names the package)
//   (3 also when tpmlab itself fails: "tpmlab: internal error: ...", never an abort)
//   130 interrupted (Ctrl-C); every completed step is stored
// `tpmlab eventlog show | replay` exit 0 when their log parsed, whatever it
// contains; `tpmlab eventlog diff` exits 1 when the logs differ, as `tpmlab
// diff` does; all exit 2 when a log is malformed. `tpmlab doctor` exits 1
// when a checklist item fails and 3 when the TPM cannot be reached. `tpmlab
// bench check` exits 1 when a part of the bench is missing (or cannot be
// looked for yet); `tpmlab hw list` 0.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "drivers/process.h"
#include "docs.h"
#include "exit_codes.h"

namespace {

// Letters to change, add or remove to turn `a` into `b`.
size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// CLI11 says only "A subcommand is required" for a mistyped one: name the
// word and the nearest command instead. Empty when the words are commands.
std::string UnknownCommand(CLI::App& app, int argc, char** argv) {
  CLI::App* at = &app;
  std::string path = "tpmlab";
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word.empty() || word[0] == '-') return "";  // options: CLI11 judges them
    const auto subcommands = at->get_subcommands([](CLI::App*) { return true; });
    if (subcommands.empty()) return "";
    CLI::App* next = nullptr;
    std::string nearest;
    size_t nearest_distance = SIZE_MAX;
    for (CLI::App* sub : subcommands) {
      if (sub->get_name() == word) next = sub;
      const size_t d = EditDistance(word, sub->get_name());
      if (d < nearest_distance) nearest_distance = d, nearest = sub->get_name();
    }
    if (next != nullptr) {
      at = next;
      path += " " + word;
      continue;
    }
    if (at->get_require_subcommand_min() == 0) return "";  // a positional argument
    std::string known;
    for (CLI::App* sub : subcommands) known += (known.empty() ? "" : ", ") + sub->get_name();
    std::string message = path + ": unknown command '" + word + "'";
    if (nearest_distance <= std::max<size_t>(2, word.size() / 3)) message += "; did you mean '" + nearest + "'?";
    return message + " (commands: " + known + ")";
  }
  return "";
}

// The last resort: an exception nothing below caught (a bug, or a library
// throwing where tpmlab did not expect it) is reported and exits 3, never
// std::terminate's abort and core dump.
[[noreturn]] void InternalError(const std::string& what) {
  std::cout.flush();
  std::cerr << "tpmlab: internal error: " << what << "\n";
  std::cerr.flush();
  std::_Exit(tpmlab::cli::kExitRunError);
}

std::string CurrentExceptionText() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

// Exceptions that cannot reach main's handler (thrown on another thread, or
// through a noexcept function) end here instead of in abort().
[[noreturn]] void OnTerminate() {
  InternalError(std::current_exception() ? CurrentExceptionText() : "std::terminate called without an exception");
}

int Main(int argc, char** argv) {
  using namespace tpmlab::cli;
  CLI::App app{"tpmlab: drive TPM 2.0 chips through power cycles and record what drifts"};
  app.name("tpmlab");
  app.require_subcommand(1);
  app.set_version_flag("--version", [] { return VersionReport(); },
                       "Print tpmlab's version and those of swtpm, libtpms, tpm2-tss and OpenSSL, and exit");

  std::vector<Command> commands = {AddRunCommand(app)};
  for (auto& c : AddEventlogCommands(app)) commands.push_back(std::move(c));
  for (auto& c : AddVerifyCommands(app)) commands.push_back(std::move(c));
  for (auto& c : AddBundleCommands(app)) commands.push_back(std::move(c));
  commands.push_back(AddDoctorCommand(app));
  for (auto& c : AddBenchCommands(app)) commands.push_back(std::move(c));
  commands.push_back(AddReproduceCommand(app));
  commands.push_back(AddExportCommand(app));
  commands.push_back(AddTraceCommand(app));
  commands.push_back(AddReportCommand(app));
  for (auto& c : AddRunsCommands(app)) commands.push_back(std::move(c));
  commands.push_back(AddReferenceCommand(app));
  commands.push_back(AddCompareCommand(app));
  commands.push_back(AddServeCommand(app));

  // The build makes the man page and the bash completion from this tree.
  if (argc == 2 && std::string(argv[1]) == kGenerateManPage) {
    std::cout << ManPage(app);
    return kExitPassed;
  }
  if (argc == 2 && std::string(argv[1]) == kGenerateBashCompletion) {
    std::cout << BashCompletion(app);
    return kExitPassed;
  }
  if (const std::string unknown = UnknownCommand(app, argc, argv); !unknown.empty()) {
    std::cerr << unknown << "\n";
    return kExitUsage;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  for (const auto& c : commands) {
    if (*c.app) return c.run();
  }
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  std::set_terminate(OnTerminate);
  // This thread outlives every emulator a command starts: they die with it,
  // even when tpmlab is killed with SIGKILL.
  tpmlab::ChildProcess::DieWithParentByDefault(true);
  try {
    return Main(argc, argv);
  } catch (...) {
    InternalError(CurrentExceptionText());
  }
}
