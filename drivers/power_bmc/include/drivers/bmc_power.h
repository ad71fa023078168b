// Power through a machine's BMC: IPMI (the ipmitool program, lanplus) and
// Redfish (ComputerSystem.Reset over HTTPS, libcurl). Both switch the whole
// machine, so the TPM on its board loses power with it.
//
//   Off (soft or hard)  chassis power off        / ResetType ForceOff
//   On                  chassis power on         / On
//   Cycle(kSoft)        chassis power reset      / ForceRestart, else PowerCycle
//   Cycle(kHard)        off, wait off_time, on
//
// Secrets: the password comes from a file readable by its owner only, or
// from an environment variable; it never appears on a command line, in a
// message or in a log.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "drivers/power.h"
#include "drivers/spi_bus.h"  // Clock

namespace tpmlab {

// Where a BMC password comes from: exactly one of the two.
struct BmcSecret {
  std::filesystem::path file;  // the whole file, one trailing newline dropped; mode must be 0600 or stricter
  std::string env;             // the name of an environment variable

  std::string Describe() const;  // "password_file /etc/..." or "password_env BMC_PW"
};

// Reads the secret (checking the file's permissions); errors are kBadInput
// and never contain the secret.
Result<std::string> ReadBmcSecret(const BmcSecret& secret);

struct IpmiPowerConfig {
  std::string host;
  uint16_t port = 623;
  std::string user;
  BmcSecret password;
  int cipher = 3;                   // ipmitool -C (3: AES-128, HMAC-SHA1)
  std::string interface = "lanplus";
  std::string program = "ipmitool";
  int retries = 2;                  // ipmitool -R
  int retry_seconds = 2;            // ipmitool -N (per-try timeout)
  std::chrono::milliseconds timeout{30000};  // the whole ipmitool run
  std::chrono::milliseconds off_time{5000};  // Cycle(kHard): how long it stays off
  // After off or on, `chassis power status` is polled until it agrees, this long at most.
  std::chrono::milliseconds settle{60000};
  Clock* clock = nullptr;           // DefaultClock() when null
};

class IpmiPower final : public PowerControl {
 public:
  /// Checks the config and reads the secret; nothing is sent to the BMC.
  static Result<std::unique_ptr<IpmiPower>> Create(IpmiPowerConfig config);

  /// `chassis power status`: whether the machine has power.
  Result<bool> IsOn();
  /// "127.0.0.1:623"
  std::string Endpoint() const;

 private:
  IpmiPower(IpmiPowerConfig config, std::string secret)
      : config_(std::move(config)), secret_(std::move(secret)) {}
  // Runs ipmitool with `command` ("chassis", "power", "on"); its output.
  Result<std::string> Run(const std::vector<std::string>& command);
  Status Power(const std::string& action);  // chassis power on | off | reset
  Status WaitFor(bool on);
  Status DoOff(PowerCut cut) override;
  Status DoOn() override;
  Status DoCycle(PowerCut cut) override;

  IpmiPowerConfig config_;
  std::string secret_;
};

struct RedfishPowerConfig {
  std::string url;                  // the service: https://bmc:443 (no path)
  std::string system;               // /redfish/v1/Systems/1; "" = the collection's first member
  std::string user;
  BmcSecret password;
  bool verify_tls = true;
  std::filesystem::path ca_file;    // trust these CAs instead of the system's
  std::chrono::milliseconds timeout{30000};  // per request
  std::chrono::milliseconds off_time{5000};
  // After a reset, PowerState is polled until it says what was asked, this long at most.
  std::chrono::milliseconds settle{60000};
  Clock* clock = nullptr;
};

class RedfishPower final : public PowerControl {
 public:
  /// Checks the config and reads the secret; nothing is sent.
  static Result<std::unique_ptr<RedfishPower>> Create(RedfishPowerConfig config);
  ~RedfishPower() override;

  /// Finds the ComputerSystem, its Reset action and the reset types it offers.
  Status Discover();
  /// PowerState is "On" (or "PoweringOff"); false for Off and PoweringOn.
  Result<bool> IsOn();
  /// The ComputerSystem's path and the reset types it offers (after Discover).
  const std::string& system() const { return system_; }
  const std::vector<std::string>& reset_types() const { return reset_types_; }
  /// POSTs ResetType `type`, refused (naming what is offered) when the service does not offer it.
  Status Reset(const std::string& type);
  /// The first of `preferred` the service offers, or an error naming what it offers.
  Result<std::string> Choose(const std::vector<std::string>& preferred, const std::string& what);

 private:
  RedfishPowerConfig config_;
  std::string secret_;
  std::string system_;
  std::string reset_target_;
  std::vector<std::string> reset_types_;
  bool discovered_ = false;

  RedfishPower(RedfishPowerConfig config, std::string secret)
      : config_(std::move(config)), secret_(std::move(secret)) {}
  struct Response {
    long status = 0;
    std::string body;
  };
  Result<Response> Request(const std::string& method, const std::string& path, const std::string& body);
  Result<std::string> GetJson(const std::string& path);  // 2xx body or an error naming the URL
  Status WaitFor(bool on);
  Status DoOff(PowerCut cut) override;
  Status DoOn() override;
  Status DoCycle(PowerCut cut) override;
};

}  // namespace tpmlab
