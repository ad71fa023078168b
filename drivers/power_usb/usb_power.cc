#include "drivers/usb_power.h"

#include <cstdio>
#include <fstream>

namespace tpmlab {
namespace {

std::string Hex(unsigned v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%0*x", digits, v);
  return buf;
}

Status CheckChannel(int channel, int max, const char* what) {
  if (channel < 1 || channel > max) {
    return Status::Error(Layer::kScenario, std::string(what) + " channel " +
                                               std::to_string(channel) + " (1.." +
                                               std::to_string(max) + ")");
  }
  return Status::Ok();
}

}  // namespace

// --- dcttech HID relay ---------------------------------------------------

Result<std::unique_ptr<HidRelayPower>> HidRelayPower::Open(UsbContext& usb, HidRelayConfig config) {
  TRY(CheckChannel(config.channel, 8, "HID relay"));
  std::unique_ptr<HidRelayPower> relay(new HidRelayPower(usb, std::move(config)));
  TRY(relay->Connect());
  return relay;
}

HidRelayPower::~HidRelayPower() = default;

Status HidRelayPower::Connect() {
  claim_.reset();
  device_.reset();
  TRY_ASSIGN(device_, usb_.Open(config_.match));
  Result<std::unique_ptr<ClaimedInterface>> claim = ClaimedInterface::Claim(*device_, 0);
  if (!claim.ok()) return claim.status().Wrap("HID relay");
  claim_ = std::move(claim).value();
  return Status::Ok();
}

Result<uint8_t> HidRelayPower::ReadState() {
  using namespace hid_relay;
  if (!device_) return Status::Error(Layer::kTransport, "HID relay: not connected");
  TRY_ASSIGN(Bytes report, device_->ControlIn(kGetReportType, kGetReport, kFeatureReport0, 0,
                                              kStateLength));
  if (report.size() < kStateLength) {
    return Status::Error(Layer::kTransport, "HID relay state report: " +
                                                std::to_string(report.size()) + " of 8 bytes");
  }
  return report[7];
}

Status HidRelayPower::SetOnce(bool energised) {
  using namespace hid_relay;
  if (!device_) return Status::Error(Layer::kTransport, "HID relay: not connected");
  const uint8_t report[] = {energised ? kOn : kOff, static_cast<uint8_t>(config_.channel)};
  TRY(device_->ControlOut(kSetReportType, kSetReport, kFeatureReport0, 0, report));
  if (!config_.verify) return Status::Ok();
  TRY_ASSIGN(uint8_t state, ReadState());
  const bool now = state & (1u << (config_.channel - 1));
  if (now != energised) {
    return Status::Error(Layer::kTransport,
                         "HID relay " + std::to_string(config_.channel) + " did not " +
                             (energised ? "close" : "open") + " (state bits " + Hex(state, 2) + ")");
  }
  return Status::Ok();
}

Status HidRelayPower::SetRelay(bool energised) {
  Status s = SetOnce(energised);
  if (s.ok()) return s;
  // Known failure: GET/SET_REPORT errors while still enumerated; re-open once.
  Status again = Connect();
  if (again.ok()) again = SetOnce(energised);
  if (again.ok()) return again;
  return again.Wrap("HID relay " + config_.match.Describe() + " (first attempt: " + s.message() +
                    ")");
}

Status HidRelayPower::DoOff(PowerCut) { return SetRelay(config_.inverted); }
Status HidRelayPower::DoOn() { return SetRelay(!config_.inverted); }

// --- lcus relay ----------------------------------------------------------

Bytes LcusRelayPower::Frame(int channel, bool energised) {
  const uint8_t n = static_cast<uint8_t>(channel);
  const uint8_t state = energised ? 1 : 0;
  return {0xA0, n, state, static_cast<uint8_t>(0xA0 + n + state)};
}

Result<std::unique_ptr<LcusRelayPower>> LcusRelayPower::Open(UsbContext& usb, LcusRelayConfig config) {
  TRY(CheckChannel(config.channel, 255, "lcus relay"));
  TRY_ASSIGN(std::unique_ptr<UsbDevice> device, usb.Open(config.match));
  std::unique_ptr<LcusRelayPower> relay(new LcusRelayPower(std::move(device), std::move(config)));
  Result<std::unique_ptr<ClaimedInterface>> claim =
      ClaimedInterface::Claim(*relay->device_, relay->config_.interface);
  if (!claim.ok()) return claim.status().Wrap("lcus relay");
  relay->claim_ = std::move(claim).value();
  return relay;
}

Result<std::unique_ptr<LcusRelayPower>> LcusRelayPower::OpenSerial(std::unique_ptr<SerialPort> port,
                                                                   LcusRelayConfig config) {
  TRY(CheckChannel(config.channel, 255, "lcus relay"));
  std::unique_ptr<LcusRelayPower> relay(new LcusRelayPower(nullptr, std::move(config)));
  relay->serial_ = std::move(port);
  return relay;
}

LcusRelayPower::~LcusRelayPower() { claim_.reset(); }

Status LcusRelayPower::SetRelay(bool energised) {
  const Bytes frame = Frame(config_.channel, energised);
  const std::string what = "lcus relay " + std::to_string(config_.channel);
  if (serial_) return serial_->Write(frame).Wrap(what + " on " + serial_->name());
  return device_->InterruptOut(config_.endpoint, frame).Wrap(what);
}

Status LcusRelayPower::DoOff(PowerCut) { return SetRelay(config_.inverted); }
Status LcusRelayPower::DoOn() { return SetRelay(!config_.inverted); }

// --- hub port power ------------------------------------------------------

Result<std::unique_ptr<HubPortPower>> HubPortPower::Open(UsbContext& usb, HubPortConfig config) {
  if (config.port < 1 || config.port > 255) {
    return Status::Error(Layer::kScenario, "hub port " + std::to_string(config.port));
  }
  std::unique_ptr<HubPortPower> power(new HubPortPower(std::move(config)));
  TRY(power->AddHub(usb, power->config_.hub));
  if (power->config_.companion) TRY(power->AddHub(usb, *power->config_.companion));
  return power;
}

Status HubPortPower::AddHub(UsbContext& usb, const UsbMatch& match) {
  using namespace hub;
  Hub h;
  TRY_ASSIGN(h.device, usb.Open(match));
  const UsbDeviceInfo& info = h.device->info();
  h.superspeed = info.bcd_usb >= 0x0300;
  const uint8_t type = h.superspeed ? kSsHubDescriptor : kHubDescriptor;
  TRY_ASSIGN(Bytes desc, h.device->ControlIn(kHubIn, kGetDescriptor,
                                             static_cast<uint16_t>(type << 8), 0, 12));
  if (desc.size() < 5) {
    return Status::Error(Layer::kTransport, "hub " + info.Describe() + ": hub descriptor of " +
                                                std::to_string(desc.size()) + " bytes");
  }
  const int ports = desc[2];
  const uint16_t characteristics = static_cast<uint16_t>(desc[3] | desc[4] << 8);
  if (config_.port > ports) {
    return Status::Error(Layer::kScenario, "hub " + info.Describe() + " has " +
                                               std::to_string(ports) + " ports, not port " +
                                               std::to_string(config_.port));
  }
  switch (characteristics & 0x3) {
    case 0:
      warnings_.push_back("hub " + info.Describe() +
                          " switches power ganged: port " + std::to_string(config_.port) +
                          " goes off and on with every other port of this hub");
      break;
    case 1:
      break;
    default:
      warnings_.push_back("hub " + info.Describe() +
                          " reports no power switching: port power requests may do nothing");
  }
  hubs_.push_back(std::move(h));
  return Status::Ok();
}

Result<uint16_t> HubPortPower::PortStatus(Hub& h) {
  TRY_ASSIGN(Bytes status, h.device->ControlIn(hub::kPortIn, hub::kGetStatus, 0,
                                               static_cast<uint16_t>(config_.port), 4));
  if (status.size() < 4) {
    return Status::Error(Layer::kTransport, "hub port status: " + std::to_string(status.size()) +
                                                " of 4 bytes");
  }
  return static_cast<uint16_t>(status[0] | status[1] << 8);
}

Result<bool> HubPortPower::IsPowered() {
  bool all = true;
  for (Hub& h : hubs_) {
    TRY_ASSIGN(uint16_t status, PortStatus(h));
    all = all && (status & (h.superspeed ? hub::kPowerBitUsb3 : hub::kPowerBitUsb2));
  }
  return all;
}

bool HubPortPower::WriteSysfsDisable(const Hub& h, bool on) {
  if (config_.sysfs_usb_devices.empty()) return false;
  const std::string hub_path = h.device->info().Path();
  const std::filesystem::path file = config_.sysfs_usb_devices / (hub_path + ":1.0") /
                                     (hub_path + "-port" + std::to_string(config_.port)) / "disable";
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return false;
  std::ofstream out(file);
  out << (on ? "0" : "1") << std::flush;
  return static_cast<bool>(out);
}

Status HubPortPower::SetPower(bool on) {
  using namespace hub;
  const std::string port = "port " + std::to_string(config_.port);
  for (Hub& h : hubs_) {
    if (WriteSysfsDisable(h, on)) continue;
    const int repeats = on ? 1 : std::max(1, config_.off_repeats);
    for (int i = 0; i < repeats; ++i) {
      TRY(h.device
              ->ControlOut(kPortOut, on ? kSetFeature : kClearFeature, kPortPower,
                           static_cast<uint16_t>(config_.port), {}, std::chrono::milliseconds(5000))
              .Wrap("hub " + h.device->info().Describe() + " " + port + " power " +
                    (on ? "on" : "off")));
    }
  }
  if (!config_.verify) return Status::Ok();
  for (Hub& h : hubs_) {
    TRY_ASSIGN(uint16_t status, PortStatus(h));
    const bool powered = status & (h.superspeed ? kPowerBitUsb3 : kPowerBitUsb2);
    if (powered != on) {
      return Status::Error(Layer::kTransport,
                           "hub " + h.device->info().Describe() + " " + port + " still " +
                               (powered ? "powered" : "unpowered") + " after switching " +
                               (on ? "on" : "off") + " (wPortStatus " + Hex(status, 4) + ")");
    }
  }
  return Status::Ok();
}

Status HubPortPower::DoOff(PowerCut) { return SetPower(false); }
Status HubPortPower::DoOn() { return SetPower(true); }

}  // namespace tpmlab
