// The BMC kinds of a bench's `power:` section (ipmi, redfish) and what they
// need on this machine.
#include "harness/bench_bmc.h"

#include <filesystem>

#include "drivers/bmc_power.h"
#include "drivers/process.h"

namespace tpmlab {

std::string BenchBmc::Endpoint(bool redfish) const {
  return redfish ? url : host + ":" + std::to_string(port);
}

std::set<std::string> BenchBmcKeys(bool redfish) {
  std::set<std::string> keys = {"user", "password_file", "password_env", "timeout_s", "password"};
  if (redfish) {
    keys.insert({"url", "system", "verify_tls", "ca_file"});
  } else {
    keys.insert({"host", "port", "cipher", "interface"});
  }
  return keys;
}

Result<BenchBmc> ParseBenchBmc(const YamlReader& r, const YAML::Node& n, bool redfish) {
  const std::string kind = redfish ? "redfish" : "ipmi";
  BenchBmc b;
  if (n["password"]) {
    return r.Error(n["password"], "power.password: a BMC password never goes in a bench file; name a file only its "
                                  "owner can read (password_file: PATH) or an environment variable (password_env: VAR)");
  }
  auto resolve = [&r](const std::string& path) {
    std::filesystem::path p(path);
    if (p.is_relative()) p = std::filesystem::path(r.file()).parent_path() / p;
    return p.lexically_normal().string();
  };
  if (!n["user"]) return r.Error(n, "power kind " + kind + " needs user (the BMC account)");
  TRY_ASSIGN(b.user, r.String(n["user"], "power.user"));
  if (static_cast<bool>(n["password_file"]) == static_cast<bool>(n["password_env"])) {
    return r.Error(n["password_file"] ? n["password_file"] : n,
                   "power kind " + kind + " needs exactly one of password_file (a file only its owner can read) "
                   "and password_env (an environment variable)");
  }
  if (n["password_file"]) {
    TRY_ASSIGN(std::string file, r.String(n["password_file"], "power.password_file"));
    b.password_file = resolve(file);
  } else {
    TRY_ASSIGN(b.password_env, r.String(n["password_env"], "power.password_env"));
    if (b.password_env.empty() || b.password_env.find('=') != std::string::npos) {
      return r.Error(n["password_env"], "power.password_env must name an environment variable");
    }
  }
  if (n["timeout_s"]) {
    TRY_ASSIGN(uint64_t t, r.Unsigned(n["timeout_s"], "power.timeout_s"));
    if (t < 1 || t > 600) return r.Error(n["timeout_s"], "power.timeout_s must be 1..600");
    b.timeout_s = static_cast<uint32_t>(t);
  }
  if (redfish) {
    if (!n["url"]) return r.Error(n, "power kind redfish needs url (https://HOST[:PORT])");
    TRY_ASSIGN(b.url, r.String(n["url"], "power.url"));
    if (b.url.rfind("https://", 0) != 0 && b.url.rfind("http://", 0) != 0) {
      return r.Error(n["url"], "power.url must start with https:// (or http://)");
    }
    if (n["system"]) {
      TRY_ASSIGN(b.system, r.String(n["system"], "power.system"));
      if (b.system.empty() || b.system.front() != '/') {
        return r.Error(n["system"], "power.system is the ComputerSystem's path (/redfish/v1/Systems/1)");
      }
    }
    if (n["verify_tls"]) { TRY_ASSIGN(b.verify_tls, r.Bool(n["verify_tls"], "power.verify_tls")); }
    if (n["ca_file"]) {
      TRY_ASSIGN(std::string ca, r.String(n["ca_file"], "power.ca_file"));
      b.ca_file = resolve(ca);
    }
    if (!b.verify_tls && !b.ca_file.empty()) {
      return r.Error(n["verify_tls"], "power.verify_tls: false and ca_file contradict each other");
    }
    return b;
  }
  if (!n["host"]) return r.Error(n, "power kind ipmi needs host (the BMC's address)");
  TRY_ASSIGN(b.host, r.String(n["host"], "power.host"));
  if (n["port"]) {
    TRY_ASSIGN(uint64_t port, r.Unsigned(n["port"], "power.port"));
    if (port < 1 || port > 65535) return r.Error(n["port"], "power.port must be 1..65535");
    b.port = static_cast<uint16_t>(port);
  }
  if (n["cipher"]) {
    TRY_ASSIGN(uint64_t cipher, r.Unsigned(n["cipher"], "power.cipher"));
    if (cipher > 17) return r.Error(n["cipher"], "power.cipher is an IPMI cipher suite id, 0..17");
    b.cipher = static_cast<uint32_t>(cipher);
  }
  if (n["interface"]) {
    TRY_ASSIGN(b.interface, r.String(n["interface"], "power.interface"));
    if (b.interface != "lanplus" && b.interface != "lan") {
      return r.Error(n["interface"], "power.interface must be lanplus or lan, not '" + b.interface + "'");
    }
  }
  return b;
}

BmcProbe ProbeBenchBmc(const BenchBmc& b, bool redfish) {
  BmcSecret secret{b.password_file, b.password_env};
  if (redfish) {
    RedfishPowerConfig c;
    c.url = b.url;
    c.system = b.system;
    c.user = b.user;
    c.password = secret;
    c.verify_tls = b.verify_tls;
    c.ca_file = b.ca_file;
    c.timeout = std::chrono::seconds(b.timeout_s);
    auto power = RedfishPower::Create(c);
    if (!power.ok()) return {false, power.status().message()};
    auto on = (*power)->IsOn();
    if (!on.ok()) return {false, on.status().message()};
    std::string detail = "Redfish " + b.url + (*power)->system() + ": power " + (*on ? "on" : "off") +
                         "; reset types " ;
    std::string types;
    for (const auto& t : (*power)->reset_types()) types += (types.empty() ? "" : ", ") + t;
    detail += types;
    if (!b.verify_tls) detail += " (warning: TLS certificate not verified, verify_tls: false)";
    return {true, detail};
  }
  const auto ipmitool = FindProgram("ipmitool");
  if (!ipmitool) return {false, "ipmitool is not installed (Debian package ipmitool)"};
  IpmiPowerConfig c;
  c.host = b.host;
  c.port = b.port;
  c.user = b.user;
  c.password = secret;
  c.cipher = static_cast<int>(b.cipher);
  c.interface = b.interface;
  c.timeout = std::chrono::seconds(b.timeout_s);
  c.retries = 1;
  auto power = IpmiPower::Create(c);
  if (!power.ok()) return {false, power.status().message()};
  auto on = (*power)->IsOn();
  if (!on.ok()) return {false, on.status().message()};
  return {true, "IPMI BMC " + b.Endpoint(false) + " (ipmitool at " + ipmitool->string() + "): chassis power " +
                    (*on ? "on" : "off")};
}

}  // namespace tpmlab
