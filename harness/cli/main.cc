// tpmlab: the command line. Each area's subcommands live in their own file;
// this one parses and dispatches.
//
// Exit codes (stable; scripts and CI rely on them; exit_codes.h):
//   0  every step and check passed; no alarm; no drift
//   1  a check failed, a verifier alarmed, or two snapshots differ
//   2  bad input or usage: nothing ran (a malformed file names where)
//   3  the run could not complete: TPM, emulator, transport or store error
//   4  something tpmlab needs is not installed (the message names the package)
//   130 interrupted (Ctrl-C); every completed step is stored
// `tpmlab eventlog` exits 0 when its logs parsed, whatever they contain, and
// 2 when one is malformed. `tpmlab doctor` exits 1 when a checklist item fails
// and 3 when the TPM cannot be reached. `tpmlab bench check` exits 1 when a
// part of the bench is missing (or cannot be looked for yet); `tpmlab hw list` 0.
#include <CLI/CLI.hpp>

#include "exit_codes.h"
#include "harness/runner.h"
#include "commands.h"

int main(int argc, char** argv) {
  using namespace tpmlab::cli;
  CLI::App app{"tpmlab: drive TPM 2.0 chips through power cycles and record what drifts"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("tpmlab ") + tpmlab::kTpmlabVersion);

  std::vector<Command> commands = {AddRunCommand(app)};
  for (auto& c : AddEventlogCommands(app)) commands.push_back(std::move(c));
  for (auto& c : AddVerifyCommands(app)) commands.push_back(std::move(c));
  for (auto& c : AddBundleCommands(app)) commands.push_back(std::move(c));
  commands.push_back(AddDoctorCommand(app));
  for (auto& c : AddBenchCommands(app)) commands.push_back(std::move(c));

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
