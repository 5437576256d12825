// Style test (ctest `checkpatch`): the kernel's scripts/checkpatch.pl, from
// Debian's linux-source-6.1, over every kernel source and header of module/.
// Fails on any ERROR or WARNING; compat.h may test kernel versions.
#include <iostream>

#include <CLI/CLI.hpp>

#include "lab/checkpatch.h"
#include "lab/paths.h"

int main(int argc, char** argv) {
  CLI::App app{"Run the kernel's checkpatch.pl over the modules' sources"};
  std::string config = lab::DefaultMatrixPath(), row_name = "debian-12";
  std::string package = "linux-source-6.1", module_dir = lab::SourceDir() + "/module";
  app.add_option("--config", config, "Kernel matrix file");
  app.add_option("--row", row_name, "Row whose build root's apt downloads the source package");
  app.add_option("--package", package, "Debian package holding scripts/checkpatch.pl");
  app.add_option("--module-dir", module_dir, "Module tree to check");
  CLI11_PARSE(app, argc, argv);

  auto matrix = lab::LoadMatrix(config);
  if (!matrix) {
    std::cerr << "checkpatch: " << matrix.error().message << "\n";
    return 2;
  }
  auto rows = lab::SelectRows(*matrix, row_name);
  if (!rows || rows->size() != 1) {
    std::cerr << "checkpatch: no row " << row_name << " in " << config << "\n";
    return 2;
  }
  util::SystemProcessRunner runner;
  auto script = lab::FetchCheckpatch(rows->front(), package, runner, lab::CacheRoot());
  if (!script) {
    std::cerr << "checkpatch: " << script.error().message << "\n";
    return 2;
  }
  auto files = lab::ModuleSourceFiles(module_dir);
  if (files.empty()) {
    std::cerr << "checkpatch: no .c or .h files under " << module_dir << "\n";
    return 2;
  }
  auto findings = lab::RunCheckpatch(*script, files, runner);
  if (!findings) {
    std::cerr << "checkpatch: " << findings.error().message << "\n";
    return 2;
  }
  for (const auto& f : *findings) std::cout << f.ToString() << "\n";
  std::cout << files.size() << " files checked with " << *script << " (" << package << "): "
            << findings->size() << " finding(s)\n";
  return findings->empty() ? 0 : 1;
}
