// /init of the QEMU driver test's initramfs (linked -static): says it runs,
// prints the guest's PCR 0 (sha256) as the kernel reads it from the TPM the
// firmware measured into, and powers the board off.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace {

void Say(const char* text) {
  // The console may be the only thing the kernel opened for us.
  int fd = ::open("/dev/console", O_WRONLY | O_NOCTTY);
  if (fd < 0) return;
  ssize_t ignored = ::write(fd, text, std::strlen(text));
  (void)ignored;
  ::close(fd);
}

}  // namespace

int main() {
  Say("tpmlab-qemu-test: init started\n");
  ::mkdir("/sys", 0755);
  if (::mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0) Say("tpmlab-qemu-test: mount sysfs failed\n");
  char pcr[256] = {0};
  // The TPM driver is built in and probed before /init; allow it a moment anyway.
  for (int attempt = 0; attempt < 50 && pcr[0] == 0; ++attempt) {
    int fd = ::open("/sys/class/tpm/tpm0/pcr-sha256/0", O_RDONLY);
    if (fd >= 0) {
      ssize_t n = ::read(fd, pcr, sizeof pcr - 1);
      pcr[n > 0 ? n : 0] = 0;
      ::close(fd);
    }
    if (pcr[0] == 0) ::usleep(100000);
  }
  char line[400];
  std::snprintf(line, sizeof line, "tpmlab-qemu-test: pcr0=%s%s", pcr[0] ? pcr : "none",
                pcr[0] && pcr[std::strlen(pcr) - 1] == '\n' ? "" : "\n");
  Say(line);
  ::sync();
  ::reboot(RB_POWER_OFF);
  return 0;
}
