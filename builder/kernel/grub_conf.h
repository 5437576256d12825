// GRUB legacy's /boot/grub/grub.conf (CentOS 6, RHEL 6), as `toa-build kernel`
// edits it: the new kernel becomes the default entry (by its index, never
// blindly 0) and gets the vendor guide's `nohz=off`. Pure text in, text out,
// so tests pin every byte; the flow keeps the backup and writes atomically.
#pragma once

#include <string>
#include <vector>

#include "util/result.h"

namespace kernel {

struct GrubEntry {
  std::string title;
  size_t first_line = 0;  // the `title` line
  size_t end_line = 0;    // one past the entry's last line
  std::vector<size_t> kernel_lines;
  std::string kernel_path;  // the kernel line's image, e.g. /vmlinuz-2.6.32-642.el6.x86_64
};

struct GrubConf {
  std::vector<std::string> lines;
  int default_index = 0;
  size_t default_line = std::string::npos;  // npos: no `default=` line (GRUB boots entry 0)
  std::vector<GrubEntry> entries;
};

// Parses the layouts GRUB legacy and grubby write. Refused, with what to do:
// no `title` entry, `default=saved` or a non-numeric default, a default past
// the last entry, an entry with no or several `kernel` lines.
util::Result<GrubConf> ParseGrubConf(const std::string& text);

// The index of the entry booting /vmlinuz-KVER (with or without a /boot
// prefix), or -1.
int FindKernelEntry(const GrubConf& conf, const std::string& kver);

struct GrubEdit {
  std::string text;        // the new grub.conf
  bool added_entry = false;  // installkernel/new-kernel-pkg had not added one
  int default_index = 0;
};

// Makes KVER the default with `arg` (e.g. "nohz=off", replacing another
// nohz= value) on its kernel line. Where no entry boots KVER (installkernel
// did not add one), one is made from the current default entry as grubby
// does: title "TITLE_PREFIX (KVER)", the same root and options, the kernel
// and initrd paths renamed to KVER, put first. The result is parsed again and
// checked; `initrd_path` (empty: none) is the new entry's initrd line. Idempotent: editing the result again changes nothing.
util::Result<GrubEdit> MakeDefaultKernel(const std::string& text, const std::string& kver,
                                         const std::string& arg, const std::string& initrd_path);

}  // namespace kernel
