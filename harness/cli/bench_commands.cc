// tpmlab bench check FILE: validate a bench file and look for each of its
// parts on this machine. tpmlab hw list: the TPM devices and the USB
// bridges, relays and hubs tpmlab recognises on this machine.
//
// bench check exits 0 when every part is present, 1 when one is missing or
// cannot be looked for yet, 2 when the file is malformed (file:line:column).
// Each part is reported once, on stdout.
//
// tpmlab bench kit FILE -o DIR: what a board bench boots besides its
// firmware (kernel, initramfs with tpmlab-agent, a manufactured chip), for a
// lab that launches the board itself (hw/sim/up).
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>

#include "exit_codes.h"
#include "harness/bench.h"
#include "harness/qemu_board.h"
#include "harness/usb_parts.h"
#include "commands.h"

namespace tpmlab::cli {
namespace {

namespace fs = std::filesystem;

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
  // Each part once, on stdout; stderr gets only the verdict of a failed check.
  int missing = 0, parts = 0;
  for (const ProbeItem& item : ProbeBenchHere(*bench)) {
    ++parts;
    std::cout << Tag(item.state) << " " << item.part << ": " << item.detail << "\n";
    if (item.state != ProbeState::kPresent) ++missing;
  }
  if (missing == 0) {
    std::cout << "every part is present\n";
    return kExitPassed;
  }
  std::cerr << "tpmlab bench check: " << file << ": " << missing << " of " << parts
            << (parts == 1 ? " part" : " parts") << " missing or not checkable (the [MISS] and [ ?? ] lines)\n";
  return kExitFailed;
}

int BenchKit(const std::string& file, const std::string& out) {
  auto bench = LoadBench(file);
  if (!bench.ok()) {
    std::cerr << "tpmlab bench kit: " << bench.status().message() << "\n";
    return ExitFor(bench.status());
  }
  if (!bench->board) {
    std::cerr << "tpmlab bench kit: bench '" << bench->name << "' (" << file
              << ") has no board: section: a kit is what a board boots (hw/benches/qemu-ovmf*.yaml)\n";
    return kExitUsage;
  }
  auto kit = WriteBoardKit(*bench, out);
  if (!kit.ok()) {
    std::cerr << "tpmlab bench kit: " << kit.status().message() << "\n";
    return ExitFor(kit.status());
  }
  // key=value lines, for a script to read.
  std::cout << "kernel=" << kit->kernel.string() << "\ninitramfs=" << kit->initramfs.string()
            << "\ntpm_state=" << kit->tpm_state.string() << "\nappend=" << kit->append << "\n";
  return kExitPassed;
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
  // USB: the bridges, relays and hubs tpmlab can drive. Not being able to
  // enumerate (no usbfs, as in a container) is said, not an error.
  auto usb = OpenLibusbContext();
  if (!usb.ok()) {
    std::cout << "USB: cannot enumerate: " << usb.status().message() << "\n";
    return kExitPassed;
  }
  size_t seen = 0;
  auto parts = ListUsbParts(**usb, &seen);
  if (!parts.ok()) {
    std::cout << "USB: cannot enumerate: " << parts.status().message() << "\n";
    return kExitPassed;
  }
  for (const auto& p : *parts) {
    std::cout << p.device.Describe() << "  " << p.role << " (bench: " << p.bench_kind << ")\n";
  }
  if (parts->empty()) {
    std::cout << "no supported USB devices found (" << seen << " USB device" << (seen == 1 ? "" : "s")
              << " seen: no SPI bridge, relay or hub)\n";
  }
  return kExitPassed;
}

}  // namespace

std::vector<Command> AddBenchCommands(CLI::App& app) {
  auto file = std::make_shared<std::string>();
  auto* bench = app.add_subcommand("bench", "Bench files (hw/README.md)");
  bench->require_subcommand(1);
  auto* check = bench->add_subcommand("check", "Validate a bench file and look for each of its parts on this machine");
  check->footer("Power through a BMC (kind ipmi or redfish) is asked for the machine's power state only;\n"
                "nothing is switched. Passwords come from password_file or password_env, never the bench file.\n"
                "A flash: chip is not probed (that could disturb a running machine): its images, flashrom\n"
                "and a dummy chip's file are looked at.\n"
                "A machine bench (dut: {transport: machine}) is checked without touching the machine: ssh on\n"
                "PATH and the host resolving, the serial device present and openable, or the TCP console's port\n"
                "accepting a connection. `tpmlab doctor --bench FILE` then boots it and examines its TPM.");
  check->add_option("FILE", *file, "Bench file (hw/benches/*.yaml)")->required();
  auto* kit = bench->add_subcommand("kit", "Write what a board bench boots besides its firmware (kernel, initramfs "
                                           "with tpmlab-agent, a manufactured chip) into a folder, for a lab that "
                                           "launches the board itself (hw/sim/up)");
  auto kit_file = std::make_shared<std::string>();
  auto kit_out = std::make_shared<std::string>();
  kit->add_option("FILE", *kit_file, "A bench file with a board: section (hw/benches/qemu-ovmf.yaml)")->required();
  kit->add_option("-o,--out", *kit_out, "Folder to write into (created; a chip already in DIR/tpm is kept)")->required();
  kit->footer("Prints key=value lines: kernel, initramfs, tpm_state, append (the kernel command line).");
  auto* hw = app.add_subcommand("hw", "Hardware tpmlab can see on this machine");
  hw->require_subcommand(1);
  auto* list = hw->add_subcommand("list", "List TPM devices and recognised USB devices");
  return {{check, [file] { return BenchCheck(*file); }},
          {kit, [kit_file, kit_out] { return BenchKit(*kit_file, *kit_out); }},
          {list, [] { return HwList(); }}};
}

}  // namespace tpmlab::cli
