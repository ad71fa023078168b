// Finding firmware models (harness/firmware_model.h): one search path for
// the CLI, the runner and Python — the folder of the file naming the model
// (and its firmware/), then the models installed with tpmlab. A name that is
// a path is used as is; a miss lists every place looked.
#define BOOST_TEST_MODULE firmware_model
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "harness/firmware_model.h"
#include "harness/scenario_yaml.h"
#include "layer_printing.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;

const fs::path kStockModels = fs::path(TPMLAB_SOURCE_DIR) / "scenarios" / "firmware";

// A folder outside the source tree, as a user's own scenarios are.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "tpmlab-firmware-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path); }
};

void WriteFile(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

std::string ScenarioNaming(const std::string& model) {
  return "name: s\nplatform: {firmware: " + model + "}\nsteps: [boot]\n";
}

bool SameFile(const fs::path& a, const fs::path& b) { return fs::weakly_canonical(a) == fs::weakly_canonical(b); }

BOOST_AUTO_TEST_CASE(the_source_trees_models_count_as_installed) {
  const auto dirs = InstalledFirmwareDirs();
  BOOST_TEST(std::any_of(dirs.begin(), dirs.end(), [](const fs::path& d) { return SameFile(d, kStockModels); }));
}

BOOST_AUTO_TEST_CASE(a_stock_name_works_from_a_scenario_outside_the_repository) {
  TempDir t;
  auto s = LoadScenarioText(ScenarioNaming("baseline"), (t.path / "mine.yaml").string());
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  BOOST_REQUIRE(s->platform.firmware.has_value());
  BOOST_TEST(s->platform.firmware->name == "baseline");
  const fs::path loaded = s->platform.firmware->file;
  const auto dirs = InstalledFirmwareDirs();
  BOOST_TEST(std::any_of(dirs.begin(), dirs.end(), [&](const fs::path& d) { return SameFile(d, loaded.parent_path()); }),
             loaded << " is not an installed model");
  // The reference is kept for bundles: the name as written, and its file.
  BOOST_REQUIRE_EQUAL(s->model_references.size(), 1u);
  BOOST_TEST(s->model_references[0].name == "baseline");
  BOOST_TEST(s->model_references[0].named_in == (t.path / "mine.yaml").string());
  BOOST_TEST(SameFile(s->model_references[0].file, loaded));
}

BOOST_AUTO_TEST_CASE(the_scenario_folder_comes_before_the_installed_models) {
  TempDir t;
  WriteFile(t.path / "firmware" / "baseline.yaml", "name: my-baseline\n");
  auto s = LoadScenarioText(ScenarioNaming("baseline"), (t.path / "mine.yaml").string());
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  BOOST_TEST(s->platform.firmware->name == "my-baseline");

  fs::remove_all(t.path / "firmware");
  WriteFile(t.path / "baseline.yaml", "name: beside-baseline\n");
  s = LoadScenarioText(ScenarioNaming("baseline"), (t.path / "mine.yaml").string());
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  BOOST_TEST(s->platform.firmware->name == "beside-baseline");
}

BOOST_AUTO_TEST_CASE(a_miss_lists_every_place_looked) {
  TempDir t;
  auto s = LoadScenarioText(ScenarioNaming("no-such-model"), (t.path / "mine.yaml").string());
  BOOST_REQUIRE(!s.ok());
  const std::string m = s.status().message();
  BOOST_TEST_MESSAGE(m);
  BOOST_TEST(m.find("firmware model 'no-such-model' not found; looked for ") != std::string::npos, m);
  for (const fs::path& place : FirmwareModelCandidates("no-such-model", t.path)) {
    BOOST_TEST(m.find(place.string()) != std::string::npos, place << " not in: " << m);
  }
  BOOST_TEST(m.find((t.path / "firmware" / "no-such-model.yaml").string()) != std::string::npos, m);
  BOOST_TEST(m.find((t.path / "no-such-model.yaml").string()) != std::string::npos, m);
  BOOST_TEST(m.find((kStockModels / "no-such-model.yaml").string()) != std::string::npos, m);
}

BOOST_AUTO_TEST_CASE(a_name_that_is_a_path_is_used_as_is) {
  TempDir t;
  // Relative to the naming file's folder, and never searched for elsewhere.
  const auto candidates = FirmwareModelCandidates("baseline.yaml", t.path);
  BOOST_REQUIRE_EQUAL(candidates.size(), 1u);
  BOOST_TEST(candidates[0] == t.path / "baseline.yaml");
  auto s = LoadScenarioText(ScenarioNaming("baseline.yaml"), (t.path / "mine.yaml").string());
  BOOST_REQUIRE(!s.ok());
  BOOST_TEST(s.status().message().find((t.path / "baseline.yaml").string() + " does not exist") != std::string::npos,
             s.status().message());

  const fs::path absolute = kStockModels / "boot-order.yaml";
  BOOST_TEST((FirmwareModelCandidates(absolute.string(), t.path) == std::vector<fs::path>{absolute}));
}

BOOST_AUTO_TEST_CASE(inherits_takes_an_absolute_path_as_is) {
  TempDir t;
  WriteFile(t.path / "mine.yaml", "name: mine\ninherits: " + (kStockModels / "baseline.yaml").string() +
                                      "\ns_crtm_version: mine 2.0\n");
  auto m = LoadFirmwareModel(t.path / "mine.yaml");
  BOOST_REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  BOOST_TEST(m->name == "mine");
  BOOST_TEST(!m->boot_entries.empty(), "the inherited keys are there");
  BOOST_TEST(m->s_crtm_version == "mine 2.0");
  BOOST_REQUIRE_EQUAL(m->references.size(), 1u);
  BOOST_TEST(m->references[0].name == (kStockModels / "baseline.yaml").string());

  WriteFile(t.path / "gone.yaml", "name: gone\ninherits: " + (t.path / "nowhere" / "baseline.yaml").string() + "\n");
  auto gone = LoadFirmwareModel(t.path / "gone.yaml");
  BOOST_REQUIRE(!gone.ok());
  const std::string msg = gone.status().message();
  BOOST_TEST(msg.find((t.path / "nowhere" / "baseline.yaml").string() + " does not exist") != std::string::npos, msg);
  BOOST_TEST(msg.find(".yaml.yaml") == std::string::npos, msg);
}

BOOST_AUTO_TEST_CASE(inherits_a_stock_name_from_outside_the_repository) {
  TempDir t;
  WriteFile(t.path / "models" / "pxe-first.yaml", "name: pxe-first\ninherits: baseline\nboot_order: [0, 1]\n");
  auto s = LoadScenarioText(ScenarioNaming("models/pxe-first.yaml"), (t.path / "mine.yaml").string());
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  BOOST_TEST(s->platform.firmware->name == "pxe-first");
  BOOST_TEST(s->platform.firmware->sources.size() == 2u, "the inherited model and the variant");
  BOOST_REQUIRE_EQUAL(s->model_references.size(), 2u);
}

}  // namespace
}  // namespace tpmlab
