// The kernel matrix: rows of distros/kernels.yaml, each naming where a
// kernel comes from (suite, packages) and the release whose userspace builds
// modules for it. Adding a row is editing the YAML, never this code.
#pragma once

#include <string>
#include <vector>

#include "util/result.h"

namespace lab {

struct KernelRow {
  std::string name;          // "debian-12"
  std::string suite;         // apt suite of the kernel packages: "bookworm", "bookworm-backports", "sid"
  // Suite that also publishes this row's kernels (Debian ships stable kernel
  // updates through the security archive); empty when there is none. The
  // highest version found in `suite` and `security_suite` wins.
  std::string security_suite;
  std::string root_release;  // debootstrap release of the build root ("bookworm" for bpo too)
  std::string image_meta;    // metapackage naming the image: "linux-image-amd64"
  std::string headers_meta;  // metapackage resolving the version: "linux-headers-amd64"
  // Packages that make up the image, templates with {kver}:
  // ["linux-image-{kver}"], or sid's ["linux-binary-{kver}", "linux-modules-{kver}"].
  std::vector<std::string> image_packages;
  std::string headers_package;  // "linux-headers-{kver}"
  std::string pin;              // exact kver for reproducibility; empty = resolve via headers_meta
  bool optional = false;        // flavour rows (cloud, rt) are not in the default set
  std::string vmlinuz_glob;     // vmlinuz inside the extracted image: "boot/vmlinuz-{kver}"
  std::string modules_dir;      // "lib/modules/{kver}" or "usr/lib/modules/{kver}"
  std::string mirror;           // Debian archive for suite and root (from the file's `mirror`)
  std::string security_mirror;  // archive of security_suite (from the file's `security_mirror`)
};

struct Matrix {
  std::string file;
  std::vector<KernelRow> rows;
  std::string default_row;
};

// Parses and validates a matrix file. Errors read "<file>:<line>: <what is wrong>".
util::Result<Matrix> LoadMatrix(const std::string& path);
// Same, from text already read (`file` is only used in messages).
util::Result<Matrix> ParseMatrix(const std::string& text, const std::string& file);

// The repository's own matrix: SourceDir()/distros/kernels.yaml.
std::string DefaultMatrixPath();

// The row called `name`, or an error listing the rows there are.
util::Result<KernelRow> FindRow(const Matrix& matrix, const std::string& name);

// The rows a comma-separated list names ("a,b"); empty list = every
// non-optional row; "all" = every row.
util::Result<std::vector<KernelRow>> SelectRows(const Matrix& matrix, const std::string& list);

// Replaces every "{kver}" in `tmpl` with `kver`.
std::string ExpandKver(const std::string& tmpl, const std::string& kver);

}  // namespace lab
