#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "drivers/bmc_power.h"

namespace tpmlab {

std::string BmcSecret::Describe() const {
  return env.empty() ? "password_file " + file.string() : "password_env " + env;
}

Result<std::string> ReadBmcSecret(const BmcSecret& secret) {
  auto bad = [](std::string message) { return Status::Error(Layer::kScenario, std::move(message)); };
  if (secret.file.empty() == secret.env.empty()) {
    return bad("a BMC password comes from password_file or password_env (exactly one)");
  }
  if (!secret.env.empty()) {
    const char* value = std::getenv(secret.env.c_str());
    if (value == nullptr || *value == '\0') {
      return bad("the BMC password variable " + secret.env + " is not set in tpmlab's environment");
    }
    return std::string(value);
  }
  struct stat st {};
  if (::stat(secret.file.c_str(), &st) != 0) {
    return bad("BMC password file " + secret.file.string() + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return bad("BMC password file " + secret.file.string() + " is not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return bad("BMC password file " + secret.file.string() + " has mode " + mode +
               ": others may read it; make it its owner's only (chmod 600)");
  }
  std::ifstream in(secret.file, std::ios::binary);
  if (!in) return bad("BMC password file " + secret.file.string() + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  std::string value = text.str();
  if (!value.empty() && value.back() == '\n') value.pop_back();
  if (!value.empty() && value.back() == '\r') value.pop_back();
  if (value.empty()) return bad("BMC password file " + secret.file.string() + " is empty");
  return value;
}

}  // namespace tpmlab
