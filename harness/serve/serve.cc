#include "harness/serve.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "harness/snapshot.h"

namespace tpmlab::serve {

using Clock = std::chrono::steady_clock;

struct Server::Connection {
  int fd = -1;
  bool data = true;
  std::string name;  // "data connection 3 from 127.0.0.1:40112"
  DataParser data_parser;
  ControlParser control_parser;
  explicit Connection(Flavour flavour) : control_parser(flavour) {}
  ~Connection() {
    if (fd >= 0) ::close(fd);
  }
};

namespace {

std::string Hex(uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%x", v);
  return text;
}

Status SocketError(const std::string& what) {
  return Status::Error(Layer::kTransport, what + ": " + std::strerror(errno));
}

// A listening TCP socket on host:port (port 0: the kernel picks one).
Result<int> ListenOn(const std::string& host, uint16_t port) {
  const std::string where = host + ":" + std::to_string(port);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return Status::Error(Layer::kTransport, host + ": not an IPv4 address").WithKind(ErrorKind::kBadInput);
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return SocketError("socket for " + where);
  const int one = 1;
  (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 16) != 0) {
    Status s = SocketError("listen on " + where);
    ::close(fd);
    return s;
  }
  return fd;
}

uint16_t LocalPort(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  return ntohs(addr.sin_port);
}

std::string PeerName(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  char host[INET_ADDRSTRLEN] = "?";
  ::inet_ntop(AF_INET, &addr.sin_addr, host, sizeof(host));
  return std::string(host) + ":" + std::to_string(ntohs(addr.sin_port));
}

Result<uint64_t> Number(const std::string& spec, const std::string& field, const std::string& text) {
  if (text.empty()) return Status::Parse("--fault " + spec + ": " + field + " needs a value").WithKind(ErrorKind::kBadInput);
  const bool hex = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
  const std::string digits = hex ? text.substr(2) : text;
  const bool ok = !digits.empty() && digits.size() <= 16 &&
                  std::all_of(digits.begin(), digits.end(), [hex](char c) {
                    return (c >= '0' && c <= '9') || (hex && std::isxdigit(static_cast<unsigned char>(c)));
                  });
  if (!ok) {
    return Status::Parse("--fault " + spec + ": " + field + " '" + text + "' is not a whole number (decimal or 0x hex)")
        .WithKind(ErrorKind::kBadInput);
  }
  return static_cast<uint64_t>(std::strtoull(digits.c_str(), nullptr, hex ? 16 : 10));
}

// tpm_ioctl.h's PTM_CAP_* bits for what this server answers.
constexpr uint32_t kCapabilities = 0x0001 /*INIT*/ | 0x0002 /*SHUTDOWN*/ | 0x0004 /*GET_TPMESTABLISHED*/ |
                                   0x0008 /*SET_LOCALITY*/ | 0x0020 /*CANCEL_TPM_CMD*/ | 0x0040 /*STORE_VOLATILE*/ |
                                   0x0080 /*RESET_TPMESTABLISHED*/ | 0x0400 /*STOP*/ | 0x2000 /*SET_BUFFERSIZE*/;
constexpr uint32_t kSwtpmFail = 9;
constexpr uint32_t kSwtpmBadLocality = 61;

}  // namespace

Result<FaultRule> ParseFaultSpec(const std::string& spec) {
  auto bad = [&spec](const std::string& why) {
    return Status::Parse("--fault " + spec + ": " + why).WithKind(ErrorKind::kBadInput);
  };
  std::vector<std::string> parts;
  for (size_t at = 0;;) {
    const size_t comma = spec.find(',', at);
    parts.push_back(spec.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  FaultRule rule;
  const std::string& head = parts.front();
  const size_t eq = head.find('=');
  const std::string kind = head.substr(0, eq);
  const std::string value = eq == std::string::npos ? "" : head.substr(eq + 1);
  const bool has_value = eq != std::string::npos;
  if (kind == "latency") {
    rule.kind = FaultKind::kLatency;
    TRY_ASSIGN(const uint64_t ms, Number(spec, "latency (milliseconds)", value));
    if (ms > 600000) return bad("latency " + value + " ms is over 10 minutes");
    rule.latency = std::chrono::milliseconds(ms);
  } else if (kind == "rc") {
    rule.kind = FaultKind::kResponseCode;
    if (value == "retry") {
      rule.response_code = kTpmRcRetry;
    } else if (value == "yielded") {
      rule.response_code = kTpmRcYielded;
    } else if (value == "testing") {
      rule.response_code = kTpmRcTesting;
    } else if (value == "failure") {
      rule.response_code = kTpmRcFailure;
    } else {
      TRY_ASSIGN(const uint64_t code, Number(spec, "rc", value));
      if (code == 0 || code > 0xFFFFFFFFu) return bad("rc " + value + " is not a TPM response code (1..0xffffffff)");
      rule.response_code = static_cast<uint32_t>(code);
    }
  } else if (kind == "corrupt" || kind == "drop" || kind == "disconnect") {
    if (has_value) return bad(kind + " takes no value");
    rule.kind = kind == "corrupt" ? FaultKind::kCorrupt : kind == "drop" ? FaultKind::kDrop : FaultKind::kDisconnect;
  } else {
    return bad("unknown fault '" + kind + "' (latency=MS, rc=CODE, corrupt, drop, disconnect)");
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    const size_t at = parts[i].find('=');
    const std::string key = parts[i].substr(0, at);
    const std::string text = at == std::string::npos ? "" : parts[i].substr(at + 1);
    if (key == "cc") {
      TRY_ASSIGN(const uint64_t cc, Number(spec, "cc", text));
      if (cc > 0xFFFFFFFFu) return bad("cc " + text + " is over 32 bits");
      rule.command_code = static_cast<uint32_t>(cc);
    } else if (key == "count") {
      TRY_ASSIGN(const uint64_t n, Number(spec, "count", text));
      if (n == 0 || n > UINT32_MAX) return bad("count " + text + " must be 1.." + std::to_string(UINT32_MAX));
      rule.count = static_cast<uint32_t>(n);
    } else if (key == "skip") {
      TRY_ASSIGN(const uint64_t n, Number(spec, "skip", text));
      if (n > UINT32_MAX) return bad("skip " + text + " is over " + std::to_string(UINT32_MAX));
      rule.skip = static_cast<uint32_t>(n);
    } else if (key == "p") {
      char* end = nullptr;
      const double p = std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size() || !(p > 0.0 && p <= 1.0)) {
        return bad("p '" + text + "' is not a probability in (0, 1]");
      }
      rule.probability = p;
    } else {
      return bad("unknown option '" + key + "' (cc=CODE, count=N, skip=N, p=PROBABILITY)");
    }
  }
  return rule;
}

Result<std::unique_ptr<Server>> Server::Listen(const ServeOptions& options) {
  std::unique_ptr<Server> server(new Server(options));
  if (options.port == 65535) {
    return Status::Error(Layer::kTransport, "--port 65535: the second port would be 65536").WithKind(ErrorKind::kBadInput);
  }
  if (options.port != 0) {
    TRY_ASSIGN(server->data_listener_, ListenOn(options.host, options.port));
    TRY_ASSIGN(server->control_listener_, ListenOn(options.host, static_cast<uint16_t>(options.port + 1)));
    server->data_port_ = options.port;
    return server;
  }
  // A free pair: the kernel's pick for the data port, then the one above it.
  for (int attempt = 0; attempt < 64; ++attempt) {
    TRY_ASSIGN(const int data, ListenOn(options.host, 0));
    const uint16_t port = LocalPort(data);
    if (port != 0 && port < 65535) {
      auto control = ListenOn(options.host, static_cast<uint16_t>(port + 1));
      if (control.ok()) {
        server->data_listener_ = data;
        server->control_listener_ = *control;
        server->data_port_ = port;
        return server;
      }
    }
    ::close(data);
  }
  return Status::Error(Layer::kTransport, "no free pair of ports P, P+1 on " + options.host + " after 64 tries");
}

Server::Server(ServeOptions options) : options_(std::move(options)) {}

Server::~Server() {
  connections_.clear();
  if (data_listener_ >= 0) ::close(data_listener_);
  if (control_listener_ >= 0) ::close(control_listener_);
}

void Server::Log(const std::string& line) const {
  if (options_.log) options_.log(line);
}

Status Server::Accept(int listener, bool data) {
  for (;;) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) return Status::Ok();
      return SocketError("accept on " + options_.host + ":" + std::to_string(data ? data_port() : control_port()));
    }
    const int one = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto c = std::make_unique<Connection>(options_.flavour);
    c->fd = fd;
    c->data = data;
    const uint64_t n = data ? ++counts_.data_connections : ++counts_.control_connections;
    c->name = std::string(data ? "data" : (options_.flavour == Flavour::kSwtpm ? "control" : "platform")) +
              " connection " + std::to_string(n) + " from " + PeerName(fd);
    connections_.push_back(std::move(c));
  }
}

bool Server::SendAll(Connection& c, ByteView bytes) {
  const auto deadline = Clock::now() + options_.send_timeout;
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(c.fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      pollfd p{c.fd, POLLOUT, 0};
      if (left > 0 && ::poll(&p, 1, static_cast<int>(left)) >= 0) continue;
      Log(c.name + ": the client did not take its answer within " + std::to_string(options_.send_timeout.count()) +
          " ms; closed");
      return false;
    }
    Log(c.name + ": send: " + std::strerror(errno) + "; closed");
    return false;
  }
  return true;
}

bool Server::OnReadable(Connection& c) {
  uint8_t buffer[65536];
  for (;;) {
    const ssize_t n = ::recv(c.fd, buffer, sizeof(buffer), 0);
    if (n == 0) return false;  // the client is done
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      Log(c.name + ": recv: " + std::strerror(errno) + "; closed");
      return false;
    }
    const ByteView got(buffer, static_cast<size_t>(n));
    if (c.data) {
      c.data_parser.Feed(got);
    } else {
      c.control_parser.Feed(got);
    }
    if (static_cast<size_t>(n) < sizeof(buffer)) break;
  }
  for (;;) {
    if (c.data) {
      auto next = c.data_parser.Next();
      if (!next.ok()) {
        ++counts_.protocol_errors;
        Log(c.name + ": " + next.status().message() + "; closed");
        return false;
      }
      if (!next->has_value()) return true;
      if (!HandleData(c, **next)) return false;
    } else {
      auto next = c.control_parser.Next();
      if (!next.ok()) {
        ++counts_.protocol_errors;
        Log(c.name + ": " + next.status().message() + "; closed");
        // A swtpm client waits for a result word: say the code is unknown.
        if (options_.flavour == Flavour::kSwtpm) {
          (void)SendAll(c, ByteWriter().U32(kSwtpmBadOrdinal).Take());
        }
        return false;
      }
      if (!next->has_value()) return true;
      if (!HandleControl(c, **next)) return false;
    }
  }
}

void Server::OpenStep() {
  if (step_open_) return;
  step_open_ = true;
  step_start_ = Clock::now();
  step_started_at_ = UtcNow();
  step_commands_ = 0;
  step_failed_ = 0;
}

void Server::FlushStep(const std::string& action, nlohmann::json detail, bool always) {
  std::vector<TraceRecord> records = dut_->trace().TakeRecords();
  if (!step_open_ && records.empty() && !always) return;
  if (!step_open_) OpenStep();
  StepResult r;
  r.index = next_index_++;
  r.action = action;
  r.started_at = step_started_at_;
  r.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - step_start_).count();
  for (auto& t : records) t.since_step_start = std::max(Clock::duration::zero(), t.started - step_start_);
  r.trace = std::move(records);
  if (detail.is_null()) detail = nlohmann::json::object();
  detail["protocol"] = FlavourName(options_.flavour);
  detail["commands"] = step_commands_;
  if (step_failed_ > 0) {
    detail["unanswered"] = step_failed_;
    r.status = "error";
    r.error = std::to_string(step_failed_) + " relayed command(s) got no answer from the DUT";
  } else {
    r.status = "passed";
  }
  if (detail.contains("error")) {
    r.status = "error";
    r.error = detail["error"].get<std::string>();
  }
  r.detail = std::move(detail);
  step_open_ = false;
  if (record_error_.ok() && record_ != nullptr) record_error_ = (*record_)(std::move(r));
}

Status Server::SetLocality(uint8_t locality) {
  if (locality == locality_) return Status::Ok();
  TRY(dut_->trace().SetLocality(locality));
  locality_ = locality;
  return Status::Ok();
}

Status Server::PowerOn(const std::string& signal) {
  FlushStep("serve");
  OpenStep();
  Status s = dut_->PowerOn();
  ++counts_.power_ons;
  locality_ = 0;
  nlohmann::json detail = {{"signal", signal}};
  if (!s.ok()) detail["error"] = s.ToString();
  Log(signal + ": _TPM_Init delivered to the DUT" + (s.ok() ? "" : " and failed: " + s.ToString()));
  FlushStep("power_on", detail, true);
  return s;
}

bool Server::HandleData(Connection& c, const DataRequest& request) {
  if (request.kind == DataRequest::Kind::kSessionEnd) return false;
  if (request.locality) {
    if (Status s = SetLocality(*request.locality); !s.ok()) {
      Log(c.name + ": locality " + std::to_string(*request.locality) + ": " + s.ToString() + "; closed");
      return false;
    }
  }
  OpenStep();
  const uint32_t code = TpmHeaderCode(request.command);
  auto response = dut_->trace().Exchange(request.command);
  last_command_ = Clock::now();
  if (!response.ok()) {
    if (response.status().timed_out()) dut_->trace().AbandonResponse();
    ++counts_.failed;
    ++step_failed_;
    Log(c.name + ": command " + Hex(code) + " got no answer: " + response.status().ToString() +
        "; closed (the client sees its connection end)");
    return false;
  }
  ++counts_.commands;
  ++step_commands_;
  const bool sent = SendAll(c, FrameResponse(*response, request.mssim_framing));
  if (step_commands_ >= options_.max_step_commands) FlushStep("serve");
  return sent;
}

bool Server::HandleControl(Connection& c, const ControlRequest& request) {
  auto reply = [&](uint32_t result, ByteView extra = {}) {
    return SendAll(c, ByteWriter().U32(result).Append(extra).Take());
  };
  const std::string name = ControlCodeName(options_.flavour, request.code);
  if (options_.flavour == Flavour::kSwtpm) {
    switch (request.code) {
      case 0x01: {  // CMD_GET_CAPABILITY: the u64 capability word, its high half the result
        const Bytes caps = ByteWriter().U32(kCapabilities).Take();
        return reply(kSwtpmSuccess, caps);
      }
      case 0x02:  // CMD_INIT: _TPM_Init
        return reply(PowerOn(name).ok() ? kSwtpmSuccess : kSwtpmFail);
      case 0x03:  // CMD_SHUTDOWN would end swtpm: the served chip stays
        Log(c.name + ": " + name + " answered but not done: the DUT is served until tpmlab serve stops");
        return reply(kSwtpmSuccess);
      case 0x04: {  // CMD_GET_TPMESTABLISHED: bit, 3 bytes of padding
        const uint8_t bit[4] = {0, 0, 0, 0};
        return reply(kSwtpmSuccess, bit);
      }
      case 0x05: {  // CMD_SET_LOCALITY
        const uint8_t locality = request.payload[0];
        if (locality > 4) return reply(kSwtpmBadLocality);
        Status s = SetLocality(locality);
        if (!s.ok()) Log(c.name + ": " + name + " " + std::to_string(locality) + ": " + s.ToString());
        return reply(s.ok() ? kSwtpmSuccess : kSwtpmBadLocality);
      }
      case 0x11: {  // CMD_SET_BUFFERSIZE: the size in use, its minimum and maximum
        const Bytes sizes = ByteWriter().U32(kTpmMaxMessage).U32(kTpmMaxMessage).U32(kTpmMaxMessage).Take();
        return reply(kSwtpmSuccess, sizes);
      }
      case 0x09: case 0x0A: case 0x0B: case 0x0E:  // cancel, store volatile, reset established, stop
        return reply(kSwtpmSuccess);
      default:  // H-CRTM hashing, configuration, info: not offered through a bench
        Log(c.name + ": " + name + " is not served (answered TPM_BAD_ORDINAL)");
        return reply(kSwtpmBadOrdinal);
    }
  }
  switch (request.code) {
    case mssim::kSessionEnd:
      return false;
    case mssim::kPowerOn:
      // tcti-mssim sends it at every connect: only a chip powered off gets _TPM_Init.
      if (!powered_) {
        powered_ = true;
        return reply(PowerOn(name).ok() ? 0 : 1);
      }
      return reply(0);
    case mssim::kPowerOff:
      powered_ = false;
      Log(c.name + ": " + name + ": the next TPM_SIGNAL_POWER_ON delivers _TPM_Init");
      return reply(0);
    case mssim::kHashStart: case mssim::kHashData: case mssim::kHashEnd: case mssim::kTestFailureMode:
    case mssim::kRemoteHandshake:
      Log(c.name + ": " + name + " is not served (answered 1)");
      return reply(1);
    case mssim::kStop:
      Log(c.name + ": " + name + " answered but not done: the DUT is served until tpmlab serve stops");
      return reply(0);
    default:  // NV on/off, cancel, physical presence, key cache, alternative result
      return reply(0);
  }
}

Status Server::Serve(Dut& dut, const std::function<Status(StepResult&&)>& record) {
  dut_ = &dut;
  record_ = &record;
  next_index_ = options_.first_step_index;
  while (options_.stop == nullptr || !options_.stop->load()) {
    std::vector<pollfd> fds;
    fds.push_back({data_listener_, POLLIN, 0});
    fds.push_back({control_listener_, POLLIN, 0});
    for (const auto& c : connections_) fds.push_back({c->fd, POLLIN, 0});
    const int n = ::poll(fds.data(), fds.size(), 200);
    if (n < 0 && errno != EINTR) return SocketError("poll");
    if (n > 0) {
      if (fds[0].revents != 0) TRY(Accept(data_listener_, true));
      if (fds[1].revents != 0) TRY(Accept(control_listener_, false));
      // Connections accepted just now are polled next time round.
      std::vector<Connection*> done;
      for (size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        Connection& c = *connections_[i - 2];
        if (!OnReadable(c)) done.push_back(&c);
        if (!record_error_.ok()) break;
      }
      std::erase_if(connections_, [&done](const std::unique_ptr<Connection>& c) {
        return std::find(done.begin(), done.end(), c.get()) != done.end();
      });
    }
    if (step_open_ && Clock::now() - last_command_ >= options_.idle_step) FlushStep("serve");
    if (!record_error_.ok()) break;
  }
  FlushStep("serve");
  connections_.clear();
  record_ = nullptr;
  dut_ = nullptr;
  return record_error_;
}

}  // namespace tpmlab::serve
