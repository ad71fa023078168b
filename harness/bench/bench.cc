// A bench file read whole: every part (transport, bridge, power, allow) and
// the checks between them. Over 600 lines because the cross-part checks need
// every part at hand; new parts go in their own files (usb_parts.cc).
#include "harness/bench.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "drivers/device_transport.h"
#include "drivers/usb_power.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSecurityfsLog = "/sys/kernel/security/tpm0/binary_bios_measurements";

template <typename E>
struct Named {
  const char* name;
  E value;
};

constexpr Named<DutTransportKind> kTransports[] = {
    {"emulated", DutTransportKind::kEmulated},        {"device", DutTransportKind::kDevice},
    {"tis-spi-sim", DutTransportKind::kTisSpiSim},    {"tis-spi-ftdi", DutTransportKind::kTisSpiFtdi},
    {"tis-spi-tpm2go", DutTransportKind::kTisSpiTpm2go}, {"qemu", DutTransportKind::kQemu},
    {"machine", DutTransportKind::kMachine}};
constexpr Named<PowerKind> kPowerKinds[] = {
    {"emulated", PowerKind::kEmulated}, {"none", PowerKind::kNone},       {"usb-relay", PowerKind::kUsbRelay},
    {"usb-hub-port", PowerKind::kUsbHubPort}, {"command", PowerKind::kCommand}, {"manual", PowerKind::kManual},
    {"board", PowerKind::kBoard}, {"ipmi", PowerKind::kIpmi}, {"redfish", PowerKind::kRedfish}};
constexpr Named<BootLogSource> kBootLogSources[] = {{"emulated-firmware", BootLogSource::kEmulatedFirmware},
                                                    {"securityfs", BootLogSource::kSecurityfs},
                                                    {"file", BootLogSource::kFile},
                                                    {"agent", BootLogSource::kAgent}};

template <typename E, size_t N>
const char* NameOf(const Named<E> (&table)[N], E value) {
  for (const auto& n : table) {
    if (n.value == value) return n.name;
  }
  return "?";
}

class BenchParser : public YamlReader {
 public:
  explicit BenchParser(std::string file) : YamlReader(std::move(file), Layer::kScenario) {}

  template <typename E, size_t N>
  Result<E> Enum(const YAML::Node& n, const std::string& what, const Named<E> (&table)[N]) const {
    TRY_ASSIGN(std::string s, String(n, what));
    std::string list;
    for (const auto& t : table) {
      if (s == t.name) return t.value;
      list += (list.empty() ? "" : " | ") + std::string(t.name);
    }
    return Error(n, what + " must be one of " + list + ", not '" + s + "'");
  }

  Result<uint32_t> U32(const YAML::Node& n, const std::string& what) const {
    TRY_ASSIGN(uint64_t v, Unsigned(n, what));
    if (v > 0xFFFFFFFFu) return Error(n, what + " is too large");
    return static_cast<uint32_t>(v);
  }

  Result<uint16_t> HexId(const YAML::Node& n, const std::string& what) const {
    TRY_ASSIGN(std::string s, String(n, what));
    if (s.rfind("0x", 0) == 0 || s.rfind("0X", 0) == 0) s = s.substr(2);
    char* end = nullptr;
    const unsigned long v = s.empty() || s.size() > 4 ? 0x10000 : std::strtoul(s.c_str(), &end, 16);
    if (v > 0xFFFF || (end && *end)) return Error(n, what + " must be 4 hex digits (\"0403\"), not '" + n.Scalar() + "'");
    return static_cast<uint16_t>(v);
  }

  Result<UsbSelector> Usb(const YAML::Node& n, const std::string& what, UsbSelector defaults) const {
    TRY(Keys(n, what, {"vid", "pid", "serial"}));
    UsbSelector m = defaults;
    if (n["vid"]) { TRY_ASSIGN(m.vid, HexId(n["vid"], what + ".vid")); }
    if (n["pid"]) { TRY_ASSIGN(m.pid, HexId(n["pid"], what + ".pid")); }
    if (n["serial"]) { TRY_ASSIGN(m.serial, String(n["serial"], what + ".serial")); }
    if (m.vid == 0 && m.pid == 0) return Error(n, what + " needs vid and pid");
    if (m.serial_is_pattern && !m.serial.empty()) {
      // A bad pattern is a mistake in the file, not a part missing on the bench.
      try {
        std::regex check(m.serial);
      } catch (const std::regex_error& e) {
        return Error(n["serial"], what + ".serial is a regular expression here: " + e.what());
      }
    }
    return m;
  }

  Result<BenchDut> Dut(const YAML::Node& n) const {
    TRY(Keys(n, "dut", {"transport", "path", "usb", "spi"}));
    BenchDut dut;
    dut.where = Where(n);
    if (!n["transport"]) {
      return Error(n, "dut needs a transport (emulated | device | tis-spi-sim | tis-spi-ftdi | tis-spi-tpm2go | qemu | machine)");
    }
    TRY_ASSIGN(dut.transport, Enum(n["transport"], "dut.transport", kTransports));
    const bool usb_bridge = dut.transport == DutTransportKind::kTisSpiFtdi || dut.transport == DutTransportKind::kTisSpiTpm2go;
    const bool spi = usb_bridge || dut.transport == DutTransportKind::kTisSpiSim;
    if (n["path"]) {
      if (dut.transport != DutTransportKind::kDevice) return Error(n["path"], "dut.path is only for transport: device");
      TRY_ASSIGN(dut.path, String(n["path"], "dut.path"));
    } else if (dut.transport == DutTransportKind::kDevice) {
      dut.path = "/dev/tpmrm0";
    }
    if (n["usb"] && !usb_bridge) return Error(n["usb"], "dut.usb is only for transport: tis-spi-ftdi or tis-spi-tpm2go");
    if (usb_bridge) {
      // The TPM2Go's serial is a pattern, as tpm2-tss's tcti-spi-ltt2go takes it.
      const UsbSelector defaults = dut.transport == DutTransportKind::kTisSpiFtdi ? UsbSelector{0x0403, 0x6014, "", false}
                                                                               : UsbSelector{0x365D, 0x1337, "", true};
      if (n["usb"]) {
        TRY_ASSIGN(dut.usb, Usb(n["usb"], "dut.usb", defaults));
      } else {
        dut.usb = defaults;
      }
    }
    if (n["spi"]) {
      const YAML::Node s = n["spi"];
      if (!spi) return Error(s, "dut.spi is only for the tis-spi-* transports");
      TRY(Keys(s, "dut.spi", {"clock_hz", "wait_states", "burst_count", "cs_gpio"}));
      if (s["clock_hz"]) { TRY_ASSIGN(dut.spi_clock_hz, U32(s["clock_hz"], "dut.spi.clock_hz")); }
      if (s["cs_gpio"]) {
        if (dut.transport != DutTransportKind::kTisSpiTpm2go) {
          return Error(s["cs_gpio"], "dut.spi.cs_gpio is only for transport: tis-spi-tpm2go");
        }
        TRY_ASSIGN(uint32_t gpio, U32(s["cs_gpio"], "dut.spi.cs_gpio"));
        if (gpio > 11) return Error(s["cs_gpio"], "dut.spi.cs_gpio must be a Cypress GPIO number, 0..11");
        dut.cs_gpio = static_cast<uint8_t>(gpio);
      }
      if (s["wait_states"] || s["burst_count"]) {
        if (dut.transport != DutTransportKind::kTisSpiSim) {
          return Error(s, "dut.spi.wait_states and burst_count shape the simulated TPM (tis-spi-sim); a real chip sets its own");
        }
        if (s["wait_states"]) {
          TRY_ASSIGN(dut.wait_states, U32(s["wait_states"], "dut.spi.wait_states"));
          if (dut.wait_states > 64) return Error(s["wait_states"], "dut.spi.wait_states must be 0..64");
        }
        if (s["burst_count"]) {
          TRY_ASSIGN(dut.burst_count, U32(s["burst_count"], "dut.spi.burst_count"));
          // burstCount is a 16-bit STS field; one SPI frame carries at most 64 bytes anyway.
          if (dut.burst_count < 1 || dut.burst_count > 0xFFFF) {
            return Error(s["burst_count"], "dut.spi.burst_count must be 1..65535");
          }
        }
      }
    }
    return dut;
  }

  Result<BenchPower> Power(const YAML::Node& n) const {
    std::set<std::string> keys = {"kind", "usb", "relay", "channel", "hub", "port", "on_command", "off_command", "off_ms"};
    for (bool redfish : {false, true}) keys.merge(BenchBmcKeys(redfish));
    TRY(Keys(n, "power", keys));
    BenchPower p;
    p.where = Where(n);
    if (!n["kind"]) return Error(n, "power needs a kind (emulated | none | usb-relay | usb-hub-port | command | manual | ipmi | redfish)");
    TRY_ASSIGN(p.kind, Enum(n["kind"], "power.kind", kPowerKinds));
    // Each kind's own keys; any other is a mistake worth naming.
    std::set<std::string> own;
    switch (p.kind) {
      case PowerKind::kUsbRelay: own = {"usb", "relay", "channel"}; break;
      case PowerKind::kUsbHubPort: own = {"hub", "port"}; break;
      case PowerKind::kCommand: own = {"on_command", "off_command"}; break;
      case PowerKind::kIpmi: own = BenchBmcKeys(false); break;
      case PowerKind::kRedfish: own = BenchBmcKeys(true); break;
      default: break;
    }
    own.insert({"kind", "off_ms"});
    for (const auto& kv : n) {
      const std::string key = kv.first.as<std::string>();
      if (!own.count(key)) return Error(kv.first, "power." + key + " does not apply to kind: " + PowerKindName(p.kind));
    }
    if (n["off_ms"]) { TRY_ASSIGN(p.off_ms, U32(n["off_ms"], "power.off_ms")); }
    if (p.kind == PowerKind::kUsbRelay) {
      if (!n["relay"]) return Error(n, "power kind usb-relay needs relay: dcttech | lcus");
      TRY_ASSIGN(p.relay_type, String(n["relay"], "power.relay"));
      if (p.relay_type != "dcttech" && p.relay_type != "lcus") {
        return Error(n["relay"], "power.relay must be dcttech or lcus, not '" + p.relay_type + "'");
      }
      const UsbSelector defaults = p.relay_type == "dcttech" ? UsbSelector{0x16C0, 0x05DF, "", false}
                                                             : UsbSelector{0x1A86, 0x7523, "", false};
      if (n["usb"]) {
        TRY_ASSIGN(p.usb, Usb(n["usb"], "power.usb", defaults));
      } else {
        p.usb = defaults;
      }
      if (!n["channel"]) return Error(n, "power kind usb-relay needs channel (the relay number, from 1)");
      TRY_ASSIGN(p.channel, U32(n["channel"], "power.channel"));
      if (p.channel < 1 || p.channel > 8) return Error(n["channel"], "power.channel must be 1..8");
    } else if (p.kind == PowerKind::kUsbHubPort) {
      if (!n["hub"] || !n["port"]) return Error(n, "power kind usb-hub-port needs hub (\"1-1.4\") and port");
      TRY_ASSIGN(p.hub, String(n["hub"], "power.hub"));
      TRY_ASSIGN(p.port, U32(n["port"], "power.port"));
      if (p.port < 1) return Error(n["port"], "power.port counts from 1");
    } else if (p.kind == PowerKind::kIpmi || p.kind == PowerKind::kRedfish) {
      TRY_ASSIGN(p.bmc, ParseBenchBmc(*this, n, p.kind == PowerKind::kRedfish));
    } else if (p.kind == PowerKind::kCommand) {
      if (!n["on_command"] || !n["off_command"]) return Error(n, "power kind command needs on_command and off_command");
      TRY_ASSIGN(p.on_command, String(n["on_command"], "power.on_command"));
      TRY_ASSIGN(p.off_command, String(n["off_command"], "power.off_command"));
    }
    return p;
  }

  Result<Bench> Parse(const std::string& text) const {
    TRY_ASSIGN(YAML::Node root, YamlReader::Parse(text));
    if (!root.IsMap()) return Error("a bench file is a mapping (name, dut, power, ...)");
    TRY(Keys(root, "the bench", {"name", "dut", "power", "firmware_control", "boot_log", "allow", "board",
                                 "flash", "machine"}));
    Bench b;
    b.file = file();
    if (!root["name"]) return Error(root, "the bench needs a name");
    TRY_ASSIGN(b.name, String(root["name"], "name"));
    if (!root["dut"]) return Error(root, "the bench needs a dut");
    TRY_ASSIGN(b.dut, Dut(root["dut"]));
    const bool emulated = b.emulated();
    if (b.is_board() != static_cast<bool>(root["board"])) {
      return Error(root["board"] ? root["board"] : root, "board: goes with dut transport qemu, and it needs one");
    }
    if (b.is_board()) { TRY_ASSIGN(b.board, ParseBenchBoard(*this, root["board"])); }
    if (b.is_machine() != static_cast<bool>(root["machine"])) {
      return Error(root["machine"] ? root["machine"] : root, "machine: goes with dut transport machine, and it needs one");
    }
    if (b.is_machine()) { TRY_ASSIGN(b.machine, ParseBenchMachine(*this, root["machine"])); }

    if (root["power"]) {
      TRY_ASSIGN(b.power, Power(root["power"]));
    } else {
      b.power.kind = emulated ? PowerKind::kEmulated : b.is_board() ? PowerKind::kBoard : PowerKind::kNone;
    }
    if ((b.power.kind == PowerKind::kBoard) != b.is_board()) {
      return Error(root["power"], "power kind board is a QEMU board's own (QMP and its agent), and a board has no other");
    }
    if ((b.power.kind == PowerKind::kIpmi || b.power.kind == PowerKind::kRedfish) && emulated) {
      // The emulator is powered through its own channel; a BMC would switch nothing tpmlab reads.
      return Error(root["power"], std::string("power kind ") + PowerKindName(b.power.kind) +
                                      " switches a real machine through its BMC; an emulated DUT has power: emulated");
    }
    if (b.power.kind == PowerKind::kEmulated && !emulated) {
      return Error(root["power"] ? root["power"] : root, "power kind emulated needs an emulated DUT");
    }
    if (b.dut.transport == DutTransportKind::kDevice && b.power.kind != PowerKind::kNone) {
      return Error(root["power"], "a device DUT is this machine's own TPM: its power cannot be switched while "
                                  "tpmlab runs on it (power: none)");
    }

    if (const YAML::Node fc = root["firmware_control"]) {
      if (!emulated) return Error(fc, "firmware_control is only for an emulated DUT (a real platform measures its own firmware)");
      TRY(Keys(fc, "firmware_control", {"model"}));
      if (!fc["model"]) return Error(fc, "firmware_control needs a model (a firmware model file)");
      TRY_ASSIGN(std::string model, String(fc["model"], "firmware_control.model"));
      fs::path p(model);
      if (p.is_relative()) p = fs::path(file()).parent_path() / p;
      b.firmware_model = p.lexically_normal().string();
    }

    if (const YAML::Node bl = root["boot_log"]) {
      TRY(Keys(bl, "boot_log", {"source", "path"}));
      if (!bl["source"]) return Error(bl, "boot_log needs a source (emulated-firmware | securityfs | file | agent)");
      TRY_ASSIGN(b.boot_log.source, Enum(bl["source"], "boot_log.source", kBootLogSources));
      if (bl["path"]) {
        if (b.boot_log.source == BootLogSource::kEmulatedFirmware) {
          return Error(bl["path"], "boot_log.path does not apply to source: emulated-firmware");
        }
        TRY_ASSIGN(b.boot_log.path, String(bl["path"], "boot_log.path"));
      }
      if (b.boot_log.source == BootLogSource::kFile && b.boot_log.path.empty()) {
        return Error(bl, "boot_log source file needs a path");
      }
      if (b.boot_log.source == BootLogSource::kEmulatedFirmware && !b.harness_boots()) {
        return Error(bl["source"], "boot_log source emulated-firmware needs a DUT tpmlab starts itself; this "
                                   "machine's platform booted a device DUT (use securityfs or file)");
      }
      if ((b.boot_log.source == BootLogSource::kAgent) != (b.is_board() || b.is_machine())) {
        return Error(bl["source"], "boot_log source agent is a board's or a machine's (its OS reads the log through "
                                   "tpmlab-agent), and they have no other");
      }
    } else {
      b.boot_log.source = b.is_board() || b.is_machine() ? BootLogSource::kAgent
                          : b.harness_boots() ? BootLogSource::kEmulatedFirmware
                                              : BootLogSource::kSecurityfs;
    }
    if (b.boot_log.source == BootLogSource::kSecurityfs && b.boot_log.path.empty()) b.boot_log.path = kSecurityfsLog;

    // Everything allowed on an emulated DUT; nothing, unless said, on a real one.
    BenchAllow& a = b.allow;
    // A board's chip is an emulator manufactured for the run: nothing lasts.
    for (Operation op : kAllOperations) a.At(op) = emulated || b.is_board();
    if (const YAML::Node al = root["allow"]) {
      std::set<std::string> keys;
      for (Operation op : kAllOperations) keys.insert(OperationKey(op));
      TRY(Keys(al, "allow", keys));
      for (Operation op : kAllOperations) {
        const char* key = OperationKey(op);
        if (al[key]) { TRY_ASSIGN(a.At(op), Bool(al[key], std::string("allow.") + key)); }
      }
    }
    if (root["flash"]) {
      const bool written = root["allow"] && root["allow"]["flash"];
      TRY_ASSIGN(b.flash, ParseBenchFlash(*this, root["flash"], written ? std::optional<bool>(a.flash) : std::nullopt));
    }
    if (b.flash) a.flash = b.flash->allowed;  // without a chip, as every other key
    TRY(CheckBenchFlash(*this, root, b));
    return b;
  }
};

bool Executable(const std::string& command, std::string* found) {
  // The first word of a shell command: a path, or a name on PATH.
  std::istringstream words(command);
  std::string first;
  words >> first;
  if (first.empty()) return false;
  if (first.find('/') != std::string::npos) {
    *found = first;
    return ::access(first.c_str(), X_OK) == 0;
  }
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + first;
    if (::access(candidate.c_str(), X_OK) == 0) {
      *found = candidate;
      return true;
    }
  }
  *found = first;
  return false;
}

// The USB devices on this machine, enumerated once for the whole check, or
// why there are none to look at.
struct UsbSeen {
  UsbContext* context = nullptr;  // null: USB cannot be enumerated here
  std::vector<UsbDeviceInfo> devices;
  std::string unavailable;

  std::string Among() const { return "among " + std::to_string(devices.size()) + " enumerated"; }
};

UsbSeen EnumerateUsb(UsbContext* usb, const std::string& unavailable) {
  if (usb == nullptr) {
    const std::string why = unavailable.empty() ? "" : " (" + unavailable + ")";
    return {nullptr, {}, "USB cannot be enumerated on this machine" + why};
  }
  auto devices = usb->Enumerate();
  if (!devices.ok()) return {nullptr, {}, "USB cannot be enumerated: " + devices.status().message()};
  return {usb, std::move(*devices), ""};
}

std::string DescribeAll(const std::vector<const UsbDeviceInfo*>& devices) {
  std::string list;
  for (const UsbDeviceInfo* d : devices) list += (list.empty() ? "" : "; ") + d->Describe();
  return list;
}

// A bridge or a relay: found by enumerating only. Opening it could reset an
// FTDI's MPSSE state or take a relay from another process, and a check must
// not disturb the DUT.
ProbeItem ProbeUsb(const std::string& part, const std::string& what, const UsbSelector& want, const UsbSeen& usb) {
  if (usb.context == nullptr) return {part, ProbeState::kMissing, what + " " + want.ToString() + ": " + usb.unavailable};
  std::vector<const UsbDeviceInfo*> found, other_serials;
  for (const UsbDeviceInfo& d : usb.devices) {
    if (want.Matches(d)) {
      found.push_back(&d);
    } else if (d.vendor_id == want.vid && d.product_id == want.pid) {
      other_serials.push_back(&d);
    }
  }
  if (found.size() == 1) return {part, ProbeState::kPresent, what + " " + found.front()->Describe()};
  if (found.empty()) {
    std::string detail = what + ": no USB device " + want.ToString() + " " + usb.Among();
    if (!other_serials.empty()) detail += " (with other serials: " + DescribeAll(other_serials) + ")";
    return {part, ProbeState::kMissing, detail};
  }
  // Several: a run could not tell which one carries the DUT.
  return {part, ProbeState::kMissing,
          what + ": " + std::to_string(found.size()) + " USB devices match " + want.ToString() + " (" +
              DescribeAll(found) + "): " + (want.serial.empty() ? "set " : "narrow ") + part +
              ".usb.serial in the bench file to choose one"};
}

// A hub port: the hub must be at the bench's location and have that port;
// its hub descriptor says whether the port's power can be switched on its
// own. HubPortPower::Open reads it, so the check finds what the switch would.
ProbeItem ProbeHubPort(const BenchPower& power, const UsbSeen& usb) {
  constexpr uint8_t kHubClass = 0x09;
  const std::string what = "hub " + power.hub + " port " + std::to_string(power.port);
  if (usb.context == nullptr) return {"power", ProbeState::kMissing, what + ": " + usb.unavailable};
  const UsbDeviceInfo* at = nullptr;
  std::vector<std::string> hubs;  // where the hubs are, when the location is wrong
  for (const UsbDeviceInfo& d : usb.devices) {
    if (d.Path() == power.hub) at = &d;
    if (d.device_class == kHubClass) hubs.push_back(d.Path());
  }
  if (at == nullptr) {
    std::string detail = what + ": no USB device at " + power.hub + " " + usb.Among();
    std::string list;
    for (const std::string& h : hubs) list += (list.empty() ? "" : ", ") + h;
    detail += list.empty() ? " (no hubs)" : " (hubs at " + list + ")";
    return {"power", ProbeState::kMissing, detail};
  }
  if (at->device_class != kHubClass) {
    return {"power", ProbeState::kMissing, what + ": the device at " + power.hub + " is " + at->Describe() + ", not a hub"};
  }
  HubPortConfig config;
  config.hub = UsbMatch{at->vendor_id, {at->product_id}, "", power.hub};
  config.port = static_cast<int>(power.port);
  config.sysfs_usb_devices = "";  // Open only reads the descriptor; nothing is switched
  auto hub = HubPortPower::Open(*usb.context, config);
  if (!hub.ok()) return {"power", ProbeState::kMissing, what + ": " + hub.status().message()};
  const std::string found = "port " + std::to_string(power.port) + " of hub " + at->Describe();
  // Open warns when the hub gangs its ports or cannot switch them: the port
  // is there, but a power cycle may not do what the bench expects.
  if ((*hub)->warnings().empty()) return {"power", ProbeState::kPresent, found + " (per-port power switching)"};
  std::string warnings;
  for (const std::string& w : (*hub)->warnings()) warnings += "; warning: " + w;
  return {"power", ProbeState::kPresent, found + warnings};
}

ProbeItem ProbeSwtpm(const std::string& part) {
  std::string found;
  if (Executable("swtpm", &found)) return {part, ProbeState::kPresent, "swtpm at " + found};
  return {part, ProbeState::kMissing, "swtpm is not installed (Debian package swtpm)"};
}

ProbeItem ProbeReadable(const std::string& part, const std::string& what, const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return {part, ProbeState::kMissing, what + " " + path + ": no such file"};
  if (::access(path.c_str(), R_OK) != 0) {
    return {part, ProbeState::kMissing, what + " " + path + ": not readable (run as root)"};
  }
  return {part, ProbeState::kPresent, what + " " + path};
}

}  // namespace

const char* DutTransportName(DutTransportKind kind) { return NameOf(kTransports, kind); }
const char* PowerKindName(PowerKind kind) { return NameOf(kPowerKinds, kind); }
const char* BootLogSourceName(BootLogSource source) { return NameOf(kBootLogSources, source); }

std::string UsbSelector::ToString() const {
  char id[16];
  std::snprintf(id, sizeof id, "%04x:%04x", vid, pid);
  return serial.empty() ? id : std::string(id) + " serial " + serial;
}

bool UsbSelector::Matches(const UsbDeviceInfo& device) const {
  if (device.vendor_id != vid || device.product_id != pid) return false;
  if (serial.empty()) return true;
  if (!serial_is_pattern) return device.serial.find(serial) != std::string::npos;
  try {
    return std::regex_search(device.serial, std::regex(serial));
  } catch (const std::regex_error&) {
    return false;  // ParseBench rejects a bad pattern; a hand-built selector matches nothing
  }
}

namespace {

struct OperationInfo {
  Operation op;
  const char* key;
  const char* title;
  bool BenchAllow::*field;
};
constexpr OperationInfo kOperationInfo[] = {
    {Operation::kClear, "clear", "TPM2_Clear (wipes the owner and endorsement hierarchies' keys)", &BenchAllow::clear},
    {Operation::kChangeEps, "change_eps",
     "TPM2_ChangeEPS (a new endorsement seed: the EK and its certificate no longer match)", &BenchAllow::change_eps},
    {Operation::kChangePps, "change_pps", "TPM2_ChangePPS (a new platform seed)", &BenchAllow::change_pps},
    {Operation::kNvWrite, "nv_write", "an NV write (NV memory wears out; indices may belong to the platform)",
     &BenchAllow::nv_write},
    {Operation::kAllocateBanks, "allocate_banks", "TPM2_PCR_Allocate (changes the PCR banks at the next boot)",
     &BenchAllow::allocate_banks},
    {Operation::kFirmwareInstall, "firmware_install", "a TPM firmware install", &BenchAllow::firmware_install},
    {Operation::kClockSet, "clock", "TPM2_ClockSet (the TPM's clock never goes back)", &BenchAllow::clock},
    {Operation::kHierarchy, "hierarchy", "TPM2_HierarchyControl disabling a hierarchy (until the next reset)",
     &BenchAllow::hierarchy},
    {Operation::kExtend, "extend", "a PCR extend on this machine's own TPM (its attestation fails until it reboots)",
     &BenchAllow::extend},
    {Operation::kFlash, "flash", "writing platform firmware with flashrom (a bad image leaves the machine unbootable)",
     &BenchAllow::flash},
};

const OperationInfo& InfoOf(Operation op) {
  for (const auto& i : kOperationInfo) {
    if (i.op == op) return i;
  }
  return kOperationInfo[0];
}

}  // namespace

const char* OperationKey(Operation op) { return InfoOf(op).key; }
const char* OperationTitle(Operation op) { return InfoOf(op).title; }
bool BenchAllow::Get(Operation op) const { return this->*InfoOf(op).field; }
bool& BenchAllow::At(Operation op) { return this->*InfoOf(op).field; }

Result<Bench> ParseBench(const std::string& text, const std::string& file) {
  const BenchParser parser(file);
  // yaml-cpp throws where a node is not what it is read as: the bench's error, at that node.
  return parser.Catching([&] { return parser.Parse(text); });
}

Result<Bench> LoadBench(const fs::path& file) {
  TRY_ASSIGN(std::string text, YamlReader::ReadText(file, Layer::kScenario));
  return ParseBench(text, file.string());
}

Status CheckAllowed(const Bench& bench, Operation op) {
  // A flash chip is real unless it is flashrom's dummy (a file), whatever the TPM is.
  if (op == Operation::kFlash ? bench.allow.flash : bench.emulated() || bench.allow.Get(op)) return Status::Ok();
  // A chip tpmlab boots itself forgets its PCRs at the next power cycle.
  if (op == Operation::kExtend && bench.harness_boots()) return Status::Ok();
  std::string dut = std::string(DutTransportName(bench.dut.transport));
  if (!bench.dut.path.empty()) dut += " " + bench.dut.path;
  if (bench.dut.usb) dut += " " + bench.dut.usb->ToString();
  return Status::Error(Layer::kScenario,
                       "refusing " + std::string(OperationTitle(op)) + " on bench '" + bench.name + "' (" + dut +
                           "), a real chip: set allow." + OperationKey(op) + ": true in " + bench.file +
                           " to permit it");
}

std::vector<ProbeItem> ProbeBench(const Bench& bench, UsbContext* usb, const std::string& usb_unavailable) {
  std::vector<ProbeItem> items;
  const UsbSeen seen = bench.uses_usb() ? EnumerateUsb(usb, usb_unavailable) : UsbSeen{};
  const BenchDut& dut = bench.dut;
  switch (dut.transport) {
    case DutTransportKind::kEmulated:
    case DutTransportKind::kTisSpiSim:
      items.push_back(ProbeSwtpm("dut"));
      break;
    case DutTransportKind::kDevice: {
      std::error_code ec;
      if (!fs::exists(dut.path, ec)) {
        items.push_back({"dut", ProbeState::kMissing, dut.path + ": no TPM device (absent on this machine)"});
        break;
      }
      auto t = DeviceTransport::Open(dut.path);  // opened and closed; no command sent
      if (t.ok()) {
        items.push_back({"dut", ProbeState::kPresent, dut.path + " opens read-write"});
      } else {
        items.push_back({"dut", ProbeState::kMissing, t.status().message()});
      }
      break;
    }
    case DutTransportKind::kTisSpiFtdi:
      items.push_back(ProbeUsb("dut", "FTDI bridge", *dut.usb, seen));
      break;
    case DutTransportKind::kTisSpiTpm2go:
      items.push_back(ProbeUsb("dut", "TPM2Go", *dut.usb, seen));
      break;
    case DutTransportKind::kMachine:
      for (const auto& p : ProbeMachine(*bench.machine)) {
        items.push_back({p.part, p.present ? ProbeState::kPresent : ProbeState::kMissing, p.detail});
      }
      break;
    case DutTransportKind::kQemu:
      items.push_back(ProbeSwtpm("dut"));
      for (const auto& p : ProbeBoard(*bench.board)) {
        items.push_back({p.part, p.present ? ProbeState::kPresent : ProbeState::kMissing, p.detail});
      }
      break;
  }

  const BenchPower& p = bench.power;
  switch (p.kind) {
    case PowerKind::kEmulated:
      items.push_back({"power", ProbeState::kPresent, "emulated (swtpm's power channel)"});
      break;
    case PowerKind::kNone:
      items.push_back({"power", ProbeState::kPresent, "none (power cycles are refused)"});
      break;
    case PowerKind::kBoard:
      items.push_back({"power", ProbeState::kPresent, "the board's (QEMU's QMP and tpmlab-agent)"});
      break;
    case PowerKind::kUsbRelay:
      items.push_back(ProbeUsb("power", p.relay_type + " relay", *p.usb, seen));
      break;
    case PowerKind::kUsbHubPort:
      items.push_back(ProbeHubPort(p, seen));
      break;
    case PowerKind::kCommand: {
      std::string on, off;
      const bool on_ok = Executable(p.on_command, &on), off_ok = Executable(p.off_command, &off);
      if (on_ok && off_ok) {
        items.push_back({"power", ProbeState::kPresent, "commands " + on + ", " + off});
      } else {
        items.push_back({"power", ProbeState::kMissing, "power command not found: " + (on_ok ? off : on)});
      }
      break;
    }
    case PowerKind::kIpmi:
    case PowerKind::kRedfish: {
      const BmcProbe bmc = ProbeBenchBmc(p.bmc, p.kind == PowerKind::kRedfish);
      items.push_back({"power", bmc.present ? ProbeState::kPresent : ProbeState::kMissing, bmc.detail});
      // A console the machine serves itself (a QEMU chardev, a BMC's
      // serial-over-LAN) listens only while it runs: refused while its BMC
      // says it is off is what an off machine does, not a missing part.
      // (ProbeBenchBmc ends an IPMI line with "chassis power off" and puts
      // ": power off;" in a Redfish one.)
      const std::string ipmi_off = "chassis power off";
      const bool said_off =
          bmc.present && (bmc.detail.find(": power off;") != std::string::npos ||
                          (bmc.detail.size() >= ipmi_off.size() &&
                           bmc.detail.compare(bmc.detail.size() - ipmi_off.size(), ipmi_off.size(), ipmi_off) == 0));
      if (said_off && bench.is_machine() && bench.machine->link == MachineLink::kTcp) {
        for (ProbeItem& item : items) {
          if (item.part == "machine.agent.console" && item.state == ProbeState::kMissing) {
            item.state = ProbeState::kPresent;
            item.detail += " while the machine is off (its BMC says so): a console the machine serves itself "
                           "listens only while it runs, so it is tried again at boot";
          }
        }
      }
      break;
    }
    case PowerKind::kManual:
      if (::isatty(STDIN_FILENO)) {
        items.push_back({"power", ProbeState::kPresent, "manual (the operator is asked at this terminal)"});
      } else {
        items.push_back({"power", ProbeState::kMissing, "manual power needs an operator at a terminal; stdin is not one"});
      }
      break;
  }

  if (bench.firmware_model) items.push_back(ProbeReadable("firmware_control", "model", *bench.firmware_model));
  if (bench.flash) {
    for (const auto& f : ProbeFlash(*bench.flash)) {
      items.push_back({f.part, f.present ? ProbeState::kPresent : ProbeState::kMissing, f.detail});
    }
  }

  switch (bench.boot_log.source) {
    case BootLogSource::kEmulatedFirmware:
      items.push_back({"boot_log", ProbeState::kPresent, "written by the emulated firmware at every boot"});
      break;
    case BootLogSource::kSecurityfs:
      items.push_back(ProbeReadable("boot_log", "securityfs log", bench.boot_log.path));
      break;
    case BootLogSource::kFile:
      items.push_back(ProbeReadable("boot_log", "log file", bench.boot_log.path));
      break;
    case BootLogSource::kAgent:
      items.push_back({"boot_log", ProbeState::kPresent, std::string("read from the ") +
                                                          (bench.is_machine() ? "machine's" : "board's") +
                                                          " securityfs by tpmlab-agent"});
      break;
  }
  return items;
}

std::vector<ProbeItem> ProbeBenchHere(const Bench& bench) {
  // libusb only for a bench with USB parts. When it cannot start (no usbfs,
  // as in a container), those parts are missing and say why.
  std::unique_ptr<UsbContext> usb;
  std::string usb_unavailable;
  if (bench.uses_usb()) {
    auto opened = OpenLibusbContext();
    if (opened.ok()) {
      usb = std::move(*opened);
    } else {
      usb_unavailable = opened.status().message();
    }
  }
  return ProbeBench(bench, usb.get(), usb_unavailable);
}

std::string BenchSummaryJson(const Bench& bench) {
  nlohmann::json dut = {{"transport", DutTransportName(bench.dut.transport)}};
  if (!bench.dut.path.empty()) dut["path"] = bench.dut.path;
  if (bench.dut.usb) dut["usb"] = bench.dut.usb->ToString();
  nlohmann::json power = {{"kind", PowerKindName(bench.power.kind)}};
  if (bench.power.usb) power["usb"] = bench.power.usb->ToString();
  if (!bench.power.hub.empty()) power["hub"] = bench.power.hub + " port " + std::to_string(bench.power.port);
  if (bench.power.kind == PowerKind::kIpmi || bench.power.kind == PowerKind::kRedfish) {
    // Where and as whom; the password's source is named, never its value.
    const BenchBmc& bmc = bench.power.bmc;
    power["bmc"] = bmc.Endpoint(bench.power.kind == PowerKind::kRedfish);
    power["user"] = bmc.user;
    if (bench.power.kind == PowerKind::kRedfish) {
      power["verify_tls"] = bmc.verify_tls;
      if (!bmc.verify_tls) power["warning"] = "TLS certificate of " + bmc.url + " not verified (verify_tls: false)";
    }
  }
  nlohmann::json allow = nlohmann::json::object();
  for (Operation op : kAllOperations) {
    allow[OperationKey(op)] = bench.allow.Get(op);
  }
  return nlohmann::json({{"name", bench.name},
                         {"file", bench.file},
                         {"emulated", bench.emulated()},
                         {"dut", dut},
                         {"power", power},
                         {"boot_log", {{"source", BootLogSourceName(bench.boot_log.source)},
                                       {"path", bench.boot_log.path}}},
                         {"allow", allow},
                         {"board", bench.board ? nlohmann::json({{"machine", bench.board->machine},
                                                                 {"tpm", bench.board->tpm_interface},
                                                                 {"images", bench.board->ImageNames()},
                                                                 {"default", bench.board->default_image}})
                                               : nlohmann::json()},
                         {"flash", bench.flash ? nlohmann::json({{"programmer", bench.flash->programmer},
                                                                 {"region", bench.flash->region},
                                                                 {"images", bench.flash->ImageNames()}})
                                               : nlohmann::json()},
                         {"machine", bench.machine ? MachineSummaryJson(*bench.machine) : nlohmann::json()}})
      .dump();
}

}  // namespace tpmlab
