// Scenarios on bench files' DUTs, with no hardware attached:
// - a TPM module on an FTDI FT232H bridge, on port 2 of a hub with per-port
//   power. The bridge speaks MPSSE to a simulated SPI TPM (wait states) in
//   front of a swtpm; cutting the port stops the TPM and unplugs the bridge,
//   restoring it powers the TPM and the bridge re-enumerates. The seeded
//   power-cycle job runs there and over the socket from the same chip, and
//   step for step they agree.
// - a TPM2Go stick (chip select per transfer) whose TPM is powered through a
//   dcttech HID relay: an attestation across power cycles passes.
// - /dev/tpmrm0, as a SOCK_SEQPACKET pair in front of a swtpm that a
//   "platform" started and measured, its log in a file: attest.yaml passes
//   there as on the embedded default and the simulated SPI TPM; a power
//   cycle is refused with the reason; a clear is refused before anything runs.
#define BOOST_TEST_MODULE bench_run
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "drivers/device_transport.h"
#include "drivers/fake_usb.h"
#include "drivers/swtpm.h"
#include "emulated.h"
#include "harness/bundle.h"
#include "harness/runner.h"
#include "harness/scenario_yaml.h"
#include "platform.h"
#include "usb_simulators.h"
#include "usb_transcript.h"

namespace tpmlab::testing {
namespace {

using nlohmann::json;

constexpr int kCycles = 12;

Scenario PowerCycles() {
  const std::string text = R"(
name: bench-power-cycles
seed: 20261128
platform:
  banks: [sha1, sha256]
  firmware: )" TPMLAB_SOURCE_DIR R"(/scenarios/firmware/baseline.yaml
steps:
  - boot
  - enroll
  - repeat:
      count: )" + std::to_string(kCycles) + R"(
      steps:
        - power_cycle:
            mix: {reset: 2, restart: 1, resume: 1, power-loss: 2, hard-loss: 1}
)";
  return Require(LoadScenarioText(text, "bench-power-cycles.yaml"));
}

Bench BenchFrom(const fs::path& dir, const std::string& text) {
  const fs::path file = dir / "bench.yaml";
  std::ofstream(file) << text;
  return Require(LoadBench(file));
}

struct Ran {
  RunResult result;
  json run;
};

Ran RunWith(const Scenario& scenario, const fs::path& out, RunOptions o) {
  o.out_dir = out;
  o.database = out / "results.db";
  Ran r{Require(RunScenario(scenario, o)), {}};
  std::ifstream in(out / "run.json");
  r.run = json::parse(in);
  return r;
}

// The module on the bridge: a swtpm behind a simulated SPI TPM, behind an
// FT232H on port 2 of hub 1-1, whose port power is the module's.
struct BridgedModule {
  explicit BridgedModule(TisSimulator::Options chip = WaitingChip()) {
    root = MakeTempDir("bridge");
    SwtpmConfig config;
    config.state_dir = root / "chip";
    fs::create_directories(config.state_dir);
    fs::copy_file(ProvisionedTemplate() / "tpm2-00.permall", config.state_dir / "tpm2-00.permall");
    swtpm = Require(SwtpmProcess::Launch(config));
    transport = std::make_unique<SwtpmTransport>(*swtpm);
    transport->set_command_timeout(std::chrono::milliseconds(20000));
    power = std::make_unique<SwtpmPower>(*swtpm);
    sim = std::make_unique<TisSimulator>(*transport, chip);

    UsbDeviceInfo hub_info = UsbDeviceAt(0x05E3, 0x0608, 1, {1});
    hub_info.device_class = 9;
    hub = usb.Add(hub_info);
    bridge = usb.Add(UsbDeviceAt(0x0403, 0x6014, 1, {1, 2}, "FT6XYZ01"));
    bridge->SetResponder(MpsseToSimulator(*sim));
    hub_model = std::make_unique<SimulatedHub>(*hub, 4, [this](int port, bool on) {
      if (port != 2) return;
      if (on) {
        Status s = power->On();
        BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
        sim->PowerOn();
      } else {
        (void)power->Off(PowerCut::kSoft);
        usb.Unplug(bridge, 1);  // back one enumeration after the power returns
      }
    });
  }
  // A chip that inserts 0..2 wait states per frame and offers 32-byte bursts.
  static TisSimulator::Options WaitingChip() {
    TisSimulator::Options chip;
    chip.wait_states_min = 0;
    chip.wait_states_max = 2;
    chip.burst_count = 32;
    return chip;
  }
  ~BridgedModule() {
    swtpm.reset();
    std::error_code ignored;
    fs::remove_all(root, ignored);
  }

  fs::path root;
  std::unique_ptr<SwtpmProcess> swtpm;
  std::unique_ptr<SwtpmTransport> transport;
  std::unique_ptr<SwtpmPower> power;
  std::unique_ptr<TisSimulator> sim;
  FakeUsbContext usb;
  std::shared_ptr<FakeUsbDevice> hub, bridge;
  std::unique_ptr<SimulatedHub> hub_model;
};

// The step's alarm codes, sorted and joined, so a failed comparison prints them.
std::string AlarmCodes(const StepResult& s, const std::string& except = "") {
  std::set<std::string> codes;
  for (const Alarm& a : s.alarms) {
    if (a.code != except) codes.insert(a.code);
  }
  std::string joined;
  for (const auto& code : codes) joined += (joined.empty() ? "" : ",") + code;
  return joined;
}

BOOST_AUTO_TEST_CASE(power_cycles_on_an_ftdi_module_behind_a_hub_port_match_the_socket) {
  BridgedModule module;
  const Bench bench = BenchFrom(module.root, R"(name: ftdi-hub
dut:
  transport: tis-spi-ftdi
  usb: {serial: FT6XYZ01}
power:
  kind: usb-hub-port
  hub: "1-1"
  port: 2
  off_ms: 5
allow: {clear: true}
)");
  RunOptions on_bench;
  on_bench.bench = bench;
  on_bench.hardware.usb = &module.usb;
  on_bench.hardware.sysfs_usb_devices = "";
  const Ran hw = RunWith(PowerCycles(), module.root / "run-bench", on_bench);
  RunOptions on_socket;
  on_socket.initial_state = ProvisionedTemplate();  // the same manufactured chip
  const fs::path socket_dir = MakeTempDir("bench-socket");
  const Ran socket = RunWith(PowerCycles(), socket_dir, on_socket);

  BOOST_TEST(RunStatusName(hw.result.status) == "passed", hw.result.error);
  BOOST_TEST(RunStatusName(socket.result.status) == "passed", socket.result.error);
  BOOST_REQUIRE_EQUAL(hw.result.steps.size(), static_cast<size_t>(kCycles + 2));
  BOOST_REQUIRE_EQUAL(socket.result.steps.size(), hw.result.steps.size());
  std::set<std::string> kinds;
  for (size_t i = 0; i < hw.result.steps.size(); ++i) {
    const StepResult& a = socket.result.steps[i];
    const StepResult& b = hw.result.steps[i];
    BOOST_TEST_CONTEXT("step " << i << " (" << a.action << " " << a.kind << ")") {
      BOOST_TEST(a.kind == b.kind);
      BOOST_TEST(b.status == "passed", b.error);
      // CLOCK_NOT_SAFE and safe depend on time, not the bus: the slower run's
      // clock may cross an NV save (every 4096 ms) the faster one does not.
      // Each run's own "safe" check (status passed) judges it.
      BOOST_TEST(AlarmCodes(a, "CLOCK_NOT_SAFE") == AlarmCodes(b, "CLOCK_NOT_SAFE"));
      BOOST_REQUIRE(a.snapshot.has_value() == b.snapshot.has_value());
      if (!a.kind.empty()) kinds.insert(a.kind);
      if (a.snapshot) {
        BOOST_TEST((a.snapshot->pcrs == b.snapshot->pcrs));
        BOOST_TEST(ToHex(a.snapshot->ek.name) == ToHex(b.snapshot->ek.name));
        BOOST_TEST(a.snapshot->clock().reset_count == b.snapshot->clock().reset_count);
        BOOST_TEST(a.snapshot->clock().restart_count == b.snapshot->clock().restart_count);
      }
    }
  }
  BOOST_TEST(kinds.size() >= 4u);

  // Every cycle (and the boot) switched the port off and on, and the bridge
  // was opened again each time it came back.
  BOOST_TEST(module.hub_model->switches() == 2 * (kCycles + 1));
  BOOST_TEST(module.usb.opens() >= kCycles + 2);
  BOOST_TEST(module.sim->commands() > 100u);
  BOOST_TEST(module.sim->wait_states_inserted() > 0u);
  BOOST_TEST(module.sim->violations().empty());

  const json& dut = hw.run["dut"];
  BOOST_TEST(dut["kind"] == "tis-spi-ftdi");
  BOOST_TEST(dut["bus"] == "hardware");
  BOOST_TEST(dut["power"] == "usb-hub-port");
  BOOST_TEST(dut["tis"]["vid_did_rid"] == "1014:0001:01");
  BOOST_TEST(dut["bench"] == "ftdi-hub");
  BOOST_TEST(hw.run["inputs"]["bench"] == "inputs/bench.yaml");
  BOOST_TEST(fs::exists(module.root / "run-bench" / "inputs" / "bench.yaml"));
  fs::remove_all(socket_dir);
}

// A TPM2Go stick (CS per transfer, so no wait states) whose TPM's supply runs
// through relay 1 of a dcttech board: the bridge stays on the bus while the
// TPM loses power. attest.yaml and power cycles run; the relay switched.
BOOST_AUTO_TEST_CASE(a_tpm2go_behind_a_relay_attests_and_power_cycles) {
  BridgedModule module(TisSimulator::Options{});  // no wait states: the stick cannot hold CS
  auto tpm2go = module.usb.Add(UsbDeviceAt(0x365D, 0x1337, 2, {3}, "LTT2GO-0042"));
  tpm2go->SetResponder(Tpm2GoFramesToSimulator(*module.sim));
  auto relay_device = module.usb.Add(UsbDeviceAt(0x16C0, 0x05DF, 2, {4}));
  SimulatedHidRelay relay(*relay_device, [&module](int channel, bool energised) {
    if (channel != 1) return;
    if (energised) {
      Status s = module.power->On();
      BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
      module.sim->PowerOn();
    } else {
      (void)module.power->Off(PowerCut::kSoft);
    }
  });
  const Bench bench = BenchFrom(module.root, R"(name: tpm2go-relay
dut:
  transport: tis-spi-tpm2go
  usb: {serial: "^LTT2GO-00"}
power: {kind: usb-relay, relay: dcttech, channel: 1, off_ms: 5}
)");
  RunOptions o;
  o.bench = bench;
  o.hardware.usb = &module.usb;
  o.hardware.sysfs_usb_devices = "";
  const Scenario s = Require(LoadScenarioText(R"(name: relay
firmware: baseline
unexpected_alarms: fail
steps:
  - boot
  - enroll
  - repeat: {count: 3, steps: [{power_cycle: reset}, {expect: {}}]}
  - power_cycle: power-loss
  - expect: {allow_after_power_loss: [CLOCK_NOT_SAFE]}
)", TPMLAB_SOURCE_DIR "/scenarios/relay.yaml"));
  const Ran r = RunWith(s, module.root / "run", o);
  BOOST_TEST(RunStatusName(r.result.status) == "passed", r.result.error);
  BOOST_TEST(r.result.steps.size() == 10u);
  // Power on at open, then off and on for the boot and each of four cycles.
  BOOST_TEST(relay.switches() == 1 + 2 * 5);
  BOOST_TEST(module.sim->commands() > 50u);
  BOOST_TEST(module.sim->violations().empty());
  BOOST_TEST(r.run["dut"]["kind"] == "tis-spi-tpm2go");
  bool warned = false;
  for (const auto& w : r.run["dut"]["warnings"]) warned |= w.get<std::string>().find("wait states") != std::string::npos;
  BOOST_TEST(warned);
}

// The same module with no power switch: the boot needs the chip fresh, and
// a power cycle is refused before its Shutdown, naming the bench.
BOOST_AUTO_TEST_CASE(a_bridge_without_a_power_switch_refuses_power_cycles) {
  BridgedModule module;
  const Bench bench = BenchFrom(module.root, "name: bare\ndut: {transport: tis-spi-ftdi}\n");
  RunOptions o;
  o.bench = bench;
  o.hardware.usb = &module.usb;
  o.hardware.sysfs_usb_devices = "";
  o.out_dir = module.root / "run";
  o.database = module.root / "run" / "results.db";
  // A scenario with a power cycle is refused before anything runs.
  const Scenario cycling = Require(LoadScenarioText("name: x\nfirmware: baseline\nsteps:\n  - boot\n"
                                                    "  - power_cycle: reset\n",
                                                    TPMLAB_SOURCE_DIR "/scenarios/x.yaml"));
  auto refused = Session::Open(cycling, o);
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST(refused.status().message().find("x.yaml:5:5: power_cycle: a power cycle needs a power switch") !=
                 std::string::npos,
             refused.status().message());
  BOOST_TEST(module.sim->commands() == 0u);

  // Driven a step at a time (Python), the DUT refuses the cycle before its Shutdown.
  const Scenario boot = Require(LoadScenarioText("name: x\nfirmware: baseline\nsteps:\n  - boot\n",
                                                 TPMLAB_SOURCE_DIR "/scenarios/b.yaml"));
  auto session = Session::Open(boot, o);
  BOOST_REQUIRE_MESSAGE(session.ok(), session.status().ToString());
  const auto booted = (*session)->Execute(boot.steps[0]);
  BOOST_REQUIRE_EQUAL(booted.size(), 1u);
  BOOST_TEST(booted[0].status == "passed", booted[0].error);
  const auto cycled = (*session)->Execute(cycling.steps[1]);
  BOOST_REQUIRE_EQUAL(cycled.size(), 1u);
  BOOST_TEST(cycled[0].error.find("a reset cycle needs a power switch, and bench 'bare'") != std::string::npos,
             cycled[0].error);
  // The chip is still started: a second boot cannot reset it and says why.
  const auto again = (*session)->Execute(boot.steps[0]);
  BOOST_REQUIRE_EQUAL(again.size(), 1u);
  BOOST_TEST(again[0].error.find("TPM_RC_INITIALIZE") != std::string::npos, again[0].error);
  BOOST_TEST(again[0].error.find("switch it off and on by hand") != std::string::npos, again[0].error);
}

// /dev/tpmrm0 in a test: one write per command, one read per response, over
// a SOCK_SEQPACKET pair whose far end forwards to the platform's swtpm.
struct SimulatedTpmDevice {
  explicit SimulatedTpmDevice(Transport& tpm) {
    int fds[2];
    BOOST_REQUIRE_EQUAL(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds), 0);
    host_fd = fds[0];
    server = std::thread([&tpm, fd = fds[1]] {
      uint8_t buf[kTpmMaxMessage];
      while (true) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        auto response = tpm.Exchange(ByteView(buf, static_cast<size_t>(n)));
        if (!response.ok()) break;
        if (::send(fd, response->data(), response->size(), MSG_NOSIGNAL) < 0) break;
      }
      ::close(fd);
    });
  }
  ~SimulatedTpmDevice() {
    if (host_fd >= 0) ::close(host_fd);
    server.join();
  }
  BenchHardware Hardware() {
    BenchHardware hw;
    hw.open_device = [this](const std::string& path) -> Result<std::unique_ptr<Transport>> {
      const int fd = host_fd;
      host_fd = -1;  // the transport owns it now
      return std::unique_ptr<Transport>(DeviceTransport::FromFd(fd, path));
    };
    return hw;
  }

  int host_fd = -1;
  std::thread server;
};

BOOST_AUTO_TEST_CASE(attest_runs_unchanged_on_three_benches) {
  const Scenario attest = Require(LoadScenarioFile(TPMLAB_SOURCE_DIR "/scenarios/attest.yaml"));
  const fs::path dir = MakeTempDir("bench-attest");

  // The embedded default and the simulated SPI TPM.
  const Ran plain = RunWith(attest, dir / "default", {});
  RunOptions sim;
  sim.bench = Require(LoadBench(TPMLAB_SOURCE_DIR "/hw/benches/simulated-spi.yaml"));
  const Ran spi = RunWith(attest, dir / "spi", sim);

  // This machine's TPM: booted and measured by the platform, its log in a file.
  EmulatedPlatform platform;
  const fs::path log = dir / "binary_bios_measurements";
  {
    const Bytes bytes = WriteEventLog(platform.firmware.log());
    std::ofstream(log, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                static_cast<std::streamsize>(bytes.size()));
  }
  const Bench host = BenchFrom(dir, "name: host\ndut: {transport: device, path: /dev/tpmrm0}\nboot_log: {source: file, path: " +
                                        log.string() + "}\n");
  const auto handles_before = Require(platform.dut.tpm().PersistentHandles());
  json device_run;
  {
    SimulatedTpmDevice device(platform.dut->trace());
    RunOptions o;
    o.bench = host;
    o.hardware = device.Hardware();
    const Ran r = RunWith(attest, dir / "device", o);
    device_run = r.run;
    BOOST_TEST(RunStatusName(r.result.status) == "passed", r.result.error);
    BOOST_REQUIRE(!r.result.steps.empty());
    BOOST_TEST(r.result.steps[0].checks.at(0).detail.find("this machine's platform") != std::string::npos);
    // What the platform measured is what the device run quoted, and the log replays.
    BOOST_REQUIRE_EQUAL(r.result.steps.size(), 4u);
    const StepResult& quoted = r.result.steps[2];
    BOOST_REQUIRE(quoted.snapshot.has_value());
    BOOST_TEST((quoted.snapshot->pcrs == Require(platform.dut.tpm().ReadPcrs(kBanks))));
    bool replayed = false;
    for (const auto& c : quoted.checks) {
      if (c.name == "eventlog_replay") replayed = c.passed && c.detail.find("replay to the PCRs") != std::string::npos;
    }
    BOOST_TEST(replayed);
  }
  // Without allow.nv_write nothing was persisted: the AK and SRK were transient.
  const auto handles_after = Require(platform.dut.tpm().PersistentHandles());
  BOOST_TEST((handles_after == handles_before));
  BOOST_TEST(RunStatusName(plain.result.status) == "passed", plain.result.error);
  BOOST_TEST(RunStatusName(spi.result.status) == "passed", spi.result.error);
  BOOST_TEST(spi.run["dut"]["bus"] == "tis-spi");
  BOOST_TEST(device_run["dut"]["kind"] == "device");
  BOOST_TEST(device_run["dut"]["platform_started"] == true);
  BOOST_TEST(device_run["dut"]["boot_log"] == "file");
  // A run on a real chip has no emulator state; it is bundled without one.
  BOOST_TEST(!device_run["inputs"].contains("initial_state"));
  Status bundled = WriteBundle(dir / "device", dir / "device.tar.gz");
  BOOST_TEST(bundled.ok(), bundled.ToString());
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(a_device_dut_refuses_power_cycles_and_unallowed_steps) {
  const fs::path dir = MakeTempDir("bench-device");
  EmulatedPlatform platform;
  const Bench host = BenchFrom(dir, "name: host\ndut: {transport: device}\nboot_log: {source: file, path: /nonexistent/log}\n");

  // Refused before anything runs: every step the bench does not allow, where it is.
  {
    const Scenario clears = Require(LoadScenarioText(
        "name: c\nsteps:\n  - boot\n  - repeat: {count: 2, steps: [clear, change_eps]}\n", "clears.yaml"));
    RunOptions o;
    o.bench = host;
    o.out_dir = dir / "refused";
    o.database = dir / "refused" / "results.db";
    auto opened = Session::Open(clears, o);
    BOOST_REQUIRE(!opened.ok());
    const std::string m = opened.status().message();
    BOOST_TEST(m.find("clears.yaml:4:32: clear needs allow.clear") != std::string::npos, m);
    BOOST_TEST(m.find("change_eps needs allow.change_eps") != std::string::npos, m);
    BOOST_TEST(m.find(host.file) != std::string::npos, m);
  }
  // Driven a step at a time, a power cycle fails with the reason and the TPM
  // is untouched (no Shutdown went out), and a log that cannot be read fails
  // the replay check.
  SimulatedTpmDevice device(platform.dut->trace());
  RunOptions o;
  o.bench = host;
  o.hardware = device.Hardware();
  o.out_dir = dir / "cycle";
  o.database = dir / "cycle" / "results.db";
  const Scenario steps = Require(LoadScenarioText("name: p\nsteps:\n  - boot: {snapshot: false}\n  - snapshot\n", "p.yaml"));
  const Scenario cycle = Require(LoadScenarioText("name: p\nsteps:\n  - power_cycle: reset\n", "c.yaml"));
  auto session = Require(Session::Open(steps, o));
  BOOST_TEST(session->Execute(steps.steps[0]).at(0).status == "passed");
  const StepResult refused = session->Execute(cycle.steps[0]).at(0);
  BOOST_TEST(refused.status == "error");
  BOOST_TEST(refused.error.find("this machine's own TPM (/dev/tpmrm0)") != std::string::npos, refused.error);
  const StepResult snap = session->Execute(steps.steps[1]).at(0);
  BOOST_TEST(snap.error.empty(), snap.error);  // still started: no Shutdown went out
  bool log_check = false;
  for (const auto& c : snap.checks) {
    if (c.name == "eventlog_replay") log_check = !c.passed && c.detail.find("/nonexistent/log") != std::string::npos;
  }
  BOOST_TEST(log_check);
  session->Finish();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tpmlab::testing
