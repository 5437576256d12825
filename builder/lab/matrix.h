// The kernel matrix: rows of distros/kernels.yaml, each naming where a
// kernel comes from (suite, packages) and the release whose userspace builds
// modules for it. Adding a row is editing the YAML, never this code.
#pragma once

#include <string>
#include <vector>

#include "util/result.h"

namespace lab {

// A row built from a distro's own kernel source instead of Debian packages
// (CentOS 7's 3.10.0-1160.el7): the tarball, how to configure and patch it,
// and the release it must turn out to be. Paths are absolute after parsing
// (given relative to the matrix file's folder).
struct KernelSource {
  std::string tarball;       // file name, looked up in the sources search path
  std::string top_dir;       // the folder the tarball unpacks to
  // Makefile variables the unpacked tree must have (VERSION, PATCHLEVEL,
  // SUBLEVEL, RHEL_RELEASE...): a different tree is refused before building.
  std::vector<std::pair<std::string, std::string>> makefile;
  std::string extraversion;  // "-1160.el7.x86_64", as the distro's RPM spec sets it
  std::string base_config;   // make target giving the starting .config: "x86_64_defconfig"
  std::string config;        // Kconfig fragment merged on top (every line must survive)
  std::string patches_dir;   // toolchain patches, *.patch applied in name order; may be empty
  std::string archive_url;   // where a user gets it (an SRPM); fetched when the file is absent
  std::string archive_member;  // the tarball's name inside archive_url (default: tarball)
  int build_minutes = 60;    // deadline of the kernel build
  // The release the tree builds: VERSION.PATCHLEVEL.SUBLEVEL + extraversion.
  std::string Kver() const;
};

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
  // Set for rows built from source (`source:` in the YAML); the Debian
  // package keys (suite, image_meta, ...) do not apply to them then.
  bool from_source = false;
  KernelSource source;
  std::string note;  // why the row is configured as it is (`note:`), shown in reports
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
