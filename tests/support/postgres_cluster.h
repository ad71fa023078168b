// Test support: a PostgreSQL 15 cluster of its own for one test (Debian's
// postgresql-15): initdb in a temporary folder, postgres listening on a unix
// socket in that folder only (no TCP), run as the postgres user when the test
// is root (postgres refuses to run as root). About two seconds to start.
//
// A test case that needs one is marked TPMLAB_NEEDS_POSTGRES and its program
// is added with tpmlab_add_test(... NEEDS postgres): without PostgreSQL the
// case is reported Skipped (tests/support/needs.h), never Passed.
//
//   BOOST_AUTO_TEST_CASE(stores_in_postgresql, TPMLAB_NEEDS_POSTGRES) {
//     auto cluster = tpmlab::test::StartPostgresForTest();
//     if (!cluster) return;  // the case has failed, saying why
//     auto url = cluster->CreateDatabase("results");  // postgresql:///results?host=...
//
// Nothing outlives the test: the destructor stops postgres and removes the
// folder; postgres gets SIGKILL when the thread that started it dies (start
// it from a thread that outlives the cluster: the test's own), and its
// backends end by themselves when it is gone.
#pragma once

#include <boost/test/unit_test.hpp>
#include <pwd.h>
#include <signal.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "drivers/process.h"
#include "drivers/status.h"

namespace tpmlab::test {

// Debian's PostgreSQL 15, or the folder $TPMLAB_POSTGRES_BIN_DIR names.
inline std::filesystem::path DefaultPostgresBinDir() {
  const char* named = std::getenv("TPMLAB_POSTGRES_BIN_DIR");
  return named != nullptr && *named != '\0' ? std::filesystem::path(named)
                                             : std::filesystem::path("/usr/lib/postgresql/15/bin");
}

namespace postgres_detail {

// Who runs the cluster's programs: the postgres user when we are root, else ourselves.
struct PostgresAccount {
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

inline std::optional<PostgresAccount> FindPostgresAccount() {
  if (::geteuid() != 0) return PostgresAccount{false, ::geteuid(), ::getegid()};
  const passwd* user = ::getpwnam("postgres");
  if (user == nullptr) return std::nullopt;
  return PostgresAccount{true, user->pw_uid, user->pw_gid};
}

// A command line run as the cluster's account. setpriv's --pdeathsig comes
// after its change of user: the kernel clears the parent-death signal
// ChildProcess set when the user changes, so setpriv sets it again.
inline std::vector<std::string> AsPostgres(const PostgresAccount& account, std::vector<std::string> argv) {
  std::vector<std::string> command{"setpriv"};
  if (account.switch_user) {
    command.insert(command.end(), {"--reuid=postgres", "--regid=postgres", "--init-groups"});
  }
  command.insert(command.end(), {"--pdeathsig", "KILL"});
  command.insert(command.end(), argv.begin(), argv.end());
  return command;
}

inline bool IsZombieOrGone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t name_end = content.rfind(')');
  if (name_end == std::string::npos || name_end + 2 >= content.size()) return true;
  const char state = content[name_end + 2];
  return state == 'Z' || state == 'X';
}

}  // namespace postgres_detail

// Why no cluster can start here ("... is absent (Debian package ...)"), or
// nothing when one can.
inline std::optional<std::string> PostgresUnavailable(const std::filesystem::path& bin_dir = DefaultPostgresBinDir()) {
  for (const char* program : {"initdb", "postgres", "pg_isready", "psql", "createdb"}) {
    if (::access((bin_dir / program).c_str(), X_OK) != 0) {
      return (bin_dir / program).string() + " is absent (Debian package postgresql-15)";
    }
  }
  if (!FindProgram("setpriv")) return std::string("setpriv is absent (Debian package util-linux)");
  if (!postgres_detail::FindPostgresAccount()) {
    return std::string("the postgres user is absent (Debian package postgresql-15 creates it)");
  }
  return std::nullopt;
}

// The live processes of a cluster in `dir`: the postmaster names the folder
// on its command line; its backends rename themselves ("postgres:
// checkpointer") but keep the data folder as their working directory.
inline std::vector<pid_t> PostgresProcessesIn(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  const std::string folder = dir.string();
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (postgres_detail::IsZombieOrGone(pid)) continue;
    std::ifstream cmdline_file(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(cmdline_file)), std::istreambuf_iterator<char>());
    std::error_code cwd_error;
    const std::string cwd = fs::read_symlink(entry.path() / "cwd", cwd_error).string();
    const bool works_in_folder = !cwd_error && cwd.compare(0, folder.size(), folder) == 0 &&
                                 (cwd.size() == folder.size() || cwd[folder.size()] == '/');
    if (works_in_folder || cmdline.find(folder) != std::string::npos) found.push_back(pid);
  }
  return found;
}

// A SIGKILLed postmaster leaves behind its small System V "interlock"
// segment (56 bytes, which PostgreSQL 15 makes even with
// shared_memory_type=mmap); no later cluster of ours would reuse it, so each
// killed test would leak one until the kernel's segment limit. Removes the
// PostgreSQL segments of `owner` that nobody is attached to and whose
// creator has died: exactly those, nothing of a running cluster. Returns how
// many it removed.
inline int RemoveOrphanedPostgresSegments(uid_t owner) {
  constexpr int32_t kPostgresSegmentMagic = 679834894;  // PGShmemMagic, src/include/storage/pg_shmem.h
  shm_info info{};
  const int highest = ::shmctl(0, SHM_INFO, reinterpret_cast<shmid_ds*>(&info));
  int removed = 0;
  for (int index = 0; index <= highest; ++index) {
    shmid_ds segment{};
    const int id = ::shmctl(index, SHM_STAT, &segment);
    if (id < 0 || segment.shm_perm.uid != owner || segment.shm_nattch != 0) continue;
    if (segment.shm_segsz < sizeof(int32_t) || !postgres_detail::IsZombieOrGone(segment.shm_cpid)) continue;
    void* mapped = ::shmat(id, nullptr, SHM_RDONLY);
    if (mapped == reinterpret_cast<void*>(-1)) continue;
    const bool is_postgres = *static_cast<const int32_t*>(mapped) == kPostgresSegmentMagic;
    ::shmdt(mapped);
    if (is_postgres && ::shmctl(id, IPC_RMID, nullptr) == 0) ++removed;
  }
  return removed;
}

// A PostgreSQL 15 cluster of its own for one test: initdb in a temporary
// folder, postgres on a unix socket there (no TCP), as the postgres user.
class PostgresCluster {
 public:
  // Starts one; an error says why it cannot (no PostgreSQL 15 binaries, no
  // postgres user: kind kMissingPackage) or why it did not start (with the
  // tail of the log). Tests turn the first into a SKIP, never a pass.
  static Result<std::unique_ptr<PostgresCluster>> Start(
      const std::filesystem::path& bin_dir = DefaultPostgresBinDir()) {
    if (auto why = PostgresUnavailable(bin_dir)) return Status::Error(Layer::kEnvironment, *why);
    const postgres_detail::PostgresAccount account = *postgres_detail::FindPostgresAccount();
    RemoveOrphanedPostgresSegments(account.uid);

    std::unique_ptr<PostgresCluster> cluster(new PostgresCluster(bin_dir, account));
    TRY(cluster->MakeFolder());
    TRY(cluster->InitDb());
    TRY(cluster->StartPostmaster());
    return cluster;
  }

  ~PostgresCluster() { Stop(); }
  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;

  // A libpq URL for `database` on this cluster: postgresql:///NAME?host=DIR&port=P&user=postgres
  std::string Url(const std::string& database = "postgres") const {
    return "postgresql:///" + database + "?host=" + dir_.string() + "&port=" + std::to_string(port_) +
           "&user=postgres";
  }

  // CREATE DATABASE `name` (letters, digits, '_' and '-', as it goes into the
  // URL unescaped); returns its Url.
  Result<std::string> CreateDatabase(const std::string& name) {
    if (name.empty() || name.size() > 63 ||
        name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
            std::string::npos) {
      return Status::Error(Layer::kHarness, "database name '" + name +
                                                "': use 1 to 63 letters, digits, '_' or '-'");
    }
    const fs_path log = dir_ / "createdb.log";
    TRY_ASSIGN(int exit_code, RunProgram({(bin_dir_ / "createdb").string(), "-h", dir_.string(), "-p",
                                          std::to_string(port_), "-U", "postgres", name},
                                         log, std::chrono::seconds(60)));
    if (exit_code != 0) {
      return Status::Error(Layer::kHarness, "createdb " + name + " exited with " +
                                                std::to_string(exit_code) + ":\n" + FileTail(log, 5));
    }
    return Url(name);
  }

  const std::filesystem::path& dir() const { return dir_; }
  pid_t postmaster_pid() const { return postmaster_.pid(); }
  // postgres's own log (stdout and stderr).
  std::filesystem::path log_file() const { return dir_ / "postgres.log"; }

 private:
  using fs_path = std::filesystem::path;
  PostgresCluster(fs_path bin_dir, postgres_detail::PostgresAccount account)
      : bin_dir_(std::move(bin_dir)), account_(account), port_(UniquePort()) {}

  // The port only names the socket file in our own folder (no TCP), so it
  // cannot clash with another cluster; it differs per process and cluster to
  // keep logs and `ps` readable.
  static int UniquePort() {
    static std::atomic<int> started{0};
    return 20000 + static_cast<int>((static_cast<long>(::getpid()) * 8 + started++) % 40000);
  }

  Status MakeFolder() {
    // A unix socket path holds at most 107 bytes: a long TMPDIR falls back to /tmp.
    std::error_code ec;
    fs_path parent = std::filesystem::temp_directory_path(ec);
    if (ec || parent.string().size() > 60) parent = "/tmp";
    std::string pattern = (parent / "tpmlab-pg-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      return Status::Error(Layer::kHarness, "mkdtemp " + pattern + ": " + std::strerror(errno));
    }
    dir_ = pattern;
    if (account_.switch_user && ::chown(dir_.c_str(), account_.uid, account_.gid) != 0) {
      return Status::Error(Layer::kHarness, "chown postgres " + dir_.string() + ": " + std::strerror(errno));
    }
    return Status::Ok();
  }

  Status InitDb() {
    const fs_path log = dir_ / "initdb.log";
    // --locale=C: whatever the test's environment says, a locale every system has.
    TRY_ASSIGN(int exit_code,
               RunProgram(postgres_detail::AsPostgres(
                              account_, {(bin_dir_ / "initdb").string(), "-D", (dir_ / "data").string(), "-U",
                                         "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"}),
                          log, std::chrono::seconds(120)));
    if (exit_code != 0) {
      return Status::Error(Layer::kHarness,
                           "initdb in " + dir_.string() + " exited with " + std::to_string(exit_code) +
                               " (the postgres user must be able to reach the folder):\n" + FileTail(log, 10));
    }
    return Status::Ok();
  }

  Status StartPostmaster() {
    // fsync, full_page_writes and synchronous_commit off: the tests do not
    // test the durability of PostgreSQL itself. Dynamic shared memory in
    // files of the data folder (mmap), so a killed postgres leaves nothing in
    // /dev/shm.
    auto spawned = ChildProcess::Spawn(
        postgres_detail::AsPostgres(
            account_, {(bin_dir_ / "postgres").string(), "-D", (dir_ / "data").string(), "-k", dir_.string(),
                       "-p", std::to_string(port_), "-c", "listen_addresses=", "-c", "fsync=off", "-c",
                       "full_page_writes=off", "-c", "synchronous_commit=off", "-c",
                       "dynamic_shared_memory_type=mmap"}),
        log_file(), ChildProcess::Options{.die_with_parent = true});
    if (!spawned.ok()) return spawned.status();
    postmaster_ = std::move(spawned).value();

    // Generous: CI machines are loaded.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    const fs_path socket = dir_ / (".s.PGSQL." + std::to_string(port_));
    while (true) {
      if (!postmaster_.running()) {
        return Status::Error(Layer::kHarness, "postgres in " + dir_.string() + " " +
                                                   postmaster_.exit_description().value_or("ended") +
                                                   ":\n" + FileTail(log_file(), 10));
      }
      std::error_code ec;
      if (std::filesystem::exists(socket, ec)) {
        auto ready = RunProgram({(bin_dir_ / "pg_isready").string(), "-q", "-h", dir_.string(), "-p",
                                 std::to_string(port_), "-U", "postgres", "-d", "postgres"},
                                dir_ / "pg_isready.log", std::chrono::seconds(10));
        if (ready.ok() && *ready == 0) return Status::Ok();
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        return Status::Timeout("postgres in " + dir_.string() + " did not accept connections within 30 s:\n" +
                               FileTail(log_file(), 10));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  void Stop() {
    // A child forked from the test (and running its destructors) owns neither
    // postgres nor the folder.
    if (::getpid() != owner_) return;
    // SIGINT is PostgreSQL's fast shutdown: it ends the sessions and waits for
    // its backends; ChildProcess sends SIGKILL when that takes too long.
    postmaster_.Kill(SIGINT, std::chrono::seconds(15));
    if (dir_.empty()) return;
    // After a SIGKILL the backends notice the postmaster is gone and exit.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!PostgresProcessesIn(dir_).empty() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    RemoveOrphanedPostgresSegments(account_.uid);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  fs_path bin_dir_;
  postgres_detail::PostgresAccount account_;
  int port_;
  fs_path dir_;
  ChildProcess postmaster_;
  pid_t owner_ = ::getpid();
};

// A precondition: true when a cluster can start here; else the reason the
// case is skipped, in the words needs.h's NAME_label ctest looks for.
struct PostgresPresent {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    const std::optional<std::string> why = PostgresUnavailable();
    boost::test_tools::assertion_result present(!why);
    if (why) present.message() << "skipped: " << *why;
    return present;
  }
};

// For a case marked TPMLAB_NEEDS_POSTGRES: the started cluster, or nullptr
// after failing the case with the reason (PostgreSQL is there, so a cluster
// that does not start is a defect, not a skip).
inline std::unique_ptr<PostgresCluster> StartPostgresForTest() {
  if (auto why = PostgresUnavailable()) {
    BOOST_ERROR("no PostgreSQL cluster: " << *why << "; mark the test case TPMLAB_NEEDS_POSTGRES to skip it");
    return nullptr;
  }
  auto cluster = PostgresCluster::Start();
  if (!cluster.ok()) {
    BOOST_ERROR("the PostgreSQL cluster did not start: " << cluster.status().ToString());
    return nullptr;
  }
  return std::move(cluster).value();
}

}  // namespace tpmlab::test

// Cases that need PostgreSQL: label "postgres", skipped without it. Their
// program is added with tpmlab_add_test(... NEEDS postgres).
#define TPMLAB_NEEDS_POSTGRES \
  *boost::unit_test::label("postgres") * boost::unit_test::precondition(::tpmlab::test::PostgresPresent{})
