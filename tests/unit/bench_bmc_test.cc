// Bench files with power through a BMC (ipmi, redfish): the keys each kind
// takes, the password never in the file, errors at file:line:column.
#define BOOST_TEST_MODULE bench_bmc
#include <boost/test/unit_test.hpp>

#include <string>

#include "harness/bench.h"

namespace tpmlab {
namespace {

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

const std::string kDut = "name: m\ndut: {transport: tis-spi-ftdi}\n";

Result<Bench> Parse(const std::string& power) { return ParseBench(kDut + power, "/benches/b.yaml"); }

std::string ErrorOf(const std::string& power) {
  auto b = Parse(power);
  BOOST_REQUIRE_MESSAGE(!b.ok(), "parsed, expected an error:\n" + power);
  BOOST_TEST((b.status().layer() == Layer::kScenario));
  return b.status().message();
}

BOOST_AUTO_TEST_CASE(ipmi_power_with_defaults) {
  auto b = Parse("power: {kind: ipmi, host: 10.0.0.5, user: admin, password_file: secrets/bmc.pw}\n");
  BOOST_REQUIRE_MESSAGE(b.ok(), b.status().ToString());
  BOOST_TEST((b->power.kind == PowerKind::kIpmi));
  BOOST_TEST(std::string(PowerKindName(b->power.kind)) == "ipmi");
  const BenchBmc& bmc = b->power.bmc;
  BOOST_TEST(bmc.host == "10.0.0.5");
  BOOST_TEST(bmc.port == 623);
  BOOST_TEST(bmc.cipher == 3u);
  BOOST_TEST(bmc.interface == "lanplus");
  BOOST_TEST(bmc.password_file == "/benches/secrets/bmc.pw");  // relative to the bench file
  BOOST_TEST(bmc.Endpoint(false) == "10.0.0.5:623");
  const std::string json = BenchSummaryJson(*b);
  BOOST_TEST(Contains(json, "\"bmc\":\"10.0.0.5:623\""), json);
}

BOOST_AUTO_TEST_CASE(ipmi_power_with_every_key) {
  auto b = Parse("power:\n  kind: ipmi\n  host: 127.0.0.1\n  port: 9623\n  user: op\n  password_env: BMC_PW\n"
                 "  cipher: 17\n  interface: lan\n  timeout_s: 5\n  off_ms: 3000\n");
  BOOST_REQUIRE_MESSAGE(b.ok(), b.status().ToString());
  BOOST_TEST(b->power.bmc.port == 9623);
  BOOST_TEST(b->power.bmc.password_env == "BMC_PW");
  BOOST_TEST(b->power.bmc.cipher == 17u);
  BOOST_TEST(b->power.bmc.interface == "lan");
  BOOST_TEST(b->power.bmc.timeout_s == 5u);
  BOOST_TEST(b->power.off_ms == 3000u);
}

BOOST_AUTO_TEST_CASE(redfish_power) {
  auto b = Parse("power: {kind: redfish, url: https://bmc.lab:8443, system: /redfish/v1/Systems/2, user: root,\n"
                 "        password_env: RF_PW, ca_file: /etc/lab-ca.pem}\n");
  BOOST_REQUIRE_MESSAGE(b.ok(), b.status().ToString());
  BOOST_TEST((b->power.kind == PowerKind::kRedfish));
  BOOST_TEST(b->power.bmc.url == "https://bmc.lab:8443");
  BOOST_TEST(b->power.bmc.system == "/redfish/v1/Systems/2");
  BOOST_TEST(b->power.bmc.verify_tls);
  BOOST_TEST(b->power.bmc.ca_file == "/etc/lab-ca.pem");

  auto insecure = Parse("power: {kind: redfish, url: https://bmc, user: root, password_env: RF_PW, verify_tls: false}\n");
  BOOST_REQUIRE_MESSAGE(insecure.ok(), insecure.status().ToString());
  BOOST_TEST(!insecure->power.bmc.verify_tls);
  BOOST_TEST(Contains(BenchSummaryJson(*insecure), "not verified"));
}

BOOST_AUTO_TEST_CASE(a_password_in_the_bench_file_is_refused_where_it_is) {
  const std::string e = ErrorOf("power:\n  kind: ipmi\n  host: h\n  user: admin\n  password: hunter2\n");
  BOOST_TEST(Contains(e, "/benches/b.yaml:7:13"), e);
  BOOST_TEST(Contains(e, "password_file"), e);
  BOOST_TEST(Contains(e, "password_env"), e);
  BOOST_TEST(!Contains(e, "hunter2"), e);
  const std::string r = ErrorOf("power: {kind: redfish, url: https://b, user: u, password: hunter2}\n");
  BOOST_TEST(Contains(r, "never goes in a bench file"), r);
  BOOST_TEST(!Contains(r, "hunter2"), r);
}

BOOST_AUTO_TEST_CASE(wrong_and_missing_keys) {
  BOOST_TEST(Contains(ErrorOf("power: {kind: ipmi, host: h, user: u}\n"), "exactly one of password_file"));
  BOOST_TEST(Contains(ErrorOf("power: {kind: ipmi, host: h, user: u, password_file: f, password_env: V}\n"),
                      "exactly one"));
  BOOST_TEST(Contains(ErrorOf("power: {kind: ipmi, user: u, password_env: V}\n"), "needs host"));
  BOOST_TEST(Contains(ErrorOf("power: {kind: ipmi, host: h, password_env: V}\n"), "needs user"));
  // The other kind's keys, and keys of no kind, are named.
  const std::string url = ErrorOf("power: {kind: ipmi, host: h, user: u, password_env: V, url: https://x}\n");
  BOOST_TEST(Contains(url, "b.yaml:3:"), url);
  BOOST_TEST(Contains(url, "power.url does not apply to kind: ipmi"), url);
  BOOST_TEST(Contains(ErrorOf("power: {kind: redfish, url: https://x, user: u, password_env: V, cipher: 3}\n"),
                      "power.cipher does not apply to kind: redfish"));
  BOOST_TEST(Contains(ErrorOf("power: {kind: ipmi, host: h, user: u, password_env: V, colour: red}\n"), "colour"));
  BOOST_TEST(Contains(ErrorOf("power: {kind: ipmi, host: h, user: u, password_env: V, port: 70000}\n"), "1..65535"));
  BOOST_TEST(Contains(ErrorOf("power: {kind: ipmi, host: h, user: u, password_env: V, interface: open}\n"),
                      "lanplus or lan"));
  BOOST_TEST(Contains(ErrorOf("power: {kind: redfish, url: bmc.lab, user: u, password_env: V}\n"), "https://"));
  BOOST_TEST(Contains(ErrorOf("power: {kind: redfish, url: https://b, user: u, password_env: V, system: Systems/1}\n"),
                      "ComputerSystem's path"));
  BOOST_TEST(Contains(ErrorOf("power: {kind: redfish, url: https://b, user: u, password_env: V, verify_tls: false, "
                              "ca_file: c.pem}\n"),
                      "contradict"));
  // A relay's keys stay the relay's.
  BOOST_TEST(Contains(ErrorOf("power: {kind: command, on_command: a, off_command: b, user: u}\n"),
                      "power.user does not apply to kind: command"));
}

}  // namespace
}  // namespace tpmlab
