// SwtpmControl against a fake swtpm control server: the exact request bytes
// of every command (swtpm_ioctls(3), tpm-reference.md §5.1-5.2), how replies
// are parsed, and how a misbehaving server turns into an error, never a hang.
#define BOOST_TEST_MODULE swtpm_control
#include <boost/test/unit_test.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <ostream>
#include <string>
#include <thread>

#include "drivers/swtpm_control.h"
#include "layer_printing.h"

namespace tpmlab {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// "00000002 00000001" -> bytes; spaces are for the reader.
Bytes Hex(std::string text) {
  text.erase(std::remove(text.begin(), text.end(), ' '), text.end());
  auto bytes = FromHex(text);
  BOOST_REQUIRE_MESSAGE(bytes.ok(), "bad hex in the test: " + text);
  return *bytes;
}

bool Readable(int fd, Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0))) > 0;
}

// A swtpm control channel that serves one connection per Serve() call on a
// unix socket in a fresh temp dir. The server thread only records; the test
// thread asserts after Join(), since Boost.Test assertions are not thread-safe.
class FakeCtrlServer {
 public:
  enum class Then {
    kReply,                 // send the reply, then close
    kCloseWithoutReply,     // read the request, then hang up
    kStaySilent,            // read the request, say nothing until the client gives up
  };

  FakeCtrlServer() {
    char tmpl[] = "/tmp/tpmlab-ctrl-XXXXXX";
    BOOST_REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/ctrl.sock";
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BOOST_REQUIRE(listen_fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    BOOST_REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    BOOST_REQUIRE(::listen(listen_fd_, 4) == 0);
  }

  ~FakeCtrlServer() {
    if (thread_.joinable()) thread_.join();
    ::close(listen_fd_);
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  FakeCtrlServer(const FakeCtrlServer&) = delete;
  FakeCtrlServer& operator=(const FakeCtrlServer&) = delete;

  Endpoint endpoint() const { return Endpoint{"", 0, path_}; }
  int connections() const { return connections_; }

  // Accepts one connection, reads `request_size` bytes (and whatever more the
  // client sent with them), then acts as `then` says.
  void Serve(size_t request_size, Bytes reply, Then then = Then::kReply) {
    BOOST_REQUIRE(!thread_.joinable());
    received_.clear();
    thread_ = std::thread([this, request_size, reply = std::move(reply), then] {
      Run(request_size, reply, then);
    });
  }

  // Waits for the served connection to end; returns what the client sent.
  Bytes Join() {
    if (thread_.joinable()) thread_.join();
    return received_;
  }

 private:
  void Run(size_t request_size, const Bytes& reply, Then then) {
    const auto deadline = Clock::now() + 5s;
    if (!Readable(listen_fd_, deadline)) return;  // the client never came
    const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    ++connections_;
    uint8_t buf[4096];
    while (received_.size() < request_size && Readable(c, deadline)) {
      const size_t want = std::min(sizeof(buf), request_size - received_.size());
      const ssize_t n = ::recv(c, buf, want, 0);
      if (n <= 0) break;
      received_.insert(received_.end(), buf, buf + n);
    }
    // A client that sends more than the command takes is wrong too: keep it.
    while (then != Then::kStaySilent && Readable(c, Clock::now() + 10ms)) {
      const ssize_t n = ::recv(c, buf, sizeof(buf), MSG_DONTWAIT);
      if (n <= 0) break;
      received_.insert(received_.end(), buf, buf + n);
    }
    switch (then) {
      case Then::kReply:
        if (!reply.empty()) (void)::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
        break;
      case Then::kCloseWithoutReply:
        break;
      case Then::kStaySilent:
        // Hold the connection until the client hangs up (recv returns 0).
        while (Readable(c, deadline) && ::recv(c, buf, sizeof(buf), 0) > 0) {
        }
        break;
    }
    ::close(c);
  }

  std::string dir_, path_;
  int listen_fd_ = -1;
  std::thread thread_;
  Bytes received_;
  int connections_ = 0;
};

struct Fixture {
  FakeCtrlServer server;
  SwtpmControl control{server.endpoint(), 2000ms};
};

const Bytes kOk = {0, 0, 0, 0};

int64_t Millis(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(swtpm_control, Fixture)

BOOST_AUTO_TEST_CASE(init_deleting_volatile_state_sends_flag_1) {
  server.Serve(8, kOk);
  Status s = control.Init(true);
  BOOST_TEST(ToHex(server.Join()) == "0000000200000001");
  BOOST_TEST(s.ok(), s.ToString());
}

BOOST_AUTO_TEST_CASE(init_keeping_volatile_state_sends_flag_0) {
  server.Serve(8, kOk);
  Status s = control.Init(false);
  BOOST_TEST(ToHex(server.Join()) == "0000000200000000");
  BOOST_TEST(s.ok(), s.ToString());
}

BOOST_AUTO_TEST_CASE(set_locality_sends_one_byte) {
  server.Serve(5, kOk);
  Status s = control.SetLocality(3);
  BOOST_TEST(ToHex(server.Join()) == "0000000503");
  BOOST_TEST(s.ok(), s.ToString());
}

BOOST_AUTO_TEST_CASE(reset_tpm_established_sends_the_locality) {
  server.Serve(5, kOk);
  Status s = control.ResetTpmEstablished(3);
  BOOST_TEST(ToHex(server.Join()) == "0000000b03");
  BOOST_TEST(s.ok(), s.ToString());
}

BOOST_AUTO_TEST_CASE(commands_without_a_body_send_only_their_code) {
  struct Case {
    const char* name;
    Status (SwtpmControl::*call)();
    const char* wire;
  };
  const Case cases[] = {
      {"Shutdown", &SwtpmControl::Shutdown, "00000003"},
      {"HashStart", &SwtpmControl::HashStart, "00000006"},
      {"HashEnd", &SwtpmControl::HashEnd, "00000008"},
      {"CancelTpmCommand", &SwtpmControl::CancelTpmCommand, "00000009"},
      {"StoreVolatile", &SwtpmControl::StoreVolatile, "0000000a"},
      {"Stop", &SwtpmControl::Stop, "0000000e"},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      server.Serve(4, kOk);
      Status s = (control.*c.call)();
      BOOST_TEST(ToHex(server.Join()) == c.wire);
      BOOST_TEST(s.ok(), s.ToString());
    }
  }
}

BOOST_AUTO_TEST_CASE(hash_data_is_length_prefixed) {
  server.Serve(4 + 4 + 5, kOk);
  Status s = control.HashData(AsBytes("HCRTM"));
  BOOST_TEST(ToHex(server.Join()) == "00000007" "00000005" "484352544d");
  BOOST_TEST(s.ok(), s.ToString());
}

BOOST_AUTO_TEST_CASE(every_call_opens_its_own_connection) {
  server.Serve(4, kOk);
  BOOST_TEST(control.HashStart().ok());
  server.Join();
  server.Serve(4 + 4 + 1, kOk);
  BOOST_TEST(control.HashData(Hex("aa")).ok());
  server.Join();
  server.Serve(4, kOk);
  BOOST_TEST(control.HashEnd().ok());
  server.Join();
  BOOST_TEST(server.connections() == 3);
}

BOOST_AUTO_TEST_CASE(get_capability_parses_the_8_byte_reply) {
  server.Serve(4, Hex("00000000 00007fff"));
  auto caps = control.GetCapability();
  BOOST_TEST(ToHex(server.Join()) == "00000001");
  BOOST_REQUIRE_MESSAGE(caps.ok(), caps.status().ToString());
  BOOST_TEST(*caps == 0x7fffu);
}

BOOST_AUTO_TEST_CASE(get_tpm_established_reads_the_bit) {
  server.Serve(4, Hex("00000000 01000000"));
  auto established = control.GetTpmEstablished();
  BOOST_TEST(ToHex(server.Join()) == "00000004");
  BOOST_REQUIRE_MESSAGE(established.ok(), established.status().ToString());
  BOOST_TEST(*established);

  server.Serve(4, Hex("00000000 00000000"));
  established = control.GetTpmEstablished();
  server.Join();
  BOOST_REQUIRE(established.ok());
  BOOST_TEST(!*established);
}

BOOST_AUTO_TEST_CASE(get_config_returns_the_flags) {
  server.Serve(4, Hex("00000000 00000003"));
  auto flags = control.GetConfig();
  BOOST_TEST(ToHex(server.Join()) == "0000000f");
  BOOST_REQUIRE_MESSAGE(flags.ok(), flags.status().ToString());
  BOOST_TEST(*flags == 3u);
}

BOOST_AUTO_TEST_CASE(non_zero_result_is_an_emulator_error_naming_command_and_code) {
  server.Serve(8, Hex("0000000a"));  // TPM_BAD_ORDINAL
  Status s = control.Init(true);
  server.Join();
  BOOST_TEST(!s.ok());
  BOOST_TEST(s.layer() == Layer::kEmulator);
  BOOST_TEST(s.message().find("CMD_INIT") != std::string::npos, s.message());
  BOOST_TEST(s.message().find("TPM_BAD_ORDINAL") != std::string::npos, s.message());
}

BOOST_AUTO_TEST_CASE(non_zero_result_fails_a_call_that_expects_a_body) {
  // The body is not sent on failure; the client must not wait for it.
  server.Serve(4 + 4, Hex("00000003"));  // TPM_BAD_PARAMETER
  const auto started = Clock::now();
  auto sizes = control.SetBufferSize(0);
  server.Join();
  BOOST_TEST(!sizes.ok());
  BOOST_TEST(sizes.status().layer() == Layer::kEmulator);
  BOOST_TEST(sizes.status().message().find("CMD_SET_BUFFERSIZE") != std::string::npos);
  BOOST_TEST(sizes.status().message().find("TPM_BAD_PARAMETER") != std::string::npos);
  BOOST_TEST(Millis(Clock::now() - started) < 1000);
}

BOOST_AUTO_TEST_CASE(get_state_blob_sends_flags_type_offset_and_parses_the_blob) {
  server.Serve(16, Hex("00000000 00000002 00000005 00000005 0102030405"));
  auto blob = control.GetStateBlob(StateBlobType::kVolatile, /*decrypted=*/true);
  BOOST_TEST(ToHex(server.Join()) == "0000000c" "00000001" "00000002" "00000000");
  BOOST_REQUIRE_MESSAGE(blob.ok(), blob.status().ToString());
  BOOST_TEST(blob->flags == 2u);
  BOOST_TEST(ToHex(blob->data) == "0102030405");
}

BOOST_AUTO_TEST_CASE(get_state_blob_of_permanent_state_without_decryption) {
  server.Serve(16, Hex("00000000 00000000 00000000 00000000"));
  auto blob = control.GetStateBlob(StateBlobType::kPermanent);
  BOOST_TEST(ToHex(server.Join()) == "0000000c" "00000000" "00000001" "00000000");
  BOOST_REQUIRE_MESSAGE(blob.ok(), blob.status().ToString());
  BOOST_TEST(blob->flags == 0u);
  BOOST_TEST(blob->data.empty());
}

BOOST_AUTO_TEST_CASE(get_state_blob_rejects_an_implausible_length) {
  server.Serve(16, Hex("00000000 00000000 7fffffff 7fffffff"));
  auto blob = control.GetStateBlob(StateBlobType::kPermanent);
  server.Join();
  BOOST_REQUIRE(!blob.ok());
  BOOST_TEST(blob.status().layer() == Layer::kEmulator);
  BOOST_TEST(blob.status().message().find("implausible") != std::string::npos,
             blob.status().message());
}

BOOST_AUTO_TEST_CASE(get_state_blob_shorter_than_announced_is_a_transport_error) {
  server.Serve(16, Hex("00000000 00000000 00000010 00000010 0102"));
  auto blob = control.GetStateBlob(StateBlobType::kSaveState);
  server.Join();
  BOOST_REQUIRE(!blob.ok());
  BOOST_TEST(blob.status().layer() == Layer::kTransport, blob.status().ToString());
}

BOOST_AUTO_TEST_CASE(set_state_blob_sends_flags_type_length_and_data) {
  server.Serve(4 + 12 + 4, kOk);
  Status s = control.SetStateBlob(StateBlobType::kPermanent, Hex("deadbeef"));
  BOOST_TEST(ToHex(server.Join()) == "0000000d" "00000000" "00000001" "00000004" "deadbeef");
  BOOST_TEST(s.ok(), s.ToString());

  server.Serve(4 + 12 + 2, kOk);
  s = control.SetStateBlob(StateBlobType::kVolatile, Hex("cafe"), /*encrypted=*/true);
  BOOST_TEST(ToHex(server.Join()) == "0000000d" "00000002" "00000002" "00000002" "cafe");
  BOOST_TEST(s.ok(), s.ToString());
}

BOOST_AUTO_TEST_CASE(set_buffer_size_query_parses_size_min_max) {
  server.Serve(8, Hex("00000000 00001000 0000000a 00001000"));
  auto sizes = control.SetBufferSize(0);
  BOOST_TEST(ToHex(server.Join()) == "00000011" "00000000");
  BOOST_REQUIRE_MESSAGE(sizes.ok(), sizes.status().ToString());
  BOOST_TEST(sizes->size == 4096u);
  BOOST_TEST(sizes->min == 10u);
  BOOST_TEST(sizes->max == 4096u);
}

BOOST_AUTO_TEST_CASE(get_info_sends_flags_and_strips_the_trailing_nul) {
  const std::string json = R"({"TPMSpecification":{"family":"2.0"}})";
  ByteWriter reply;
  reply.U32(0).U32(static_cast<uint32_t>(json.size() + 1)).U32(static_cast<uint32_t>(json.size() + 1));
  reply.Append(AsBytes(json)).U8(0);
  server.Serve(4 + 8 + 8, reply.Take());
  auto info = control.GetInfo(kInfoTpmSpecification);
  BOOST_TEST(ToHex(server.Join()) == "00000012" "0000000000000001" "00000000" "00000000");
  BOOST_REQUIRE_MESSAGE(info.ok(), info.status().ToString());
  BOOST_TEST(*info == json);
  BOOST_TEST(info->size() == json.size());
}

BOOST_AUTO_TEST_CASE(get_info_rejects_a_length_beyond_the_total) {
  server.Serve(4 + 8 + 8, Hex("00000000 00000004 ffffffff"));
  auto info = control.GetInfo(kInfoTpmAttributes);
  server.Join();
  BOOST_REQUIRE(!info.ok());
  BOOST_TEST(info.status().message().find("implausible") != std::string::npos,
             info.status().message());
}

BOOST_AUTO_TEST_CASE(server_closing_before_the_reply_is_a_transport_error) {
  server.Serve(8, {}, FakeCtrlServer::Then::kCloseWithoutReply);
  const auto started = Clock::now();
  Status s = control.Init(true);
  server.Join();
  BOOST_TEST(!s.ok());
  BOOST_TEST(s.layer() == Layer::kTransport, s.ToString());
  BOOST_TEST(!s.timed_out());
  BOOST_TEST(s.message().find("CMD_INIT") != std::string::npos, s.message());
  BOOST_TEST(Millis(Clock::now() - started) < 1000);
}

BOOST_AUTO_TEST_CASE(server_closing_halfway_through_the_reply_is_a_transport_error) {
  server.Serve(4, Hex("00000000 0000"));  // 6 of the 8 bytes
  auto caps = control.GetCapability();
  server.Join();
  BOOST_REQUIRE(!caps.ok());
  BOOST_TEST(caps.status().layer() == Layer::kTransport, caps.status().ToString());
}

BOOST_AUTO_TEST_CASE(silent_server_times_out_instead_of_hanging) {
  SwtpmControl impatient(server.endpoint(), 500ms);
  server.Serve(4, {}, FakeCtrlServer::Then::kStaySilent);
  const auto started = Clock::now();
  Status s = impatient.Stop();
  const auto took = Clock::now() - started;
  server.Join();
  BOOST_TEST(!s.ok());
  BOOST_TEST(s.layer() == Layer::kTransport, s.ToString());
  BOOST_TEST(s.timed_out(), s.ToString());
  BOOST_TEST(Millis(took) >= 400);
  BOOST_TEST(Millis(took) < 2000);
}

BOOST_AUTO_TEST_CASE(no_server_is_a_transport_error_naming_the_command) {
  SwtpmControl nobody(Endpoint{"", 0, server.endpoint().path + ".absent"}, 500ms);
  Status s = nobody.Init(true);
  BOOST_TEST(!s.ok());
  BOOST_TEST(s.layer() == Layer::kTransport, s.ToString());
  BOOST_TEST(s.message().find("CMD_INIT") != std::string::npos, s.message());
}

BOOST_AUTO_TEST_CASE(result_names) {
  BOOST_TEST(SwtpmResultName(10).find("TPM_BAD_ORDINAL") == 0u);
  BOOST_TEST(SwtpmResultName(61) == "TPM_BAD_LOCALITY");
  BOOST_TEST(SwtpmResultName(12345) == "result 12345");
  BOOST_TEST(std::string(SwtpmCtrlName(SwtpmCtrl::kGetStateBlob)) == "CMD_GET_STATEBLOB");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace tpmlab
