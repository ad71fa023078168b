// The tpmlab subcommands, one area per file.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace tpmlab::cli {

struct Command {
  CLI::App* app;
  std::function<int()> run;
};

// Each adds its subcommands to `app`; main runs the one the user chose.
Command AddRunCommand(CLI::App& app);                       // run_command.cc
std::vector<Command> AddEventlogCommands(CLI::App& app);    // eventlog_commands.cc
std::vector<Command> AddVerifyCommands(CLI::App& app);      // verify_commands.cc: enroll, verify, diff
std::vector<Command> AddBundleCommands(CLI::App& app);      // bundle_commands.cc: bundle, replay
Command AddDoctorCommand(CLI::App& app);                    // doctor_command.cc
std::vector<Command> AddBenchCommands(CLI::App& app);      // bench_commands.cc: bench check, hw list

// A progress line's start, "[step    5 | 6/20]": the step's index as run.json,
// the database and RUN.json:STEP number it, then how many of the total are done.
std::string StepProgressPrefix(int index, int total);  // run_command.cc

}  // namespace tpmlab::cli
