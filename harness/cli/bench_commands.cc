// tpmlab bench check FILE: validate a bench file and look for each of its
// parts on this machine. tpmlab hw list: the TPM devices (and, once libusb
// probing is built in, the USB bridges, relays and hubs) this machine has.
//
// bench check exits 0 when every part is present, 1 when one is missing or
// cannot be looked for yet, 2 when the file is malformed (file:line:column).
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>

#include "exit_codes.h"
#include "harness/bench.h"
#include "commands.h"

namespace tpmlab::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUsbNotBuilt = "USB probing: not built in this version";

const char* Tag(ProbeState state) {
  switch (state) {
    case ProbeState::kPresent: return "[ OK ]";
    case ProbeState::kMissing: return "[MISS]";
    case ProbeState::kUnknown: return "[ ?? ]";
  }
  return "[ ?? ]";
}

int BenchCheck(const std::string& file) {
  auto bench = LoadBench(file);
  if (!bench.ok()) {
    std::cerr << "tpmlab bench check: " << bench.status().message() << "\n";
    return ExitFor(bench.status());
  }
  std::cout << "bench " << bench->name << " (" << file << "): dut " << DutTransportName(bench->dut.transport)
            << ", power " << PowerKindName(bench->power.kind) << ", boot log "
            << BootLogSourceName(bench->boot_log.source) << "\n";
  int missing = 0;
  for (const ProbeItem& item : ProbeBench(*bench)) {
    std::cout << Tag(item.state) << " " << item.part << ": " << item.detail << "\n";
    if (item.state != ProbeState::kPresent) {
      ++missing;
      std::cerr << "tpmlab bench check: " << file << ": " << item.part << ": " << item.detail << "\n";
    }
  }
  if (missing == 0) {
    std::cout << "every part is present\n";
    return kExitPassed;
  }
  std::cout << missing << (missing == 1 ? " part" : " parts") << " missing or not checkable\n";
  return kExitFailed;
}

int HwList() {
  int found = 0;
  std::error_code ec;
  std::vector<std::string> devices;
  for (const auto& entry : fs::directory_iterator("/dev", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("tpm", 0) == 0) devices.push_back(entry.path().string());
  }
  std::sort(devices.begin(), devices.end());
  for (const auto& d : devices) {
    const bool rm = d.find("tpmrm") != std::string::npos;
    std::cout << d << "  TPM " << (rm ? "(kernel resource manager; shareable)" : "(raw; one process at a time)")
              << "\n";
    ++found;
  }
  if (found == 0) std::cout << "no TPM devices found (/dev/tpm*)\n";
  std::cout << kUsbNotBuilt << " (bridges, relays and hubs are not listed)\n";
  return kExitPassed;
}

}  // namespace

std::vector<Command> AddBenchCommands(CLI::App& app) {
  auto file = std::make_shared<std::string>();
  auto* bench = app.add_subcommand("bench", "Bench files (hw/README.md)");
  bench->require_subcommand(1);
  auto* check = bench->add_subcommand("check", "Validate a bench file and look for each of its parts on this machine");
  check->add_option("FILE", *file, "Bench file (hw/benches/*.yaml)")->required();
  auto* hw = app.add_subcommand("hw", "Hardware tpmlab can see on this machine");
  hw->require_subcommand(1);
  auto* list = hw->add_subcommand("list", "List TPM devices and recognised USB devices");
  return {{check, [file] { return BenchCheck(*file); }}, {list, [] { return HwList(); }}};
}

}  // namespace tpmlab::cli
