// distros/e2e.yaml: which releases the end-to-end host test runs, with the
// kernel row each image boots and the row it upgrades to inside the VM.
#pragma once

#include <string>
#include <vector>

#include "util/result.h"

namespace e2e {

struct ReleaseSpec {
  std::string name;         // "debian-12"
  std::string release;      // debootstrap release: "bookworm"
  std::string kernel_row;   // kernels.yaml row the image boots
  std::string upgrade_row;  // kernels.yaml row installed in the VM
};

struct Config {
  std::string file;
  std::vector<std::string> image_packages;
  int image_headroom_mb = 2048;
  std::vector<ReleaseSpec> releases;
  std::vector<std::string> defaults;
};

util::Result<Config> ParseConfig(const std::string& text, const std::string& file);
util::Result<Config> LoadConfig(const std::string& path);
// SourceDir()/distros/e2e.yaml.
std::string DefaultConfigPath();

// The releases a comma-separated list names; empty = the file's default list.
util::Result<std::vector<ReleaseSpec>> SelectReleases(const Config& config, const std::string& list);

}  // namespace e2e
