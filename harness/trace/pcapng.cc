#include "pcapng.h"

#include <algorithm>

namespace tpmlab::pcapng {
namespace {

// pcapng is written little-endian (the byte-order magic says so); the
// frames inside are in network order.
void Le16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}
void Le32(Bytes& b, uint32_t v) {
  for (int i = 0; i < 32; i += 8) b.push_back(static_cast<uint8_t>(v >> i));
}
void Be16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void Be32(Bytes& b, uint32_t v) {
  for (int i = 24; i >= 0; i -= 8) b.push_back(static_cast<uint8_t>(v >> i));
}
void Pad4(Bytes& b) {
  while (b.size() % 4) b.push_back(0);
}
void Option(Bytes& b, uint16_t code, ByteView value) {
  if (value.empty()) return;
  const size_t n = std::min<size_t>(value.size(), 0xfff0);  // an option's length is 16 bits
  Le16(b, code);
  Le16(b, static_cast<uint16_t>(n));
  b.insert(b.end(), value.begin(), value.begin() + static_cast<std::ptrdiff_t>(n));
  Pad4(b);
}
void Option(Bytes& b, uint16_t code, const std::string& text) {
  Option(b, code, ByteView(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}
void EndOfOptions(Bytes& b) { Le32(b, 0); }

constexpr uint16_t kOptComment = 1;
constexpr uint16_t kShbHardware = 2, kShbOs = 3, kShbUserAppl = 4;
constexpr uint16_t kIfName = 2, kIfDescription = 3, kIfTsresol = 9;
constexpr uint16_t kLinktypeEthernet = 1;

// The Internet checksum (RFC 1071) over `data`, continuing `sum`.
uint32_t SumWords(ByteView data, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < data.size(); i += 2) sum += (data[i] << 8) | data[i + 1];
  if (data.size() % 2) sum += data.back() << 8;
  return sum;
}
uint16_t Fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kPsh = 0x08, kAck = 0x10;
// RFC 5737 documentation addresses: the harness and the DUT.
constexpr uint32_t kHarnessIp = 0xC0000201, kDutIp = 0xC0000202;
// The largest payload one segment carries (an IPv4 packet's length is 16 bits).
constexpr size_t kMaxSegment = 65000;

}  // namespace

void Writer::Block(uint32_t type, const Bytes& body) {
  Bytes b;
  const uint32_t total = static_cast<uint32_t>(12 + body.size());
  Le32(b, type);
  Le32(b, total);
  b.insert(b.end(), body.begin(), body.end());
  Le32(b, total);
  out_.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void Writer::SectionHeader(const std::string& hardware, const std::string& os, const std::string& application,
                           const std::string& comment) {
  Bytes body;
  Le32(body, 0x1A2B3C4D);  // byte-order magic
  Le16(body, 1);           // version 1.0
  Le16(body, 0);
  Le32(body, 0xffffffff);  // section length: not given
  Le32(body, 0xffffffff);
  Option(body, kOptComment, comment);
  Option(body, kShbHardware, hardware);
  Option(body, kShbOs, os);
  Option(body, kShbUserAppl, application);
  EndOfOptions(body);
  Block(0x0A0D0D0A, body);
}

void Writer::EthernetInterface(const std::string& name, const std::string& description) {
  Bytes body;
  Le16(body, kLinktypeEthernet);
  Le16(body, 0);
  Le32(body, 0);  // snaplen: no limit
  Option(body, kIfName, name);
  Option(body, kIfDescription, description);
  const uint8_t nanoseconds = 9;
  Option(body, kIfTsresol, ByteView(&nanoseconds, 1));
  EndOfOptions(body);
  Block(1, body);
}

void Writer::Packet(int64_t ns, ByteView frame, const std::string& comment) {
  ns = std::max(ns, last_ns_);
  last_ns_ = ns;
  const uint64_t ts = static_cast<uint64_t>(ns);
  Bytes body;
  Le32(body, 0);  // interface 0
  Le32(body, static_cast<uint32_t>(ts >> 32));
  Le32(body, static_cast<uint32_t>(ts));
  Le32(body, static_cast<uint32_t>(frame.size()));
  Le32(body, static_cast<uint32_t>(frame.size()));
  body.insert(body.end(), frame.begin(), frame.end());
  Pad4(body);
  if (!comment.empty()) {
    Option(body, kOptComment, comment);
    EndOfOptions(body);
  }
  Block(6, body);
  ++packets_;
}

TcpConnection::TcpConnection(Writer& writer, uint16_t client_port, uint16_t server_port, uint32_t client_isn,
                             uint32_t server_isn)
    : writer_(writer), client_{kHarnessIp, client_port, client_isn, 0, 1}, server_{kDutIp, server_port, server_isn, 0, 2} {}

void TcpConnection::Segment(bool from_client, int64_t ns, uint8_t flags, ByteView payload, const std::string& comment) {
  Side& from = from_client ? client_ : server_;
  const Side& to = from_client ? server_ : client_;
  Bytes f;
  f.reserve(54 + payload.size());
  // Ethernet: locally administered addresses.
  for (uint8_t last : {to.mac_last, from.mac_last}) {
    f.insert(f.end(), {0x02, 0, 0, 0, 0, last});
  }
  Be16(f, 0x0800);
  // IPv4, no options, don't fragment.
  const size_t ip_at = f.size();
  const uint16_t tcp_length = static_cast<uint16_t>(20 + payload.size());
  f.push_back(0x45);
  f.push_back(0);
  Be16(f, static_cast<uint16_t>(20 + tcp_length));
  Be16(f, from.ip_id++);
  Be16(f, 0x4000);
  f.push_back(64);  // TTL
  f.push_back(6);   // TCP
  Be16(f, 0);       // checksum, below
  Be32(f, from.ip);
  Be32(f, to.ip);
  const uint16_t ip_sum = Fold(SumWords(ByteView(f).subspan(ip_at, 20)));
  f[ip_at + 10] = static_cast<uint8_t>(ip_sum >> 8);
  f[ip_at + 11] = static_cast<uint8_t>(ip_sum);
  // TCP, no options.
  const size_t tcp_at = f.size();
  Be16(f, from.port);
  Be16(f, to.port);
  Be32(f, from.seq);
  Be32(f, (flags & kAck) ? to.seq : 0);
  f.push_back(5 << 4);
  f.push_back(flags);
  Be16(f, 0xffff);  // window
  Be16(f, 0);       // checksum, below
  Be16(f, 0);       // urgent pointer
  f.insert(f.end(), payload.begin(), payload.end());
  Bytes pseudo;
  Be32(pseudo, from.ip);
  Be32(pseudo, to.ip);
  Be16(pseudo, 6);
  Be16(pseudo, tcp_length);
  const uint16_t tcp_sum = Fold(SumWords(ByteView(f).subspan(tcp_at), SumWords(pseudo)));
  f[tcp_at + 16] = static_cast<uint8_t>(tcp_sum >> 8);
  f[tcp_at + 17] = static_cast<uint8_t>(tcp_sum);
  from.seq += static_cast<uint32_t>(payload.size()) + ((flags & (kSyn | kFin)) ? 1 : 0);
  writer_.Packet(ns, f, comment);
}

void TcpConnection::Open(int64_t ns, const std::string& comment) {
  Segment(true, ns, kSyn, {}, comment);
  Segment(false, ns, kSyn | kAck, {}, {});
  Segment(true, ns, kAck, {}, {});
}

void TcpConnection::Send(bool from_client, int64_t ns, ByteView payload, const std::string& comment) {
  size_t at = 0;
  do {
    const size_t n = std::min(kMaxSegment, payload.size() - at);
    Segment(from_client, ns, kPsh | kAck, payload.subspan(at, n), at == 0 ? comment : std::string());
    at += n;
  } while (at < payload.size());
}

void TcpConnection::Close(int64_t ns, const std::string& comment) {
  Segment(true, ns, kFin | kAck, {}, comment);
  Segment(false, ns, kFin | kAck, {}, {});
  Segment(true, ns, kAck, {}, {});
}

}  // namespace tpmlab::pcapng
