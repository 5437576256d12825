// Cache entries that are either complete or absent. An entry is a directory
// built under a temporary name and renamed into place only once complete, with
// a stamp file saying what it was built from. An entry whose stamp is missing
// or different, or whose key files are gone, is deleted and rebuilt: never
// trusted. Each entry has its own lock so concurrent runs do not collide.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "util/fs.h"
#include "util/process.h"
#include "util/result.h"

namespace lab {

// The stamp file inside every complete entry.
inline constexpr const char* kStampName = ".complete";

struct CacheEntrySpec {
  std::string dir;                     // final path of the entry
  std::string lock;                    // lock file path (one per entry)
  std::string recipe;                  // what the entry is built from; stored in the stamp
  std::vector<std::string> key_files;  // relative to dir; all must exist for the entry to count
  int lock_timeout_s = 3600;           // another run may be building the same entry
};

// Why an entry is not usable, or empty when it is complete and matches `recipe`.
std::string EntryProblem(const CacheEntrySpec& spec);

// Stamp contents of a complete entry (recipe + "\n" + extra lines), or an error.
util::Result<std::string> ReadStamp(const std::string& dir);

// Ensures the entry exists and is complete. Holds the entry's lock
// throughout. When the entry is unusable it is removed (unmounting anything
// left mounted inside it), `build` fills a fresh temporary directory, the
// stamp is written, and the directory is renamed into place. `build` returns
// extra stamp lines (key=value) to record, e.g. a resolved version.
// Returns the stamp contents and whether it was (re)built.
struct EnsureResult {
  std::string stamp;
  bool built = false;
  std::string rebuilt_because;  // EntryProblem() before the build ("" when absent)
};
util::Result<EnsureResult> EnsureEntry(
    const CacheEntrySpec& spec, util::ProcessRunner& runner,
    const std::function<util::Result<std::string>(const std::string& tmp_dir)>& build);

// Removes a directory tree, first unmounting (via `umount`) any mount point
// below it so that a root left with /proc mounted can be deleted safely.
util::Status RemoveTree(const std::string& dir, util::ProcessRunner& runner);

// Mount points at or below `dir` (deepest first), from /proc/self/mountinfo.
std::vector<std::string> MountsBelow(const std::string& dir);

// "key=value" lookup in stamp text; empty when absent.
std::string StampValue(const std::string& stamp, const std::string& key);

}  // namespace lab
