// What tpmlab says about itself: the --version report, and the man page and
// bash completion the build generates from the command tree (so they never
// disagree with --help).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace tpmlab::cli {

// Hidden arguments the build runs `tpmlab` with (harness/cli/CMakeLists.txt).
inline constexpr const char* kGenerateManPage = "--generate-man-page";
inline constexpr const char* kGenerateBashCompletion = "--generate-bash-completion";

/// "tpmlab 0.1.0" and one line each for swtpm, libtpms, tpm2-tss and OpenSSL:
/// the version found, or "not found".
std::string VersionReport();

/// A man(7) page: every subcommand with its arguments and options.
std::string ManPage(const CLI::App& app);

/// A bash completion script: subcommands, then each one's options, then files.
std::string BashCompletion(const CLI::App& app);

}  // namespace tpmlab::cli
