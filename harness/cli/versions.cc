// tpmlab --version: tpmlab's own version and what it found of the software
// it drives, asked at run time where the software can say.
#include <dlfcn.h>
#include <openssl/crypto.h>

#include <cstdint>
#include <cstring>

#include "docs.h"
#include "drivers/swtpm.h"
#include "harness/version.h"
#include "harness/tss2_version.h"

namespace tpmlab::cli {
namespace {

// The swtpm first on PATH, as `tpmlab run` launches it.
std::string SwtpmVersion() {
  auto caps = ProbeSwtpm("swtpm");
  if (!caps.ok()) return "not found";
  return caps->version.empty() ? "found (it did not say its version)" : caps->version;
}

// The libtpms the dynamic linker finds (the one swtpm loads unless an image's
// library_dir says otherwise): TPMLIB_GetVersion() is 0x00MMmmpp.
std::string LibtpmsVersion() {
  void* library = ::dlopen("libtpms.so.0", RTLD_LAZY | RTLD_LOCAL);
  if (library == nullptr) return "not found";
  std::string version = "found (no TPMLIB_GetVersion)";
  uint32_t (*get_version)() = nullptr;
  if (void* symbol = ::dlsym(library, "TPMLIB_GetVersion")) {
    std::memcpy(&get_version, &symbol, sizeof(get_version));  // POSIX: a symbol's address as a function
    const uint32_t v = get_version();
    version = std::to_string((v >> 16) & 0xFF) + "." + std::to_string((v >> 8) & 0xFF) + "." + std::to_string(v & 0xFF);
  }
  ::dlclose(library);
  return version;
}

// The libcrypto loaded: "3.0.11 19 Sep 2023" (without its leading "OpenSSL ").
std::string OpenSslVersion() {
  std::string text = OpenSSL_version(OPENSSL_VERSION);
  if (text.rfind("OpenSSL ", 0) == 0) text.erase(0, 8);
  return text;
}

}  // namespace

std::string VersionReport() {
  const std::string tss2 = Tss2Version();
  return std::string("tpmlab ") + kTpmlabVersion + "\n" +
         "  swtpm     " + SwtpmVersion() + "\n" +
         "  libtpms   " + LibtpmsVersion() + "\n" +
         "  tpm2-tss  " + (tss2.empty() ? "linked (version not recorded at build time)" : tss2 + " (built with)") + "\n" +
         "  OpenSSL   " + OpenSslVersion();
}

}  // namespace tpmlab::cli
