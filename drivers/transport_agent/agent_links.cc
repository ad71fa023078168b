#include "drivers/agent_links.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace tpmlab {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

Status Errno(const std::string& what, int error) {
  return Status::Error(Layer::kTransport, what + ": " + std::strerror(error));
}

bool Has(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }

std::string ExpandHome(const std::string& arg) {
  if (arg.rfind("~/", 0) != 0) return arg;
  const char* home = std::getenv("HOME");
  return home && *home ? std::string(home) + arg.substr(1) : arg;
}

// A classifying line, or "" when this line says nothing known.
SshOutcome Classify(const std::string& line) {
  if (Has(line, "Could not resolve hostname") || Has(line, "Name or service not known") ||
      Has(line, "Temporary failure in name resolution")) {
    return SshOutcome::kUnresolved;
  }
  // ssh's own: "root@host: Permission denied (publickey)." (a remote shell's
  // "tpmlab-agent: Permission denied" is an agent that cannot run).
  if (Has(line, "Permission denied (") || Has(line, "Too many authentication failures") ||
      Has(line, "No more authentication methods")) {
    return SshOutcome::kAuthFailed;
  }
  if (Has(line, "Host key verification failed") || Has(line, "REMOTE HOST IDENTIFICATION HAS CHANGED")) {
    return SshOutcome::kHostKey;
  }
  if (Has(line, "command not found") || Has(line, "No such file or directory") || Has(line, "not found") ||
      Has(line, "Permission denied")) {
    return SshOutcome::kNoAgent;
  }
  if (Has(line, "Connection refused") || Has(line, "Connection timed out") || Has(line, "timed out") ||
      Has(line, "No route to host") || Has(line, "Network is unreachable") || Has(line, "Connection reset") ||
      Has(line, "Connection closed by") || Has(line, "kex_exchange_identification") ||
      Has(line, "Broken pipe")) {
    return SshOutcome::kUnreachable;
  }
  return SshOutcome::kUnknown;
}

}  // namespace

std::string SshTarget::ToString() const {
  std::string s = "ssh " + (user.empty() ? "" : user + "@") + host;
  if (port) s += ":" + std::to_string(port);
  return s;
}

std::vector<std::string> SshArgv(const SshTarget& target) {
  // BatchMode first: ssh keeps the first value it gets for an option, so no
  // bench option or ssh config can turn a password prompt back on.
  std::vector<std::string> argv = {"ssh", "-T", "-o", "BatchMode=yes", "-o",
                                   "ConnectTimeout=" + std::to_string(target.connect_timeout.count())};
  if (target.port) {
    argv.push_back("-p");
    argv.push_back(std::to_string(target.port));
  }
  for (const std::string& option : target.options) argv.push_back(ExpandHome(option));
  // A dead link (a machine switched off) ends the session within a minute.
  argv.insert(argv.end(), {"-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"});
  argv.push_back(target.user.empty() ? target.host : target.user + "@" + target.host);
  argv.push_back(target.command);
  return argv;
}

Result<SshAgentSession> StartSshAgent(const SshTarget& target, const fs::path& stderr_log) {
  if (!FindProgram("ssh")) {
    return Status::Error(Layer::kTransport, "ssh not found on PATH: install the Debian package openssh-client")
        .WithKind(ErrorKind::kMissingPackage);
  }
  int to_agent[2], from_agent[2];
  if (::pipe2(to_agent, O_CLOEXEC) != 0) return Errno("pipe for ssh", errno);
  if (::pipe2(from_agent, O_CLOEXEC) != 0) {
    const int error = errno;
    ::close(to_agent[0]);
    ::close(to_agent[1]);
    return Errno("pipe for ssh", error);
  }
  SshAgentSession session;
  session.stderr_log = stderr_log;
  std::error_code ec;
  if (fs::exists(stderr_log, ec)) session.stderr_offset = fs::file_size(stderr_log, ec);
  ChildProcess::Options options;
  options.stdin_fd = to_agent[0];
  options.stdout_fd = from_agent[1];
  auto child = ChildProcess::Spawn(SshArgv(target), stderr_log, options);
  ::close(to_agent[0]);
  ::close(from_agent[1]);
  if (!child.ok()) {
    ::close(to_agent[1]);
    ::close(from_agent[0]);
    return child.status();
  }
  session.ssh = std::move(*child);
  session.channel = AgentChannel::FromFds(from_agent[0], to_agent[1], target.ToString());
  return session;
}

SshDiagnosis DiagnoseSsh(const std::string& stderr_text, std::optional<int> exit_code) {
  SshDiagnosis d;
  std::istringstream lines(stderr_text);
  std::string line, last;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    // ssh's warnings about adding a host key say nothing about the failure.
    if (line.rfind("Warning: Permanently added", 0) == 0) continue;
    last = line;
    const SshOutcome outcome = Classify(line);
    // The first telling line wins: later lines are ssh's consequences of it.
    if (outcome != SshOutcome::kUnknown && d.outcome == SshOutcome::kUnknown) {
      d.outcome = outcome;
      d.line = line;
    }
  }
  if (d.outcome == SshOutcome::kUnknown) {
    d.line = last;
    // The remote shell's "not found" exit, with nothing on stderr.
    if (exit_code == 127) d.outcome = SshOutcome::kNoAgent;
  }
  return d;
}

std::string SshOutcomeName(SshOutcome outcome) {
  switch (outcome) {
    case SshOutcome::kUnknown: return "ssh ended";
    case SshOutcome::kUnreachable: return "the machine's sshd is not reachable";
    case SshOutcome::kUnresolved: return "the host name does not resolve";
    case SshOutcome::kAuthFailed: return "authentication failed";
    case SshOutcome::kHostKey: return "the host key does not verify";
    case SshOutcome::kNoAgent: return "tpmlab-agent did not start on the machine";
  }
  return "ssh ended";
}

Result<std::unique_ptr<AgentChannel>> OpenSerialAgentChannel(const std::string& device, uint32_t baud) {
  speed_t speed;
  switch (baud) {
    case 9600: speed = B9600; break;
    case 19200: speed = B19200; break;
    case 38400: speed = B38400; break;
    case 57600: speed = B57600; break;
    case 115200: speed = B115200; break;
    case 230400: speed = B230400; break;
    case 460800: speed = B460800; break;
    case 921600: speed = B921600; break;
    default:
      return Status::Error(Layer::kTransport, "serial console " + device + ": unsupported baud rate " +
                                                  std::to_string(baud));
  }
  const int fd = ::open(device.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Errno("serial console " + device, errno);
  termios t{};
  if (::tcgetattr(fd, &t) != 0) {
    const int error = errno;
    ::close(fd);
    return Errno("serial console " + device + " (not a tty?)", error);
  }
  ::cfmakeraw(&t);
  t.c_cflag |= CLOCAL | CREAD;
  t.c_cflag &= ~(CSTOPB | PARENB | CRTSCTS);
  t.c_iflag &= ~(IXON | IXOFF | IXANY);
  ::cfsetispeed(&t, speed);
  ::cfsetospeed(&t, speed);
  if (::tcsetattr(fd, TCSANOW, &t) != 0) {
    const int error = errno;
    ::close(fd);
    return Errno("serial console " + device, error);
  }
  ::tcflush(fd, TCIOFLUSH);  // what sat in the buffers is from before this boot
  return AgentChannel::FromFds(fd, fd, "serial " + device);
}

Status ResolveHost(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0) return Status::Error(Layer::kTransport, "host " + host + " does not resolve: " + ::gai_strerror(rc));
  ::freeaddrinfo(found);
  return Status::Ok();
}

Result<std::unique_ptr<AgentChannel>> ConnectTcpAgentChannel(const std::string& host, uint16_t port,
                                                            std::chrono::milliseconds timeout) {
  const std::string where = host + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (rc != 0) {
    return Status::Error(Layer::kTransport, "TCP console " + where + ": host does not resolve: " + ::gai_strerror(rc));
  }
  const auto deadline = Clock::now() + timeout;
  std::string why = "no address";
  for (addrinfo* a = found; a; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    int error = 0;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      error = errno;
      if (error == EINPROGRESS) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        pollfd p{fd, POLLOUT, 0};
        const int ready = ::poll(&p, 1, left > 0 ? static_cast<int>(left) : 0);
        if (ready <= 0) {
          error = ready == 0 ? ETIMEDOUT : errno;
        } else {
          socklen_t len = sizeof(error);
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
        }
      }
    }
    if (error == 0) {
      ::freeaddrinfo(found);
      return AgentChannel::FromFds(fd, fd, "tcp console " + where);
    }
    ::close(fd);
    why = std::strerror(error);
  }
  ::freeaddrinfo(found);
  return Status::Error(Layer::kTransport, "TCP console " + where + ": " + why);
}

}  // namespace tpmlab
