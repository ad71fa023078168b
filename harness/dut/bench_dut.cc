#include "harness/bench_dut.h"

#include <cstdio>
#include <filesystem>
#include <regex>

#include "drivers/bmc_power.h"
#include "drivers/device_transport.h"
#include "drivers/ftdi_spi.h"
#include "drivers/operator_power.h"
#include "drivers/tis_spi.h"
#include "drivers/tpm2go_spi.h"
#include "drivers/usb_power.h"
#include "harness/machine_board.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;

// TIS over a USB-SPI bridge that can disappear: when the chip's power
// returns the bridge is opened again (a hub port cut re-enumerates it; a
// relay on the TPM's rail leaves it, but it is re-initialised either way)
// and the TIS engine re-probes DID_VID and re-takes its locality.
class BridgeTisTransport final : public Transport {
 public:
  // Opens the bridge; `again` after a power cut (wait for it to re-appear).
  using OpenBus = std::function<Result<std::unique_ptr<SpiBus>>(bool again)>;

  /// `wait`: the power was just switched on, so the bridge may still be enumerating.
  static Result<std::unique_ptr<BridgeTisTransport>> Open(OpenBus open_bus, TisSpiConfig tis, bool wait) {
    std::unique_ptr<BridgeTisTransport> t(new BridgeTisTransport(std::move(open_bus), tis));
    TRY(t->Connect(wait));
    return t;
  }
  ~BridgeTisTransport() override {
    tis_.reset();  // releases the locality while the bus is still there
    bus_.reset();
  }

  Status Reconnect() { return Connect(true); }
  const TisSpiTransport::ChipId& chip() const { return tis_->chip(); }

 private:
  BridgeTisTransport(OpenBus open_bus, TisSpiConfig tis) : open_bus_(std::move(open_bus)), tis_config_(tis) {}

  Status Connect(bool again) {
    tis_.reset();
    bus_.reset();
    auto bus = open_bus_(again);
    if (!bus.ok()) return Remember(bus.status());
    bus_ = std::move(*bus);
    auto tis = TisSpiTransport::Open(*bus_, tis_config_);
    if (!tis.ok()) {
      return Remember(Status::Error(Layer::kTransport, bus_->info().description + ": " + tis.status().message()));
    }
    tis_ = std::move(*tis);
    tis_->set_command_timeout(command_timeout());
    return Status::Ok();
  }
  Status Remember(Status failure) {
    connect_error_ = failure;
    return failure;
  }
  // Every command after a failed reconnect says why it failed.
  Status Gone() const {
    return Status::Error(Layer::kTransport, "the TPM is not reachable since its power returned: " +
                                                connect_error_.message());
  }

  Status DoTransmit(ByteView command) override { return tis_ ? tis_->Transmit(command) : Gone(); }
  Result<Bytes> DoReceive(Duration timeout) override {
    if (!tis_) return Gone();
    return tis_->Receive(timeout);
  }
  Status DoCancel() override { return tis_ ? tis_->Cancel() : Status::Ok(); }
  Status DoSetLocality(uint8_t locality) override { return tis_ ? tis_->SetLocality(locality) : Gone(); }
  Info DoInfo() const override {
    return {"tis-spi", tis_ ? tis_->info().description : bus_ ? bus_->info().description : "disconnected"};
  }
  void DoAbandonResponse() override {
    if (tis_) tis_->AbandonResponse();
  }

  OpenBus open_bus_;
  TisSpiConfig tis_config_;
  std::unique_ptr<SpiBus> bus_;
  std::unique_ptr<TisSpiTransport> tis_;
  Status connect_error_;
};

std::string RegexEscape(const std::string& s) {
  static const std::string special = R"(\^$.|?*+()[]{})";
  std::string out;
  for (char c : s) {
    if (special.find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

std::string BenchLabel(const Bench& bench) { return "bench '" + bench.name + "' (" + bench.file + ")"; }

Result<std::unique_ptr<PowerControl>> OpenPower(const Bench& bench, const BenchHardware& hw, Clock& clock,
                                                std::vector<std::string>& warnings) {
  UsbContext* usb = hw.usb;
  const BenchPower& p = bench.power;
  PowerSequence sequence;
  sequence.off_time = std::chrono::milliseconds(p.off_ms ? p.off_ms : 1000);
  sequence.clock = &clock;
  switch (p.kind) {
    case PowerKind::kEmulated:
    case PowerKind::kNone:
    case PowerKind::kBoard:  // the board powers itself (QemuBoard)
      return std::unique_ptr<PowerControl>();
    case PowerKind::kUsbRelay: {
      const UsbMatch match = UsbMatchFor(*p.usb);
      if (p.relay_type == "dcttech") {
        HidRelayConfig c;
        c.match = match;
        c.channel = static_cast<int>(p.channel);
        c.sequence = sequence;
        TRY_ASSIGN(auto relay, HidRelayPower::Open(*usb, c));
        return std::unique_ptr<PowerControl>(std::move(relay));
      }
      LcusRelayConfig c;
      c.match = match;
      c.channel = static_cast<int>(p.channel);
      c.sequence = sequence;
      if (p.usb->vid == lcus::kSerialVendorId) {  // a CH340: the board is a tty
        TRY_ASSIGN(std::string tty, FindUsbSerialTty(*usb, match, hw.sysfs_usb_devices.string()));
        TRY_ASSIGN(auto port, OpenSerialPort(tty));
        TRY_ASSIGN(auto relay, LcusRelayPower::OpenSerial(std::move(port), c));
        return std::unique_ptr<PowerControl>(std::move(relay));
      }
      TRY_ASSIGN(auto relay, LcusRelayPower::Open(*usb, c));
      return std::unique_ptr<PowerControl>(std::move(relay));
    }
    case PowerKind::kUsbHubPort: {
      HubPortConfig c;
      c.hub.path = p.hub;
      c.port = static_cast<int>(p.port);
      c.sysfs_usb_devices = hw.sysfs_usb_devices;
      c.sequence = sequence;
      TRY_ASSIGN(auto hub, HubPortPower::Open(*usb, c));
      warnings.insert(warnings.end(), hub->warnings().begin(), hub->warnings().end());
      // A USB3 hub is two hubs; only the half at `hub` is switched, and the
      // other may keep VBUS on (uhubctl switches both).
      if (auto devices = usb->Enumerate(); devices.ok()) {
        for (const auto& d : *devices) {
          if (d.Path() == p.hub && d.bcd_usb >= 0x0300) {
            warnings.push_back("hub " + p.hub + " is a USB3 hub: its USB2 companion is not switched, so the port "
                               "may keep power; check with a load");
          }
        }
      }
      return std::unique_ptr<PowerControl>(std::move(hub));
    }
    case PowerKind::kCommand: {
      CommandPowerConfig c;
      c.on = {"/bin/sh", "-c", p.on_command};
      c.off = {"/bin/sh", "-c", p.off_command};
      c.bench_allows_commands = true;  // naming the commands in the bench file is the opt-in
      c.sequence = sequence;
      TRY_ASSIGN(auto command, CommandPower::Create(c));
      return std::unique_ptr<PowerControl>(std::move(command));
    }
    case PowerKind::kIpmi: {
      const BenchBmc& b = p.bmc;
      IpmiPowerConfig c;
      c.host = b.host;
      c.port = b.port;
      c.user = b.user;
      c.password = BmcSecret{b.password_file, b.password_env};
      c.cipher = static_cast<int>(b.cipher);
      c.interface = b.interface;
      c.timeout = std::chrono::seconds(b.timeout_s);
      c.off_time = std::chrono::duration_cast<std::chrono::milliseconds>(sequence.off_time);
      c.clock = &clock;
      TRY_ASSIGN(auto ipmi, IpmiPower::Create(c));
      return std::unique_ptr<PowerControl>(std::move(ipmi));
    }
    case PowerKind::kRedfish: {
      const BenchBmc& b = p.bmc;
      RedfishPowerConfig c;
      c.url = b.url;
      c.system = b.system;
      c.user = b.user;
      c.password = BmcSecret{b.password_file, b.password_env};
      c.verify_tls = b.verify_tls;
      c.ca_file = b.ca_file;
      c.timeout = std::chrono::seconds(b.timeout_s);
      c.off_time = std::chrono::duration_cast<std::chrono::milliseconds>(sequence.off_time);
      c.clock = &clock;
      TRY_ASSIGN(auto redfish, RedfishPower::Create(c));
      if (!b.verify_tls) {
        warnings.push_back("Redfish service " + b.url + ": its TLS certificate is not verified (verify_tls: false)");
      }
      return std::unique_ptr<PowerControl>(std::move(redfish));
    }
    case PowerKind::kManual: {
      TRY_ASSIGN(auto manual, ManualPower::OnTerminal(bench.name));
      return std::unique_ptr<PowerControl>(std::move(manual));
    }
  }
  return Status::Error(Layer::kHarness, "unknown power kind");
}

// Opens the bench's bridge: found by the bench's VID:PID and serial, waited
// for after a power cut, then set up as its kind of SPI bus.
BridgeTisTransport::OpenBus OpenBusFor(const Bench& bench, UsbContext& usb, Clock& clock,
                                       std::chrono::milliseconds wait) {
  using MakeBus = std::function<Result<std::unique_ptr<SpiBus>>(std::unique_ptr<UsbDevice>)>;
  const BenchDut& d = bench.dut;
  MakeBus make;
  if (d.transport == DutTransportKind::kTisSpiFtdi) {
    FtdiSpiConfig c;
    if (d.spi_clock_hz) c.hz = d.spi_clock_hz;
    make = [c](std::unique_ptr<UsbDevice> device) -> Result<std::unique_ptr<SpiBus>> {
      TRY_ASSIGN(auto bus, FtdiMpsseSpiBus::Open(std::move(device), c));
      return std::unique_ptr<SpiBus>(std::move(bus));
    };
  } else {
    Tpm2GoSpiConfig c;
    c.cs_gpio = d.cs_gpio;
    make = [c](std::unique_ptr<UsbDevice> device) -> Result<std::unique_ptr<SpiBus>> {
      TRY_ASSIGN(auto bus, Tpm2GoSpiBus::Open(std::move(device), c));
      return std::unique_ptr<SpiBus>(std::move(bus));
    };
  }
  const UsbMatch match = UsbMatchFor(*d.usb);
  return [&usb, &clock, match, make, wait](bool again) -> Result<std::unique_ptr<SpiBus>> {
    auto device = again ? usb.WaitAndOpen(match, wait, clock) : usb.Open(match);
    if (!device.ok()) return device.status();
    return make(std::move(*device));
  };
}

}  // namespace

UsbMatch UsbMatchFor(const UsbSelector& selector) {
  UsbMatch m;
  m.vendor_id = selector.vid;
  if (selector.pid) m.product_ids = {selector.pid};
  if (!selector.serial.empty()) {
    const std::string serial = selector.serial_is_pattern ? "(?:" + selector.serial + ")" : RegexEscape(selector.serial);
    m.serial_pattern = ".*" + serial + ".*";
  }
  return m;
}

void ApplyEmulatedBench(const Bench& bench, EmulatedDutConfig& config) {
  if (bench.dut.transport != DutTransportKind::kTisSpiSim) return;
  config.bus = EmulatedBus::kTisSpi;
  config.tis.wait_states = static_cast<int>(bench.dut.wait_states);
  if (bench.dut.burst_count) config.tis.burst_count = static_cast<uint16_t>(bench.dut.burst_count);
}

Result<std::unique_ptr<Dut>> OpenBenchDut(const Bench& bench, const BenchDutOptions& options, BenchHardware hw) {
  if (bench.emulated()) {
    return Status::Error(Layer::kScenario, BenchLabel(bench) + " is emulated: launch it with Dut::LaunchEmulated");
  }
  Clock& clock = hw.clock ? *hw.clock : DefaultClock();
  HardwareDutConfig config;
  config.name = options.name;
  config.kind = DutTransportName(bench.dut.transport);
  config.command_timeout = options.command_timeout;
  config.command_timeouts = options.command_timeouts;
  config.fault_seed = options.fault_seed;

  // libusb only when the bench has a USB part; it outlives the DUT's parts.
  std::shared_ptr<UsbContext> owned_usb;
  if (bench.uses_usb() && !hw.usb) {
    auto opened = OpenLibusbContext();
    if (!opened.ok()) return Status::Error(Layer::kTransport, BenchLabel(bench) + ": " + opened.status().message());
    owned_usb = std::move(*opened);
    hw.usb = owned_usb.get();
    config.keep_alive = owned_usb;
  }

  auto power = OpenPower(bench, hw, clock, config.warnings);
  if (!power.ok()) {
    return Status::Error(power.status().layer(), BenchLabel(bench) + ": power: " + power.status().message());
  }
  config.power = std::move(*power);
  if (!config.power) config.no_power_reason = BenchLabel(bench) + " has power: none";

  if (bench.is_board()) {
    TRY_ASSIGN(OpenedBoard board, OpenQemuBoard(bench, options.board));
    config.transport = std::move(board.transport);
    config.board = std::move(board.board);
    config.platform_started = true;  // OVMF sends Startup at every boot
    config.no_power_reason.clear();
    DutBusInfo info;
    info.bus = EmulatedBus::kHardware;
    info.description = "tpmlab-agent on a QEMU " + bench.board->machine + " board (" + bench.board->tpm_interface + ")";
    config.bus_info = info;
    return Dut::OpenHardware(std::move(config));
  }

  if (bench.is_machine()) {
    // The machine's switch is the machine's: it cuts the whole platform, and
    // the board decides when (harness/machine_board.h).
    TRY_ASSIGN(OpenedBoard machine, OpenMachineBoard(bench, options.board, std::move(config.power)));
    config.transport = std::move(machine.transport);
    config.board = std::move(machine.board);
    config.platform_started = true;  // its own firmware sends Startup at every boot
    config.no_power_reason.clear();
    DutBusInfo info;
    info.bus = EmulatedBus::kHardware;
    info.description = "tpmlab-agent on " + bench.machine->LinkDescription();
    config.bus_info = info;
    return Dut::OpenHardware(std::move(config));
  }

  if (bench.dut.transport == DutTransportKind::kDevice) {
    auto device = hw.open_device ? hw.open_device(bench.dut.path) : [&]() -> Result<std::unique_ptr<Transport>> {
      TRY_ASSIGN(auto t, DeviceTransport::Open(bench.dut.path));
      return std::unique_ptr<Transport>(std::move(t));
    }();
    if (!device.ok()) return Status::Error(Layer::kTransport, BenchLabel(bench) + ": " + device.status().message());
    config.transport = std::move(*device);
    config.platform_started = true;
    config.no_power_reason = BenchLabel(bench) + " is this machine's own TPM (" + bench.dut.path +
                             "), whose power tpmlab cannot switch";
    DutBusInfo info;
    info.bus = EmulatedBus::kHardware;
    info.description = bench.dut.path;
    config.bus_info = info;
    return Dut::OpenHardware(std::move(config));
  }

  // A TPM on a USB-SPI bridge: powered first, so the TIS probe finds it (an
  // operator is not asked: the boot's power cycle will ask them).
  const bool switched_on = config.power && bench.power.kind != PowerKind::kManual;
  if (switched_on) {
    Status on = config.power->On();
    if (!on.ok()) return Status::Error(on.layer(), BenchLabel(bench) + ": power on: " + on.message());
  }
  TisSpiConfig tis;
  tis.clock = &clock;
  auto bridge =
      BridgeTisTransport::Open(OpenBusFor(bench, *hw.usb, clock, hw.reenumerate_timeout), tis, switched_on);
  if (!bridge.ok()) return Status::Error(bridge.status().layer(), BenchLabel(bench) + ": " + bridge.status().message());
  BridgeTisTransport* raw = bridge->get();
  DutBusInfo info;
  info.bus = EmulatedBus::kHardware;
  info.vendor_id = raw->chip().vendor_id;
  info.device_id = raw->chip().device_id;
  info.revision = raw->chip().revision;
  info.description = raw->info().description;
  config.bus_info = info;
  config.after_power_on = [raw] { return raw->Reconnect(); };
  if (bench.dut.transport == DutTransportKind::kTisSpiTpm2go && !bench.dut.cs_gpio) {
    config.warnings.push_back("TPM2Go: chip select is framed per transfer by the bridge, so SPI wait states are "
                              "not held; a TPM that inserts them (ST33) may fail");
  }
  config.transport = std::move(*bridge);
  return Dut::OpenHardware(std::move(config));
}

}  // namespace tpmlab
