// The tpmlab-agent protocol: frames, the resyncing reader, payload codecs,
// and the harness-side AgentClient against a fake agent on a pipe pair
// (replies are written before the client asks, so no thread and no timing).
#define BOOST_TEST_MODULE agent_protocol
#include <boost/test/unit_test.hpp>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "drivers/agent_protocol.h"
#include "drivers/agent_transport.h"
#include "layer_printing.h"

namespace tpmlab {
namespace {

using namespace std::chrono_literals;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

Bytes Encode(AgentFrameType type, uint16_t seq, Bytes payload = {}) {
  auto bytes = EncodeAgentFrame(AgentFrame{type, seq, std::move(payload)});
  BOOST_REQUIRE_MESSAGE(bytes.ok(), bytes.status().ToString());
  return *bytes;
}

Bytes Text(std::string_view text) {
  ByteView b = AsBytes(text);
  return Bytes(b.begin(), b.end());
}

Bytes Concat(std::initializer_list<Bytes> parts) {
  Bytes all;
  for (const Bytes& part : parts) all.insert(all.end(), part.begin(), part.end());
  return all;
}

// Every frame the reader yields until it needs more bytes, and every error.
struct Drained {
  std::vector<AgentFrame> frames;
  std::vector<Status> errors;
};
Drained Drain(AgentFrameReader& reader) {
  Drained out;
  for (;;) {
    auto next = reader.Next();
    if (!next.ok()) {
      out.errors.push_back(next.status());
      continue;
    }
    if (!next->has_value()) return out;
    out.frames.push_back(std::move(**next));
  }
}

const Bytes kGetRandom8 = {0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 8};
const Bytes kRandomResponse = {0x80, 0x01, 0, 0, 0, 0x14, 0, 0, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};

BOOST_AUTO_TEST_CASE(crc32_is_the_ieee_one) {
  // The check value of CRC-32/ISO-HDLC (zlib's crc32).
  BOOST_TEST(Crc32(AsBytes("123456789")) == 0xCBF43926u);
  BOOST_TEST(Crc32({}) == 0u);
}

BOOST_AUTO_TEST_CASE(frame_layout_is_big_endian_with_trailing_crc) {
  const Bytes frame = Encode(AgentFrameType::kTpmCommand, 0x1234, {0xAA, 0xBB});
  const Bytes head = {'T', 'P', 'L', 'A', 1, 0x02, 0x12, 0x34, 0, 0, 0, 2, 0xAA, 0xBB};
  BOOST_REQUIRE(frame.size() == head.size() + 4);
  BOOST_TEST(std::equal(head.begin(), head.end(), frame.begin()));
  const uint32_t crc = Crc32(ByteView(frame.data(), head.size()));
  BOOST_TEST(frame[14] == (crc >> 24));
  BOOST_TEST(frame[17] == (crc & 0xFF));
}

BOOST_AUTO_TEST_CASE(every_frame_type_round_trips) {
  const AgentFrameType types[] = {AgentFrameType::kHelloRequest, AgentFrameType::kHello,
                                  AgentFrameType::kTpmCommand,   AgentFrameType::kTpmResponse,
                                  AgentFrameType::kLogRead,      AgentFrameType::kLogData,
                                  AgentFrameType::kPower,        AgentFrameType::kPowerAck,
                                  AgentFrameType::kError};
  AgentFrameReader reader;
  uint16_t seq = 1;
  for (AgentFrameType type : types) {
    const Bytes payload(static_cast<size_t>(seq) * 7, static_cast<uint8_t>(seq));
    reader.Feed(Encode(type, seq, payload));
    Drained got = Drain(reader);
    BOOST_REQUIRE(got.errors.empty());
    BOOST_REQUIRE(got.frames.size() == 1u);
    BOOST_TEST((got.frames[0].type == type));
    BOOST_TEST(got.frames[0].seq == seq);
    BOOST_TEST(got.frames[0].payload == payload);
    ++seq;
  }
  // The largest payload passes; one byte more is refused when encoding.
  reader.Feed(Encode(AgentFrameType::kLogData, 9, Bytes(kAgentMaxPayload, 0x5A)));
  BOOST_TEST(Drain(reader).frames.at(0).payload.size() == kAgentMaxPayload);
  BOOST_TEST(!EncodeAgentFrame({AgentFrameType::kLogData, 9, Bytes(kAgentMaxPayload + 1)}).ok());
}

BOOST_AUTO_TEST_CASE(payload_codecs_round_trip) {
  AgentHello hello;
  hello.agent = "tpmlab-agent";
  hello.protocol = 1;
  hello.version = "0.1.0";
  hello.kernel = "6.1.0-cloud-amd64";
  hello.tpm = "/dev/tpmrm0";
  hello.log_size = 31337;
  hello.boot_id = "d1593f2d";
  hello.uptime_ms = 14250;
  hello.reason = "resume";
  hello.tpm_error = "line\nbreak";  // a newline in a value must not start a key
  const Bytes encoded = EncodeAgentHello(hello);
  AgentHello back = [&] {
    auto decoded = DecodeAgentHello(encoded);
    BOOST_REQUIRE_MESSAGE(decoded.ok(), decoded.status().ToString());
    return *decoded;
  }();
  BOOST_TEST(back.agent == hello.agent);
  BOOST_TEST(back.protocol == 1);
  BOOST_TEST(back.kernel == hello.kernel);
  BOOST_TEST(back.tpm == hello.tpm);
  BOOST_TEST(back.log_size == 31337u);
  BOOST_TEST(back.uptime_ms == 14250u);
  BOOST_TEST(back.reason == "resume");
  BOOST_TEST(back.tpm_error == "line break");
  BOOST_TEST(back.raw == std::string(encoded.begin(), encoded.end()));
  // Unknown keys are ignored; a bad number names its key and line.
  BOOST_TEST(DecodeAgentHello(AsBytes("agent=x\nfuture=1\n")).ok());
  auto bad = DecodeAgentHello(AsBytes("agent=x\nlog_size=12k\n"));
  BOOST_REQUIRE(!bad.ok());
  BOOST_TEST(Contains(bad.status().message(), "log_size '12k' is not a number"), bad.status().message());
  BOOST_TEST(bad.status().location().line.value_or(0) == 2u);

  auto slice = DecodeAgentLogRead(EncodeAgentLogRead({70000, 65536}));
  BOOST_REQUIRE(slice.ok());
  BOOST_TEST(slice->offset == 70000u);
  BOOST_TEST(slice->max == 65536u);
  BOOST_TEST(!DecodeAgentLogRead(Bytes(7)).ok());

  for (auto action : {AgentPowerAction::kReboot, AgentPowerAction::kPowerOff, AgentPowerAction::kSuspend}) {
    auto decoded = DecodeAgentPower(EncodeAgentPower(action));
    BOOST_REQUIRE(decoded.ok());
    BOOST_TEST((*decoded == action));
  }
  BOOST_TEST(!DecodeAgentPower(Bytes{4}).ok());
  BOOST_TEST(!DecodeAgentPower(Bytes{}).ok());
}

BOOST_AUTO_TEST_CASE(garbage_before_and_between_frames_is_skipped_and_counted) {
  const Bytes noise = {'[', ' ', '1', '.', '2', ']', ' ', 'T', 'P', 'L', '\n'};  // ends like a magic's start
  const Bytes a = Encode(AgentFrameType::kHello, 0, {'x'});
  const Bytes b = Encode(AgentFrameType::kPowerAck, 3);
  AgentFrameReader reader;
  reader.Feed(Concat({noise, a, noise, noise, b}));
  Drained got = Drain(reader);
  BOOST_TEST(got.errors.empty());
  BOOST_REQUIRE(got.frames.size() == 2u);
  BOOST_TEST((got.frames[1].type == AgentFrameType::kPowerAck));
  BOOST_TEST(reader.skipped_total() == 3 * noise.size());
  auto skipped = reader.TakeSkipped();
  BOOST_REQUIRE(skipped.has_value());
  BOOST_TEST(skipped->offset == 0u);
  BOOST_TEST(!reader.TakeSkipped().has_value());
}

BOOST_AUTO_TEST_CASE(a_frame_split_at_every_byte_boundary_decodes_once) {
  const Bytes frame = Encode(AgentFrameType::kTpmResponse, 42, kRandomResponse);
  for (size_t cut = 0; cut <= frame.size(); ++cut) {
    AgentFrameReader reader;
    reader.Feed(ByteView(frame.data(), cut));
    Drained first = Drain(reader);
    reader.Feed(ByteView(frame.data() + cut, frame.size() - cut));
    Drained second = Drain(reader);
    BOOST_TEST(first.errors.empty());
    BOOST_TEST(second.errors.empty());
    BOOST_REQUIRE_MESSAGE(first.frames.size() + second.frames.size() == 1u, "cut at " << cut);
    const AgentFrame& f = first.frames.empty() ? second.frames[0] : first.frames[0];
    BOOST_TEST(f.payload == kRandomResponse);
    BOOST_TEST(reader.skipped_total() == 0u);
  }
  // And fed one byte at a time.
  AgentFrameReader reader;
  size_t frames = 0;
  for (uint8_t byte : frame) {
    reader.Feed(ByteView(&byte, 1));
    frames += Drain(reader).frames.size();
  }
  BOOST_TEST(frames == 1u);
}

BOOST_AUTO_TEST_CASE(bad_crc_names_the_offset_then_resyncs) {
  const Bytes good1 = Encode(AgentFrameType::kLogData, 1, {1, 2, 3});
  Bytes bad = Encode(AgentFrameType::kTpmResponse, 2, kRandomResponse);
  bad[15] ^= 0x01;  // one payload bit
  const Bytes good2 = Encode(AgentFrameType::kLogData, 3, {4});
  AgentFrameReader reader;
  reader.Feed(Concat({good1, bad, good2}));
  Drained got = Drain(reader);
  BOOST_REQUIRE(got.errors.size() == 1u);
  const Status& error = got.errors[0];
  BOOST_TEST((error.layer() == Layer::kTransport));
  BOOST_TEST(error.offset().value_or(0) == good1.size());
  BOOST_TEST(Contains(error.message(), "bad CRC"), error.message());
  BOOST_TEST(Contains(error.message(), "byte " + std::to_string(good1.size())), error.message());
  BOOST_REQUIRE(got.frames.size() == 2u);
  BOOST_TEST(got.frames[1].seq == 3);
  // The rest of the bad frame is part of that error, not separate garbage.
  BOOST_TEST(!reader.TakeSkipped().has_value());
}

BOOST_AUTO_TEST_CASE(oversized_length_and_bad_version_are_errors_that_resync) {
  Bytes oversized = Encode(AgentFrameType::kLogData, 1);
  oversized[8] = 0x00, oversized[9] = 0x01, oversized[10] = 0x00, oversized[11] = 0x01;  // 65537
  Bytes version2 = Encode(AgentFrameType::kHello, 0);
  version2[4] = 2;
  const Bytes good = Encode(AgentFrameType::kPowerAck, 5);
  AgentFrameReader reader;
  reader.Feed(Concat({oversized, version2, good}));
  Drained got = Drain(reader);
  BOOST_REQUIRE(got.errors.size() == 2u);
  BOOST_TEST(Contains(got.errors[0].message(), "payload length 65537 over the 65536-byte maximum"),
             got.errors[0].message());
  BOOST_TEST(got.errors[0].offset().value_or(99) == 0u);
  BOOST_TEST(Contains(got.errors[1].message(), "protocol version 2"), got.errors[1].message());
  BOOST_TEST(got.errors[1].offset().value_or(0) == oversized.size());
  BOOST_REQUIRE(got.frames.size() == 1u);
  BOOST_TEST(got.frames[0].seq == 5);
}

// A fake agent: the test writes its frames into one pipe and reads the
// client's requests from the other.
struct FakeAgent {
  FakeAgent() {
    int to_client[2], to_agent[2];
    BOOST_REQUIRE(::pipe2(to_client, O_CLOEXEC) == 0);
    BOOST_REQUIRE(::pipe2(to_agent, O_CLOEXEC) == 0);
    agent_out = to_client[1];
    agent_in = to_agent[0];
    client = std::make_unique<AgentClient>(AgentChannel::FromFds(to_client[0], to_agent[1], "fake agent pipe"));
  }
  ~FakeAgent() {
    if (agent_out >= 0) ::close(agent_out);
    ::close(agent_in);
  }
  void Say(const Bytes& bytes) { BOOST_REQUIRE(::write(agent_out, bytes.data(), bytes.size()) == ssize_t(bytes.size())); }
  void Hangup() {
    ::close(agent_out);
    agent_out = -1;
  }
  // The requests the client sent so far.
  std::vector<AgentFrame> Requests() {
    ::fcntl(agent_in, F_SETFL, O_NONBLOCK);
    uint8_t chunk[4096];
    ssize_t n;
    while ((n = ::read(agent_in, chunk, sizeof(chunk))) > 0) reader.Feed(ByteView(chunk, size_t(n)));
    return Drain(reader).frames;
  }

  int agent_out = -1;
  int agent_in = -1;
  AgentFrameReader reader;
  std::unique_ptr<AgentClient> client;
};

Bytes HelloPayload(const std::string& reason) {
  AgentHello hello;
  hello.agent = "tpmlab-agent";
  hello.protocol = 1;
  hello.reason = reason;
  return EncodeAgentHello(hello);
}

BOOST_AUTO_TEST_CASE(replies_match_their_seq_and_stale_ones_are_skipped) {
  FakeAgent agent;
  // The client numbers from 1: a stale TPM response (seq 7) and console noise come first.
  agent.Say(Concat({Encode(AgentFrameType::kTpmResponse, 7, kRandomResponse), Text("login: "),
                    Encode(AgentFrameType::kHello, 1, HelloPayload("request"))}));
  auto hello = agent.client->Hello(5s);
  BOOST_REQUIRE_MESSAGE(hello.ok(), hello.status().ToString());
  BOOST_TEST(hello->reason == "request");
  auto requests = agent.Requests();
  BOOST_REQUIRE(requests.size() == 1u);
  BOOST_TEST((requests[0].type == AgentFrameType::kHelloRequest));
  BOOST_TEST(requests[0].seq == 1);
}

BOOST_AUTO_TEST_CASE(a_cut_off_frame_then_silence_is_a_timeout_naming_the_stage) {
  FakeAgent agent;
  const Bytes response = Encode(AgentFrameType::kTpmResponse, 1, kRandomResponse);
  agent.Say(Bytes(response.begin(), response.begin() + 15));
  BOOST_REQUIRE(agent.client->SendTpmCommand(kGetRandom8).ok());
  auto got = agent.client->ReceiveTpmResponse(300ms);
  BOOST_REQUIRE(!got.ok());
  const Status& error = got.status();
  BOOST_TEST(error.timed_out());
  BOOST_TEST((error.layer() == Layer::kTransport));
  BOOST_TEST(Contains(error.message(), "no TPM response from the agent within 300 ms"), error.message());
  BOOST_TEST(Contains(error.message(), "command 0x0000017b"), error.message());
  BOOST_TEST(Contains(error.message(), "15 bytes of a cut-off frame"), error.message());
  // A timeout leaves the response owed: the rest of it arrives and is taken.
  agent.Say(Bytes(response.begin() + 15, response.end()));
  auto late = agent.client->ReceiveTpmResponse(5s);
  BOOST_REQUIRE_MESSAGE(late.ok(), late.status().ToString());
  BOOST_TEST(*late == kRandomResponse);
}

BOOST_AUTO_TEST_CASE(silence_while_waiting_for_a_hello_names_the_stage) {
  FakeAgent agent;
  auto hello = agent.client->WaitHello(200ms);
  BOOST_REQUIRE(!hello.ok());
  BOOST_TEST(hello.status().timed_out());
  BOOST_TEST(Contains(hello.status().message(), "no hello from the agent within 200 ms (waiting for the agent's hello"),
             hello.status().message());
}

BOOST_AUTO_TEST_CASE(a_closed_channel_is_not_a_timeout) {
  FakeAgent agent;
  agent.Hangup();
  BOOST_REQUIRE(agent.client->SendTpmCommand(kGetRandom8).ok());
  auto got = agent.client->ReceiveTpmResponse(5s);
  BOOST_REQUIRE(!got.ok());
  BOOST_TEST(!got.status().timed_out());
  BOOST_TEST(Contains(got.status().message(), "agent channel closed (fake agent pipe"), got.status().message());
}

BOOST_AUTO_TEST_CASE(a_garbled_reply_names_its_offset_and_the_next_request_works) {
  FakeAgent agent;
  Bytes bad = Encode(AgentFrameType::kTpmResponse, 1, kRandomResponse);
  bad.back() ^= 0xFF;  // the CRC
  agent.Say(Concat({Text("noise"), bad, Encode(AgentFrameType::kTpmResponse, 2, kRandomResponse)}));
  BOOST_REQUIRE(agent.client->SendTpmCommand(kGetRandom8).ok());
  auto got = agent.client->ReceiveTpmResponse(5s);
  BOOST_REQUIRE(!got.ok());
  BOOST_TEST(!got.status().timed_out());
  BOOST_TEST(got.status().offset().value_or(0) == 5u);
  BOOST_TEST(Contains(got.status().message(), "garbled frame from the agent on fake agent pipe"), got.status().message());
  BOOST_TEST(Contains(got.status().message(), "bad CRC in TPM_RESPONSE frame seq 1"), got.status().message());
  BOOST_REQUIRE(agent.client->SendTpmCommand(kGetRandom8).ok());
  auto next = agent.client->ReceiveTpmResponse(5s);
  BOOST_REQUIRE_MESSAGE(next.ok(), next.status().ToString());
  BOOST_TEST(*next == kRandomResponse);
}

BOOST_AUTO_TEST_CASE(error_frames_carry_the_agents_text) {
  FakeAgent agent;
  agent.Say(Concat({Encode(AgentFrameType::kError, 1, Text("/dev/tpmrm0: write: Input/output error")),
                    Encode(AgentFrameType::kError, 0, Text("skipped 4 bytes that are not a frame at byte 0"))}));
  BOOST_REQUIRE(agent.client->SendTpmCommand(kGetRandom8).ok());
  auto got = agent.client->ReceiveTpmResponse(5s);
  BOOST_REQUIRE(!got.ok());
  BOOST_TEST(Contains(got.status().message(), "Input/output error"), got.status().message());
  // An unsolicited ERROR (seq 0): the agent could not read a request.
  auto log = agent.client->ReadEventLog(5s);
  BOOST_REQUIRE(!log.ok());
  BOOST_TEST(Contains(log.status().message(), "the agent could not read a request: skipped 4 bytes"),
             log.status().message());
}

BOOST_AUTO_TEST_CASE(a_hello_while_a_tpm_response_is_owed_is_a_restart) {
  FakeAgent agent;
  agent.Say(Encode(AgentFrameType::kHello, 0, HelloPayload("start")));
  BOOST_REQUIRE(agent.client->SendTpmCommand(kGetRandom8).ok());
  auto got = agent.client->ReceiveTpmResponse(5s);
  BOOST_REQUIRE(!got.ok());
  BOOST_TEST(Contains(got.status().message(), "the board restarted while a TPM command was in flight"),
             got.status().message());
  // That hello is what the next WaitHello returns.
  auto hello = agent.client->WaitHello(1s);
  BOOST_REQUIRE_MESSAGE(hello.ok(), hello.status().ToString());
  BOOST_TEST(hello->reason == "start");
}

BOOST_AUTO_TEST_CASE(wait_hello_skips_everything_but_an_unsolicited_hello) {
  FakeAgent agent;
  agent.Say(Concat({Text("[    0.000000] Linux version"), Encode(AgentFrameType::kPowerAck, 4),
                    Encode(AgentFrameType::kHello, 9, HelloPayload("request")),
                    Encode(AgentFrameType::kHello, 0, HelloPayload("resume"))}));
  auto hello = agent.client->WaitHello(5s);
  BOOST_REQUIRE_MESSAGE(hello.ok(), hello.status().ToString());
  BOOST_TEST(hello->reason == "resume");
  BOOST_TEST(agent.client->skipped_bytes() == 28u);
}

BOOST_AUTO_TEST_CASE(event_log_is_read_in_slices_until_an_empty_one) {
  FakeAgent agent;
  agent.Say(Concat({Encode(AgentFrameType::kLogData, 1, Bytes(100, 0x11)), Encode(AgentFrameType::kLogData, 2, Bytes(3, 0x22)),
                    Encode(AgentFrameType::kLogData, 3)}));
  auto log = agent.client->ReadEventLog(5s);
  BOOST_REQUIRE_MESSAGE(log.ok(), log.status().ToString());
  BOOST_TEST(log->size() == 103u);
  auto requests = agent.Requests();
  BOOST_REQUIRE(requests.size() == 3u);
  auto third = DecodeAgentLogRead(requests[2].payload);
  BOOST_REQUIRE(third.ok());
  BOOST_TEST(third->offset == 103u);
  BOOST_TEST(third->max == kAgentMaxPayload);
}

BOOST_AUTO_TEST_CASE(power_waits_for_its_ack) {
  FakeAgent agent;
  agent.Say(Encode(AgentFrameType::kPowerAck, 1));
  BOOST_TEST(agent.client->RequestPower(AgentPowerAction::kSuspend, 5s).ok());
  auto requests = agent.Requests();
  BOOST_REQUIRE(requests.size() == 1u);
  BOOST_TEST(requests[0].payload == Bytes{3});
  auto none = agent.client->RequestPower(AgentPowerAction::kReboot, 200ms);
  BOOST_REQUIRE(!none.ok());
  BOOST_TEST(Contains(none.message(), "no POWER_ACK from the agent within 200 ms (asking for reboot"), none.message());
}

BOOST_AUTO_TEST_CASE(transport_relays_and_refuses_cancel_and_other_localities) {
  FakeAgent agent;
  AgentTransport transport(*agent.client, "agent on fake pipe");
  agent.Say(Encode(AgentFrameType::kTpmResponse, 1, kRandomResponse));
  auto response = transport.Exchange(kGetRandom8);
  BOOST_REQUIRE_MESSAGE(response.ok(), response.status().ToString());
  BOOST_TEST(*response == kRandomResponse);
  BOOST_TEST(agent.Requests().at(0).payload == kGetRandom8);
  BOOST_TEST(transport.SetLocality(0).ok());
  BOOST_TEST(Contains(transport.SetLocality(3).message(), "only locality 0"));
  BOOST_TEST(!transport.Cancel().ok());
  BOOST_TEST(transport.info().name == "agent");
}

}  // namespace
}  // namespace tpmlab
