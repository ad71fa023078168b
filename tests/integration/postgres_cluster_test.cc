// The PostgreSQL test fixture itself (tests/support/postgres_cluster.h): a
// cluster takes connections, makes databases, and leaves nothing behind —
// neither when it is destroyed nor when its test process is SIGKILLed.
#define BOOST_TEST_MODULE postgres_cluster
#include "postgres_cluster.h"

#include <boost/test/unit_test.hpp>
#include <poll.h>
#include <signal.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace fs = std::filesystem;
using tpmlab::test::PostgresCluster;
using tpmlab::test::PostgresProcessesIn;

namespace {

std::string ReadFile(const fs::path& file) {
  std::ifstream in(file);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The System V segment id a running cluster records in line 7 of
// postmaster.pid ("KEY ID"); -1 when it is not there.
int SegmentIdOf(const fs::path& data_dir) {
  std::ifstream pid_file(data_dir / "postmaster.pid");
  std::string line;
  for (int n = 1; n <= 7 && std::getline(pid_file, line); ++n) {
    if (n != 7) continue;
    long key = 0;
    int id = -1;
    if (std::sscanf(line.c_str(), "%ld %d", &key, &id) == 2) return id;
  }
  return -1;
}

bool SegmentExists(int id) {
  shmid_ds segment{};
  return ::shmctl(id, IPC_STAT, &segment) == 0;
}

// Waits, generously (a loaded machine), for the processes of `dir` to end.
bool NoProcessesWithin(const fs::path& dir, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!PostgresProcessesIn(dir).empty()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// psql's answer to `sql` on `url`, or its error output after "exit N: ".
std::string Psql(const fs::path& out_dir, const std::string& url, const std::string& sql) {
  const fs::path out = out_dir / "psql.out";
  fs::remove(out);
  auto exit_code = tpmlab::RunProgram(
      {(tpmlab::test::DefaultPostgresBinDir() / "psql").string(), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
       url, "-c", sql},
      out, std::chrono::seconds(60));
  if (!exit_code.ok()) return exit_code.status().ToString();
  std::string answer = ReadFile(out);
  while (!answer.empty() && answer.back() == '\n') answer.pop_back();
  return *exit_code == 0 ? answer : "exit " + std::to_string(*exit_code) + ": " + answer;
}

}  // namespace

BOOST_AUTO_TEST_CASE(without_the_binaries_start_says_which_package_is_missing) {
  auto cluster = PostgresCluster::Start("/nonexistent/postgresql/15/bin");
  BOOST_REQUIRE(!cluster.ok());
  BOOST_TEST(std::string(tpmlab::ErrorKindName(cluster.status().kind())) ==
             tpmlab::ErrorKindName(tpmlab::ErrorKind::kMissingPackage));
  BOOST_TEST(cluster.status().message() ==
             "/nonexistent/postgresql/15/bin/initdb is absent (Debian package postgresql-15)");
}

BOOST_AUTO_TEST_CASE(a_cluster_takes_connections_to_the_databases_it_creates, TPMLAB_NEEDS_POSTGRES) {
  auto cluster = tpmlab::test::StartPostgresForTest();
  if (!cluster) return;
  const fs::path dir = cluster->dir();
  const std::string url_of_postgres = cluster->Url();
  BOOST_TEST(url_of_postgres.rfind("postgresql:///postgres?host=" + dir.string() + "&port=", 0) == 0u);
  BOOST_TEST(url_of_postgres.ends_with("&user=postgres"));
  BOOST_TEST(Psql(dir, cluster->Url(), "select 1") == "1");

  auto url = cluster->CreateDatabase("tpmlab_results");
  BOOST_REQUIRE_MESSAGE(url.ok(), url.status().ToString());
  BOOST_TEST(*url == cluster->Url("tpmlab_results"));
  BOOST_TEST(Psql(dir, *url, "select current_database()") == "tpmlab_results");
  // No TCP: the cluster listens on its socket only.
  BOOST_TEST(Psql(dir, *url, "show listen_addresses") == "");

  auto again = cluster->CreateDatabase("tpmlab_results");
  BOOST_TEST(!again.ok());
  BOOST_TEST(again.status().message().find("already exists") != std::string::npos, again.status().message());
  BOOST_TEST(!cluster->CreateDatabase("x; drop").ok());
}

BOOST_AUTO_TEST_CASE(a_destroyed_cluster_leaves_no_process_segment_or_folder, TPMLAB_NEEDS_POSTGRES) {
  auto cluster = tpmlab::test::StartPostgresForTest();
  if (!cluster) return;
  const fs::path dir = cluster->dir();
  // A session of its own, so that there is a backend to end as well.
  BOOST_TEST(Psql(dir, cluster->Url(), "select 1") == "1");
  BOOST_TEST(PostgresProcessesIn(dir).size() >= 2u, "the postmaster and its background processes");
  const int segment = SegmentIdOf(dir / "data");
  BOOST_TEST(segment >= 0);

  cluster.reset();
  BOOST_TEST(PostgresProcessesIn(dir).empty());
  BOOST_TEST(!fs::exists(dir));
  BOOST_TEST(!SegmentExists(segment));
}

// A test program SIGKILLed mid-test (a ctest timeout, a crash test) takes its
// postgres along (PR_SET_PDEATHSIG, kept across setpriv's change of user),
// whose backends then end by themselves; the segment it leaves goes with the
// next cluster's start.
BOOST_AUTO_TEST_CASE(a_killed_test_program_takes_its_cluster_along, TPMLAB_NEEDS_POSTGRES) {
  int report[2];
  BOOST_REQUIRE(::pipe(report) == 0);
  const pid_t test_program = ::fork();
  BOOST_REQUIRE(test_program >= 0);
  if (test_program == 0) {
    ::close(report[0]);
    auto cluster = PostgresCluster::Start();
    const std::string line = cluster.ok() ? (*cluster)->dir().string() + "\n"
                                          : "error: " + cluster.status().ToString() + "\n";
    (void)!::write(report[1], line.data(), line.size());
    while (true) ::pause();  // until SIGKILLed, the cluster still running
  }
  ::close(report[1]);
  std::string line;
  pollfd readable{report[0], POLLIN, 0};
  char c = 0;
  while (::poll(&readable, 1, 90'000) == 1 && ::read(report[0], &c, 1) == 1 && c != '\n') line += c;
  ::close(report[0]);
  const fs::path dir = line;
  const bool started = !line.empty() && line.rfind("error: ", 0) != 0;
  const int segment = started ? SegmentIdOf(dir / "data") : -1;
  const size_t processes = started ? PostgresProcessesIn(dir).size() : 0;

  ::kill(test_program, SIGKILL);
  int status = 0;
  ::waitpid(test_program, &status, 0);
  BOOST_REQUIRE_MESSAGE(started, "the cluster did not start: " << line);
  BOOST_TEST(processes >= 2u, "the postmaster and its background processes");
  BOOST_TEST(NoProcessesWithin(dir, std::chrono::seconds(30)));

  // Left behind, attached to by nobody; the next start removes it.
  BOOST_TEST(segment >= 0);
  BOOST_TEST(SegmentExists(segment));
  {
    auto next = tpmlab::test::StartPostgresForTest();
    BOOST_TEST(!SegmentExists(segment));
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  BOOST_TEST(!fs::exists(dir));
}
