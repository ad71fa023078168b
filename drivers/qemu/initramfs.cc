// The guest side's files: the initramfs tpmlab writes and the console log it reads.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <set>

#include "drivers/qemu.h"

namespace tpmlab {

namespace fs = std::filesystem;

namespace {

void AppendHex8(std::string& out, uint64_t value) {
  char field[9];
  std::snprintf(field, sizeof field, "%08llX", static_cast<unsigned long long>(value));
  out.append(field, 8);
}

void PadTo4(std::string& out) {
  while (out.size() % 4 != 0) out.push_back('\0');
}

// One newc header, its name and the padding after it.
void AppendHeader(std::string& out, uint32_t ino, uint32_t mode, uint32_t nlink, uint64_t size,
                  uint32_t rdev_major, uint32_t rdev_minor, const std::string& name) {
  out += "070701";
  AppendHex8(out, ino);
  AppendHex8(out, mode);
  AppendHex8(out, 0);  // uid: root
  AppendHex8(out, 0);  // gid
  AppendHex8(out, nlink);
  AppendHex8(out, 0);  // mtime 0: the same inputs give the same bytes
  AppendHex8(out, size);
  AppendHex8(out, 0);  // devmajor / devminor of the file system it came from
  AppendHex8(out, 0);
  AppendHex8(out, rdev_major);
  AppendHex8(out, rdev_minor);
  AppendHex8(out, name.size() + 1);
  AppendHex8(out, 0);  // check: unused by newc
  out += name;
  out.push_back('\0');
  PadTo4(out);
}

Status BadEntry(const std::string& path, const std::string& why) {
  return Status::Error(Layer::kHarness, "initramfs entry '" + path + "': " + why);
}

}  // namespace

Status WriteInitramfs(const fs::path& out, const std::vector<InitramfsEntry>& entries) {
  std::vector<const InitramfsEntry*> sorted;
  std::set<std::string> names;
  for (const auto& e : entries) {
    if (e.path.empty() || e.path.front() == '/' || e.path.back() == '/') {
      return BadEntry(e.path, "must be a relative path without a trailing '/'");
    }
    if (e.path == "." || e.path.find("..") != std::string::npos) {
      return BadEntry(e.path, "must not contain '..' or be '.'");
    }
    if (!names.insert(e.path).second) return BadEntry(e.path, "listed twice");
    if (e.mode & ~07777u) return BadEntry(e.path, "mode holds more than permission bits");
    sorted.push_back(&e);
  }
  // Parents sort before their children ("dev" < "dev/console").
  std::sort(sorted.begin(), sorted.end(),
            [](const InitramfsEntry* a, const InitramfsEntry* b) { return a->path < b->path; });

  std::string archive;
  uint32_t ino = 1;
  for (const InitramfsEntry* e : sorted) {
    switch (e->kind) {
      case InitramfsEntry::kDir:
        AppendHeader(archive, ino++, S_IFDIR | e->mode, 2, 0, 0, 0, e->path);
        break;
      case InitramfsEntry::kCharDev:
        AppendHeader(archive, ino++, S_IFCHR | e->mode, 1, 0, e->rdev_major, e->rdev_minor, e->path);
        break;
      case InitramfsEntry::kFile: {
        std::ifstream in(e->source_file, std::ios::binary);
        if (!in) return BadEntry(e->path, "cannot read source file " + e->source_file);
        std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (data.size() > 0xFFFFFFFFull) return BadEntry(e->path, "larger than 4 GiB");
        AppendHeader(archive, ino++, S_IFREG | e->mode, 1, data.size(), 0, 0, e->path);
        archive += data;
        PadTo4(archive);
        break;
      }
    }
  }
  AppendHeader(archive, 0, 0, 1, 0, 0, 0, "TRAILER!!!");

  std::ofstream file(out, std::ios::binary | std::ios::trunc);
  file.write(archive.data(), static_cast<std::streamsize>(archive.size()));
  file.close();
  if (!file) return Status::Error(Layer::kHarness, "cannot write initramfs " + out.string());
  return Status::Ok();
}

BootStage BootStageFromConsole(const std::string& text) {
  if (text.find("tpmlab-agent: serving") != std::string::npos) return BootStage::kServing;
  if (text.find("tpmlab-agent: started") != std::string::npos) return BootStage::kAgent;
  if (text.find("Linux version") != std::string::npos) return BootStage::kKernel;
  // OVMF is the first thing that can write on serial0, and all Debian's
  // release builds print there is the console setup (ESC[2J ESC[01;01H
  // ESC[=3h) until the kernel's EFI stub speaks: any output means firmware.
  if (!text.empty()) return BootStage::kFirmware;
  return BootStage::kNothing;
}

const char* BootStageName(BootStage stage) {
  switch (stage) {
    case BootStage::kNothing: return "nothing";
    case BootStage::kFirmware: return "firmware";
    case BootStage::kKernel: return "kernel";
    case BootStage::kAgent: return "agent";
    case BootStage::kServing: return "serving";
  }
  return "?";
}

std::string ReadConsoleFrom(const fs::path& log, uint64_t offset) {
  std::ifstream in(log, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const auto size = static_cast<uint64_t>(in.tellg());
  if (offset >= size) return "";
  in.seekg(static_cast<std::streamoff>(offset));
  std::string text(size - offset, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

}  // namespace tpmlab
