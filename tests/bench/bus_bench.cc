// bus_bench: what a TPM's bus costs. The same command mix through tpmlab's
// Tpm over four buses, each to its own fresh swtpm:
//   socket     swtpm's command socket (what the embedded default uses)
//   tis        TIS over the simulated SPI TPM, no wait states, burstCount 64
//   tis-wait   the same with 0..3 wait states per frame and burstCount 16
//   ftdi-0     TIS over an FTDI FT232H's MPSSE byte stream (fake USB, the
//              bridge simulated) into the simulated SPI TPM, no wait states
//   ftdi       the same with 0..3 wait states and burstCount 16
// Runs interleave the buses, so machine noise hits all of them alike.
//
//   bus_bench [--runs R] [--commands N]
//
// Output: per bus the median commands/s (min-max over runs) and the ratio to
// the socket, then what does not depend on the machine: SPI frames, wait
// states and (ftdi) USB transfers per TPM command — on hardware each USB
// transfer is at least one 125 µs microframe, so they predict a real
// bridge's ceiling.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "drivers/fake_usb.h"
#include "drivers/ftdi_spi.h"
#include "drivers/swtpm.h"
#include "drivers/tis_simulator.h"
#include "drivers/tis_spi.h"
#include "harness/tpm.h"
#include "usb_simulators.h"

using namespace tpmlab;
namespace fs = std::filesystem;

namespace {

// Each iteration: PCR_Read of sha256 0-23 (three commands: 8 PCRs each),
// PCR_Extend of PCR 16, ReadClock — five commands, small and large responses.
constexpr int kCommandsPerIteration = 5;

Status Workload(Tpm& tpm, int iterations) {
  const std::map<HashAlg, Bytes> digest = {{HashAlg::kSha256, Bytes(32, 0x5A)}};
  for (int i = 0; i < iterations; ++i) {
    TRY(tpm.ReadPcrs({HashAlg::kSha256}).status());
    TRY(tpm.Extend(16, digest));
    TRY(tpm.ReadClock().status());
  }
  return Status::Ok();
}

struct Sample {
  double commands_per_s = 0;
  double frames_per_command = 0;
  double wait_states_per_command = 0;
  double usb_transfers_per_command = 0;
};

// A fresh swtpm with its own state folder, already initialised.
struct Chip {
  explicit Chip(const fs::path& dir) {
    SwtpmConfig config;
    config.state_dir = dir;
    auto launched = SwtpmProcess::Launch(config);
    if (!launched.ok()) {
      std::fprintf(stderr, "bus_bench: %s\n", launched.status().ToString().c_str());
      std::exit(1);
    }
    process = std::move(*launched);
    socket = std::make_unique<SwtpmTransport>(*process);
  }
  std::unique_ptr<SwtpmProcess> process;
  std::unique_ptr<SwtpmTransport> socket;
};

Result<Sample> Measure(const std::string& bus, const fs::path& dir, int commands) {
  Chip chip(dir);
  std::unique_ptr<TisSimulator> sim;
  std::unique_ptr<FakeUsbContext> usb;
  std::shared_ptr<FakeUsbDevice> bridge;
  std::unique_ptr<SpiBus> spi;
  std::unique_ptr<TisSpiTransport> tis;
  Transport* transport = chip.socket.get();
  if (bus != "socket") {
    TisSimulator::Options o;
    o.wait_states_min = 0;
    const bool fast_chip = bus == "tis" || bus == "ftdi-0";
    o.wait_states_max = fast_chip ? 0 : 3;
    o.burst_count = fast_chip ? 64 : 16;
    sim = std::make_unique<TisSimulator>(*chip.socket, o);
    SpiBus* spi_bus = sim.get();
    if (bus.rfind("ftdi", 0) == 0) {
      usb = std::make_unique<FakeUsbContext>();
      UsbDeviceInfo info;
      info.vendor_id = ftdi::kVendorId;
      info.product_id = ftdi::kFt232h;
      info.bus = 1;
      info.port_path = {1};
      bridge = usb->Add(info);
      bridge->SetResponder(testing::MpsseToSimulator(*sim));
      FtdiSpiConfig c;
      c.hz = 15'000'000;
      TRY_ASSIGN(auto ftdi_bus, FtdiMpsseSpiBus::Open(*usb, c));
      spi = std::move(ftdi_bus);
      spi_bus = spi.get();
    }
    TRY_ASSIGN(tis, TisSpiTransport::Open(*spi_bus));
    transport = tis.get();
  }
  TRY_ASSIGN(auto tpm, Tpm::Open(*transport));
  TRY(tpm->Startup(StartupType::kClear));
  TRY(Workload(*tpm, 5));  // warm-up
  const uint64_t commands_before = sim ? sim->commands() : 0;
  const uint64_t waits_before = sim ? sim->wait_states_inserted() : 0;
  const uint64_t frames_before = sim ? sim->frames_total() : 0;
  if (bridge) bridge->TakeTransfers();
  const int iterations = std::max(1, commands / kCommandsPerIteration);
  const auto start = std::chrono::steady_clock::now();
  TRY(Workload(*tpm, iterations));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Sample s;
  const double n = iterations * kCommandsPerIteration;
  s.commands_per_s = n / seconds;
  if (sim) {
    const double tpm_commands = static_cast<double>(sim->commands() - commands_before);
    s.frames_per_command = static_cast<double>(sim->frames_total() - frames_before) / tpm_commands;
    s.wait_states_per_command = static_cast<double>(sim->wait_states_inserted() - waits_before) / tpm_commands;
  }
  if (bridge) s.usb_transfers_per_command = static_cast<double>(bridge->transfers().size()) / n;
  return s;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5, commands = 500;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--runs" || a == "--commands") && i + 1 < argc) {
      (a == "--runs" ? runs : commands) = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: bus_bench [--runs R] [--commands N]\n");
      return 2;
    }
  }
  if (runs < 1 || commands < kCommandsPerIteration) {
    std::fprintf(stderr, "bus_bench: --runs >= 1 and --commands >= %d\n", kCommandsPerIteration);
    return 2;
  }
  char tmpl[] = "/tmp/tpmlab-bus-bench-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  const fs::path root = tmpl;
  const std::vector<std::string> buses = {"socket", "tis", "tis-wait", "ftdi-0", "ftdi"};
  std::map<std::string, std::vector<Sample>> samples;
  for (int r = 0; r < runs; ++r) {
    for (const auto& bus : buses) {
      auto s = Measure(bus, root / (bus + "-" + std::to_string(r)), commands);
      if (!s.ok()) {
        std::fprintf(stderr, "bus_bench: %s: %s\n", bus.c_str(), s.status().ToString().c_str());
        fs::remove_all(root);
        return 1;
      }
      samples[bus].push_back(*s);
    }
  }
  fs::remove_all(root);
  std::vector<double> socket_rates;
  for (const auto& s : samples["socket"]) socket_rates.push_back(s.commands_per_s);
  const double socket_median = Median(socket_rates);
  std::printf("bus_bench runs=%d commands=%d\n", runs, commands);
  for (const auto& bus : buses) {
    std::vector<double> rates;
    for (const auto& s : samples[bus]) rates.push_back(s.commands_per_s);
    const Sample& last = samples[bus].back();
    std::printf("%-9s median %8.0f cmd/s (%.0f-%.0f)  ratio %.2f", bus.c_str(), Median(rates),
                *std::min_element(rates.begin(), rates.end()), *std::max_element(rates.begin(), rates.end()),
                Median(rates) / socket_median);
    if (bus != "socket") {
      std::printf("  frames/cmd %.1f  wait states/cmd %.1f", last.frames_per_command, last.wait_states_per_command);
    }
    if (bus.rfind("ftdi", 0) == 0) std::printf("  usb transfers/cmd %.1f", last.usb_transfers_per_command);
    std::printf("\n");
  }
  return 0;
}
