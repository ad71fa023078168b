// Test support: emulated DUTs on real swtpm processes, each in its own
// temporary folder. Manufacturing a chip (swtpm_setup) costs about a second,
// so one provisioned state is made per test program and copied for each DUT.
#pragma once

#include <boost/test/unit_test.hpp>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "harness/dut.h"

namespace tpmlab::testing {

namespace fs = std::filesystem;

inline fs::path MakeTempDir(const std::string& tag) {
  std::string tmpl = (fs::temp_directory_path() / ("tpmlab-" + tag + "-XXXXXX")).string();
  char* made = ::mkdtemp(tmpl.data());
  BOOST_REQUIRE_MESSAGE(made != nullptr, "mkdtemp failed");
  return made;
}

inline const std::vector<std::string> kDefaultBanks = ProvisionOptions{}.banks;

// A folder holding a manufactured chip with `banks` allocated (EK and
// certificates); one per set of banks and test program.
inline const fs::path& ProvisionedTemplate(const std::vector<std::string>& banks = kDefaultBanks) {
  static std::map<std::vector<std::string>, fs::path> templates;
  fs::path& dir = templates[banks];
  if (dir.empty()) {
    dir = MakeTempDir("template") / "state";
    ProvisionOptions options;
    options.banks = banks;
    Status s = ProvisionSwtpmState(dir, options);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  }
  return dir;
}

// A DUT on its own swtpm, removed with its folder at the end of the test.
struct EmulatedDut {
  explicit EmulatedDut(bool unix_sockets = false, const std::vector<std::string>& banks = kDefaultBanks) {
    root = MakeTempDir("dut");
    EmulatedDutConfig config;
    config.state_dir = root / "dut0";
    config.banks = banks;
    config.unix_sockets = unix_sockets;
    config.command_timeout = std::chrono::milliseconds(20000);
    fs::create_directories(config.state_dir);
    fs::copy_file(ProvisionedTemplate(banks) / "tpm2-00.permall", config.state_dir / "tpm2-00.permall");
    auto launched = Dut::LaunchEmulated(config);
    BOOST_REQUIRE_MESSAGE(launched.ok(), launched.status().ToString());
    dut = std::move(*launched);
  }
  ~EmulatedDut() {
    dut.reset();
    std::error_code ignored;
    fs::remove_all(root, ignored);
  }
  Dut* operator->() { return dut.get(); }
  Tpm& tpm() { return dut->tpm(); }

  fs::path root;
  std::unique_ptr<Dut> dut;
};

// Fails the test with the Status text when it is not ok.
#define REQUIRE_OK(expr)                                              \
  do {                                                                \
    ::tpmlab::Status require_ok_ = ::tpmlab::internal::AsStatus(expr); \
    BOOST_REQUIRE_MESSAGE(require_ok_.ok(), require_ok_.ToString());  \
  } while (0)

template <typename T>
T Require(Result<T> r) {
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(r).value();
}

}  // namespace tpmlab::testing
