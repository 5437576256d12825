// The files toa-build writes on a host, rendered byte for byte. Kept apart
// from the installer so tests can pin their exact content.
#pragma once

#include <string>
#include <vector>

#include "host/profile.h"

namespace host {

inline constexpr const char* kDkmsName = "toa-build";
inline constexpr const char* kDkmsVersion = "0.1.0";
inline constexpr const char* kSourcePath = "/usr/src/toa-build-0.1.0";
inline constexpr const char* kOptionsPath = "/etc/modprobe.d/toa-build.conf";
inline constexpr const char* kSysconfigModulesPath = "/etc/sysconfig/modules/toa.modules";
inline constexpr const char* kModulesLoadPath = "/etc/modules-load.d/toa.conf";
inline constexpr const char* kSuseKernelPath = "/etc/sysconfig/kernel";
inline constexpr const char* kUnitPath = "/etc/systemd/system/toa-build.service";
inline constexpr const char* kUnitWantsPath = "/etc/systemd/system/multi-user.target.wants/toa-build.service";
inline constexpr const char* kContainerDir = "/opt/toa-build";
inline constexpr const char* kKbuildInstallDir = "extra/toa-build";  // under /lib/modules/KVER
inline constexpr const char* kStatePath = "/var/lib/toa-build/state.json";

// /etc/modprobe.d/toa-build.conf: module options (trusted_sources).
std::string RenderModprobeOptions(const std::vector<std::string>& modules,
                                  const std::string& trusted_sources);

// The vendor guide's RHEL-family boot script: load each module when this
// kernel has it (modinfo finds the file), as /etc/sysconfig/modules/*.modules.
std::string RenderSysconfigModules(const std::vector<std::string>& modules);

// /etc/modules-load.d/toa.conf.
std::string RenderModulesLoad(const std::vector<std::string>& modules);

// /etc/sysconfig/kernel with `modules` added to (add) or removed from
// MODULES_LOADED_ON_BOOT; every other line kept as it was.
std::string EditSuseModulesOnBoot(const std::string& old_content,
                                  const std::vector<std::string>& modules, bool add);

// /etc/kernel/postinst.d/toa-build for the kbuild strategy: rebuild for a
// newly installed kernel (called with KVER as $1).
std::string RenderKernelHook();

// CoreOS: the build recipe, the script run inside the builder container and
// the systemd unit that builds (if needed) and loads the modules at boot.
std::string RenderContainerfile(const ContainerSpec& spec);
std::string RenderContainerBuildScript();
std::string RenderCoreosUnit(const ContainerSpec& spec, const std::vector<std::string>& modules,
                             const std::string& trusted_sources);
// Argument lists shared by install and the unit.
std::vector<std::string> ContainerBuildCommand(const ContainerSpec& spec, const std::string& kernel);
std::vector<std::string> ContainerRunCommand(const ContainerSpec& spec, const std::string& kernel);

}  // namespace host
