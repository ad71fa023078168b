// The real tpmlab-agent binary in --stdio mode, its TPM a real swtpm behind
// a socketpair (--tpm-fd 3, bridged by the test as /dev/tpmrm0 would be),
// its event log a file: ESAPI, PCR reads and quotes through AgentTransport;
// the log in slices; a killed, a frozen and a garbled agent as clear errors.
#define BOOST_TEST_MODULE agent_transport
#include <boost/test/unit_test.hpp>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>
#include <thread>

#include "drivers/agent_transport.h"
#include "emulated.h"
#include "harness/tpm.h"
#include "harness/version.h"

namespace tpmlab::testing {
namespace {

using namespace std::chrono_literals;

const Bytes kGetRandom8 = {0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 8};

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

Bytes RandomBytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  Bytes out(n);
  for (auto& b : out) b = static_cast<uint8_t>(gen());
  return out;
}

// Carries TPM commands from the agent's --tpm-fd socket to the DUT's swtpm,
// one whole command, one whole response, as the kernel's /dev/tpmrm0 does.
class TpmBridge {
 public:
  TpmBridge(int fd, Transport& tpm) : fd_(fd), tpm_(tpm), thread_([this] { Run(); }) {}
  ~TpmBridge() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

 private:
  void Run() {
    Bytes command;
    uint8_t chunk[4096];
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = ::read(fd_, chunk, sizeof(chunk));
      if (n <= 0) return;  // the agent is gone
      command.insert(command.end(), chunk, chunk + n);
      if (command.size() < kTpmHeaderSize || command.size() < TpmHeaderSize(command)) continue;
      auto response = tpm_.Exchange(command);
      command.clear();
      if (!response.ok()) return;  // the agent's read then fails or times out
      if (::send(fd_, response->data(), response->size(), MSG_NOSIGNAL) < 0) return;
    }
  }

  int fd_;
  Transport& tpm_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// An agent process on pipes, its TPM an emulated DUT, its log a file.
struct AgentUnderTest {
  explicit AgentUnderTest(const Bytes& log = RandomBytes(3000, 1)) {
    REQUIRE_OK(dut->Startup({}));
    log_path = dut.root / "binary_bios_measurements";
    std::ofstream(log_path, std::ios::binary).write(reinterpret_cast<const char*>(log.data()),
                                                     static_cast<std::streamsize>(log.size()));
    int tpm_pair[2], to_agent[2], from_agent[2];
    BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tpm_pair) == 0);
    BOOST_REQUIRE(::pipe2(to_agent, O_CLOEXEC) == 0);
    BOOST_REQUIRE(::pipe2(from_agent, O_CLOEXEC) == 0);
    const std::string stderr_path = (dut.root / "agent.stderr").string();
    const int stderr_fd = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    BOOST_REQUIRE(stderr_fd >= 0);
    const std::string log_arg = log_path.string();
    pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
      // Only async-signal-safe calls here: the test has threads.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(to_agent[0], 0);
      ::dup2(from_agent[1], 1);
      ::dup2(stderr_fd, 2);
      if (tpm_pair[1] == 3) {
        ::fcntl(3, F_SETFD, 0);
      } else {
        ::dup2(tpm_pair[1], 3);
      }
      ::execl(TPMLAB_AGENT_BINARY, "tpmlab-agent", "--stdio", "--tpm-fd", "3", "--event-log", log_arg.c_str(),
              "--power-dry-run", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(stderr_fd);
    ::close(tpm_pair[1]);
    ::close(to_agent[0]);
    ::close(from_agent[1]);
    injector = ::dup(to_agent[1]);  // what a noisy line would add to the agent's input
    bridge = std::make_unique<TpmBridge>(tpm_pair[0], dut->trace());
    client = std::make_unique<AgentClient>(AgentChannel::FromFds(from_agent[0], to_agent[1], "agent stdio"));
    transport = std::make_unique<AgentTransport>(*client, "tpmlab-agent on stdio");
  }
  ~AgentUnderTest() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    ::close(injector);
    transport.reset();
    client.reset();
    bridge.reset();
  }
  void Inject(const Bytes& bytes) const {
    BOOST_REQUIRE(::write(injector, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  }
  std::string Stderr() const { return FileTail(dut.root / "agent.stderr", 20); }

  EmulatedDut dut;
  fs::path log_path;
  pid_t pid = -1;
  int injector = -1;
  std::unique_ptr<TpmBridge> bridge;
  std::unique_ptr<AgentClient> client;
  std::unique_ptr<AgentTransport> transport;
};

BOOST_AUTO_TEST_CASE(hello_describes_the_agent) {
  AgentUnderTest agent;
  auto hello = agent.client->WaitHello(30s);
  BOOST_REQUIRE_MESSAGE(hello.ok(), hello.status().ToString() + "\n" + agent.Stderr());
  BOOST_TEST(hello->agent == "tpmlab-agent");
  BOOST_TEST(hello->protocol == 1);
  BOOST_TEST(hello->version == kTpmlabVersion);
  BOOST_TEST(hello->reason == "start");
  BOOST_TEST(hello->tpm == "fd 3");
  BOOST_TEST(hello->log_size == 3000u);
  BOOST_TEST(hello->tpm_error == "");
  BOOST_TEST(!hello->kernel.empty());
  auto asked = agent.client->Hello(30s);
  BOOST_REQUIRE_MESSAGE(asked.ok(), asked.status().ToString());
  BOOST_TEST(asked->reason == "request");
  BOOST_TEST(Contains(agent.Stderr(), "tpmlab-agent: serving on stdio, TPM fd 3, log 3000 bytes"), agent.Stderr());
}

BOOST_AUTO_TEST_CASE(esapi_pcrs_and_quotes_work_through_the_agent) {
  AgentUnderTest agent;
  REQUIRE_OK(agent.client->WaitHello(30s));
  auto random = agent.transport->Exchange(kGetRandom8);
  BOOST_REQUIRE_MESSAGE(random.ok(), random.status().ToString());
  BOOST_TEST(TpmHeaderCode(*random) == 0u);
  BOOST_TEST(random->size() == 20u);

  auto tpm = Require(Tpm::Open(*agent.transport));
  const PcrValues through_agent = Require(tpm->ReadPcrs({HashAlg::kSha256}));
  const PcrValues direct = Require(agent.dut.tpm().ReadPcrs({HashAlg::kSha256}));
  BOOST_TEST((through_agent == direct));
  const KeyInfo ak = Require(tpm->EnsureAk(KeyType::kEccP256));
  const QuoteBlob quote = Require(tpm->Quote(ak, HashAlg::kSha256, 0xFF, RandomBytes(16, 2)));
  BOOST_TEST(!quote.attest.empty());
  BOOST_TEST(!quote.signature.empty());
}

BOOST_AUTO_TEST_CASE(event_log_comes_back_exactly_also_over_several_slices) {
  const Bytes big = RandomBytes(3 * kAgentMaxPayload + 1234, 3);
  AgentUnderTest agent(big);
  auto hello = agent.client->WaitHello(30s);
  BOOST_REQUIRE(hello.ok());
  BOOST_TEST(hello->log_size == big.size());
  auto log = agent.client->ReadEventLog(60s);
  BOOST_REQUIRE_MESSAGE(log.ok(), log.status().ToString());
  BOOST_TEST((*log == big));
  // Read again: the agent reads the file whole each time (securityfs has no size).
  const Bytes small = RandomBytes(10, 4);
  std::ofstream(agent.log_path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(small.data()), static_cast<std::streamsize>(small.size()));
  auto again = agent.client->ReadEventLog(60s);
  BOOST_REQUIRE_MESSAGE(again.ok(), again.status().ToString());
  BOOST_TEST((*again == small));
}

BOOST_AUTO_TEST_CASE(a_killed_agent_is_a_closed_channel) {
  AgentUnderTest agent;
  REQUIRE_OK(agent.client->WaitHello(30s));
  ::kill(agent.pid, SIGKILL);
  ::waitpid(agent.pid, nullptr, 0);
  agent.pid = -1;
  auto got = agent.transport->Exchange(kGetRandom8);
  BOOST_REQUIRE(!got.ok());
  BOOST_TEST(!got.status().timed_out());
  BOOST_TEST((got.status().layer() == Layer::kTransport));
  BOOST_TEST(Contains(got.status().message(), "agent channel closed (agent stdio"), got.status().message());
}

BOOST_AUTO_TEST_CASE(a_frozen_agent_times_out_naming_the_stage_then_recovers) {
  AgentUnderTest agent;
  REQUIRE_OK(agent.client->WaitHello(30s));
  agent.transport->set_command_timeout(1000ms);
  ::kill(agent.pid, SIGSTOP);
  auto got = agent.transport->Exchange(kGetRandom8);
  ::kill(agent.pid, SIGCONT);
  BOOST_REQUIRE(!got.ok());
  BOOST_TEST(got.status().timed_out());
  BOOST_TEST(Contains(got.status().message(), "no TPM response from the agent within 1000 ms"),
             got.status().message());
  BOOST_TEST(Contains(got.status().message(), "command 0x0000017b"), got.status().message());
  // The late response to the abandoned command is skipped as stale.
  agent.transport->set_command_timeout(30000ms);
  auto next = agent.transport->Exchange(kGetRandom8);
  BOOST_REQUIRE_MESSAGE(next.ok(), next.status().ToString());
  BOOST_TEST(TpmHeaderCode(*next) == 0u);
  auto hello = agent.client->Hello(30s);
  BOOST_TEST(hello.ok(), hello.status().ToString());
}

BOOST_AUTO_TEST_CASE(garbage_on_the_channel_is_a_clear_error_and_the_next_command_works) {
  AgentUnderTest agent;
  REQUIRE_OK(agent.client->WaitHello(30s));
  const std::string noise = "\r\n[   12.3] random console noise\r\n";
  agent.Inject(Bytes(noise.begin(), noise.end()));
  auto got = agent.transport->Exchange(kGetRandom8);
  BOOST_REQUIRE(!got.ok());
  BOOST_TEST(Contains(got.status().message(), "the agent could not read a request: skipped " +
                                                  std::to_string(noise.size()) + " bytes that are not a frame"),
             got.status().message());
  auto next = agent.transport->Exchange(kGetRandom8);
  BOOST_REQUIRE_MESSAGE(next.ok(), next.status().ToString());

  // A frame whose CRC is wrong: the agent names it and its offset.
  Bytes bad = Require(EncodeAgentFrame({AgentFrameType::kHelloRequest, 999, {}}));
  bad.back() ^= 0xFF;
  agent.Inject(bad);
  auto hello = agent.client->Hello(30s);
  BOOST_REQUIRE(!hello.ok());
  BOOST_TEST(Contains(hello.status().message(), "bad CRC in HELLO_REQUEST frame seq 999"), hello.status().message());
  BOOST_REQUIRE(agent.transport->Exchange(kGetRandom8).ok());
  BOOST_TEST(agent.client->Hello(30s).ok());
}

BOOST_AUTO_TEST_CASE(power_requests_are_acknowledged_and_a_suspend_ends_with_a_resume_hello) {
  AgentUnderTest agent;  // --power-dry-run: the test machine stays up
  REQUIRE_OK(agent.client->WaitHello(30s));
  REQUIRE_OK(agent.client->RequestPower(AgentPowerAction::kSuspend, 30s));
  auto hello = agent.client->WaitHello(30s);
  BOOST_REQUIRE_MESSAGE(hello.ok(), hello.status().ToString());
  BOOST_TEST(hello->reason == "resume");
  REQUIRE_OK(agent.client->RequestPower(AgentPowerAction::kReboot, 30s));
  REQUIRE_OK(agent.client->Hello(30s));  // one request at a time: the reboot's line is written by now
  BOOST_TEST(Contains(agent.Stderr(), "would reboot now"), agent.Stderr());
}

BOOST_AUTO_TEST_CASE(agent_refuses_bad_usage_with_exit_2) {
  const fs::path out = MakeTempDir("agent-usage") / "out.log";
  auto code = RunProgram({TPMLAB_AGENT_BINARY, "--stdio", "--tpm-fd", "77"}, out, 30s);
  BOOST_REQUIRE(code.ok());
  BOOST_TEST(*code == 2);
  BOOST_TEST(Contains(FileTail(out, 20), "--tpm-fd 77 is not an open file descriptor"), FileTail(out, 20));
  fs::remove_all(out.parent_path());
}

}  // namespace
}  // namespace tpmlab::testing
