// Kernel rows built from a distro's own kernel source (`source:` in the
// matrix): the tarball is found in a search path (or fetched from the row's
// archive URL and unpacked), checked to be the tree the row names, patched
// with the row's toolchain patches, configured (base config + fragment, every
// fragment line checked), built in the row's build root by its compiler, and
// kept as one cache entry inside that root: the built tree (what out-of-tree
// modules compile against), the bzImage and the installed modules.
#pragma once

#include <string>
#include <vector>

#include "lab/matrix.h"
#include "lab/provision.h"
#include "util/process.h"
#include "util/result.h"

namespace lab {

// The environment variable holding more source folders (':'-separated).
inline constexpr const char* kSourcesEnv = "TOA_BUILD_KERNEL_SOURCES";

// Folders searched for a row's tarball, in order: `dirs` (--sources), then
// $TOA_BUILD_KERNEL_SOURCES, then <cache>/sources (where fetched files go).
std::vector<std::string> SourceSearchPath(const std::vector<std::string>& dirs,
                                          const std::string& cache_root);

// The tarball's host path: the first regular file of that name in the search
// path; else, when the row has an archive URL, fetched into <cache>/sources.
// Errors say which file to put where.
util::Result<std::string> FindSourceTarball(const KernelRow& row,
                                            const std::vector<std::string>& search_path,
                                            const std::string& cache_root,
                                            util::ProcessRunner& runner, const ProgressFn& progress);

// Parsed `NAME = value` lines of a kernel Makefile (the first of each name).
std::vector<std::pair<std::string, std::string>> MakefileVariables(const std::string& makefile);

// Why a tree's Makefile is not the one the row names ("" when it is).
std::string MakefileMismatch(const KernelSource& source, const std::string& makefile);

// A .config or fragment as symbol -> value ("y", "m", "n" for "is not set",
// or the literal value). Lines that are neither are ignored.
std::vector<std::pair<std::string, std::string>> ConfigSymbols(const std::string& text);

// `config` with every symbol of `fragment` replaced by the fragment's line.
std::string MergeConfig(const std::string& config, const std::string& fragment);

// The fragment lines the final .config does not hold (unmet dependencies
// make olddefconfig drop them), as "CONFIG_X=y (got: n)".
std::vector<std::string> LostConfigLines(const std::string& fragment, const std::string& config);

// The row's release, tree, image and modules, building the kernel when the
// cache has no complete entry for (tarball checksum, config, patches,
// compiler). Needs the build root (made by the caller's EnsureRoot).
util::Result<ProvisionedKernel> ProvisionSourceRow(const KernelRow& row, util::ProcessRunner& runner,
                                                   const std::string& cache_root,
                                                   const ProgressFn& progress,
                                                   const ProvisionOptions& options);

}  // namespace lab
