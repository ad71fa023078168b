// Private to harness/trace: pcapng blocks (section header, one Ethernet
// interface at nanosecond resolution, enhanced packets with comments) and
// the TCP/IPv4 frames of one connection, with checksums and sequence numbers
// a dissector accepts as a capture.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "drivers/bytes.h"

namespace tpmlab::pcapng {

class Writer {
 public:
  explicit Writer(std::ostream& out) : out_(out) {}
  void SectionHeader(const std::string& hardware, const std::string& os, const std::string& application,
                     const std::string& comment);
  /// An Ethernet interface whose timestamps count nanoseconds (if_tsresol 9).
  void EthernetInterface(const std::string& name, const std::string& description);
  /// A packet at `ns` since the Unix epoch; timestamps never go back (a
  /// packet earlier than the one before takes its time).
  void Packet(int64_t ns, ByteView frame, const std::string& comment);
  int64_t packets() const { return packets_; }
  int64_t last_ns() const { return last_ns_; }

 private:
  void Block(uint32_t type, const Bytes& body);
  std::ostream& out_;
  int64_t packets_ = 0;
  int64_t last_ns_ = 0;
};

/// One TCP connection from the harness (client) to the DUT (server).
class TcpConnection {
 public:
  TcpConnection(Writer& writer, uint16_t client_port, uint16_t server_port, uint32_t client_isn, uint32_t server_isn);
  /// SYN, SYN-ACK, ACK.
  void Open(int64_t ns, const std::string& comment);
  /// Data with PSH+ACK; `comment` goes on the first segment.
  void Send(bool from_client, int64_t ns, ByteView payload, const std::string& comment = {});
  /// FIN from the client, FIN from the server, the last ACK.
  void Close(int64_t ns, const std::string& comment);

 private:
  struct Side {
    uint32_t ip;
    uint16_t port;
    uint32_t seq;
    uint16_t ip_id = 0;
    uint8_t mac_last;
  };
  void Segment(bool from_client, int64_t ns, uint8_t flags, ByteView payload, const std::string& comment);
  Writer& writer_;
  Side client_, server_;
};

}  // namespace tpmlab::pcapng
