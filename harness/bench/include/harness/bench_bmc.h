// A bench's power through a machine's BMC: `power: {kind: ipmi, ...}` and
// `power: {kind: redfish, ...}`. The password is never in the bench file:
// it names a file (owner-only) or an environment variable holding it.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "drivers/status.h"
#include "harness/yaml_reader.h"

namespace tpmlab {

struct BenchBmc {
  // ipmi
  std::string host;
  uint16_t port = 623;
  uint32_t cipher = 3;
  std::string interface = "lanplus";
  // redfish
  std::string url;     // https://bmc:443
  std::string system;  // /redfish/v1/Systems/1; "" = the first member
  bool verify_tls = true;
  std::string ca_file;
  // both
  std::string user;
  std::string password_file;  // resolved against the bench file's folder
  std::string password_env;
  uint32_t timeout_s = 30;    // one ipmitool run / one HTTP request

  std::string Endpoint(bool redfish) const;  // "127.0.0.1:623" or the url
};

/// The keys `power:` takes for an ipmi or redfish bench (besides kind and off_ms).
std::set<std::string> BenchBmcKeys(bool redfish);
/// Parses them; `password:` is refused, naming password_file and password_env.
Result<BenchBmc> ParseBenchBmc(const YamlReader& reader, const YAML::Node& power, bool redfish);

// One `bench check` line: found or not, and what.
struct BmcProbe {
  bool present = false;
  std::string detail;
};
/// ipmitool on PATH and `chassis power status` answered; or the Redfish
/// service root reachable and the system's PowerState read. Switches nothing.
BmcProbe ProbeBenchBmc(const BenchBmc& bmc, bool redfish);

}  // namespace tpmlab
