#include "host/artifacts.h"

#include <sstream>

#include "util/process.h"

namespace host {

namespace {
const char* kHeader = "# Written by toa-build install; removed by toa-build uninstall.\n";
}

std::string RenderModprobeOptions(const std::vector<std::string>& modules,
                                  const std::string& trusted_sources) {
  std::string out = kHeader;
  for (const auto& m : modules) out += "options " + m + " trusted_sources=" + trusted_sources + "\n";
  return out;
}

std::string RenderSysconfigModules(const std::vector<std::string>& modules) {
  std::string out = "#!/bin/sh\n";
  out += kHeader;
  out += "# Loads the modules at boot when this kernel has them (rebuilt by DKMS on upgrades).\n";
  for (const auto& m : modules) {
    out += "/sbin/modinfo -F filename " + m + " > /dev/null 2>&1\n";
    out += "if [ $? -eq 0 ]; then\n";
    out += "    /sbin/modprobe " + m + "\n";
    out += "fi\n";
  }
  return out;
}

std::string RenderModulesLoad(const std::vector<std::string>& modules) {
  std::string out = kHeader;
  for (const auto& m : modules) out += m + "\n";
  return out;
}

std::string EditSuseModulesOnBoot(const std::string& old_content,
                                  const std::vector<std::string>& modules, bool add) {
  const std::string key = "MODULES_LOADED_ON_BOOT=";
  std::istringstream in(old_content);
  std::string out, line;
  bool found = false;
  auto edit = [&](const std::string& value) {
    std::istringstream words(value);
    std::vector<std::string> list;
    for (std::string w; words >> w;) {
      bool ours = false;
      for (const auto& m : modules) ours = ours || w == m;
      if (!ours) list.push_back(w);
    }
    if (add)
      for (const auto& m : modules) list.push_back(m);
    std::string joined;
    for (const auto& w : list) joined += (joined.empty() ? "" : " ") + w;
    return joined;
  };
  while (std::getline(in, line)) {
    bool had_newline = !in.eof();
    if (!found && line.rfind(key, 0) == 0) {
      found = true;
      std::string value = line.substr(key.size());
      if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
          value.back() == value.front())
        value = value.substr(1, value.size() - 2);
      line = key + "\"" + edit(value) + "\"";
    }
    out += line;
    if (had_newline) out += "\n";
  }
  if (!found && add) {
    if (!out.empty() && out.back() != '\n') out += "\n";
    out += "## Type: string\n## Description: modules loaded at boot (toa-build added its own)\n";
    out += key + "\"" + edit("") + "\"\n";
  }
  return out;
}

std::string RenderKernelHook() {
  std::string src = kSourcePath;
  std::string out = "#!/bin/sh\n";
  out += kHeader;
  out += "# Rebuilds the TOA/UOA modules for a newly installed kernel (kbuild strategy,\n"
         "# no DKMS here). Kernel packages call it with the kernel release as $1.\n";
  out += "set -e\n";
  out += "kver=\"$1\"\n";
  out += "[ -n \"$kver\" ] || exit 0\n";
  out += "if [ ! -e \"/lib/modules/$kver/build/Makefile\" ]; then\n";
  out += "    echo \"toa-build: no headers for $kver yet; after installing them run: toa-build install --kernel $kver\" >&2\n";
  out += "    exit 0\n";
  out += "fi\n";
  out += "make -C \"/lib/modules/$kver/build\" M=" + src + " clean\n";
  out += "make -C \"/lib/modules/$kver/build\" M=" + src + " modules\n";
  out += "make -C \"/lib/modules/$kver/build\" M=" + src + " INSTALL_MOD_DIR=" + kKbuildInstallDir +
         " modules_install\n";
  out += "depmod -a \"$kver\"\n";
  return out;
}

std::string RenderContainerfile(const ContainerSpec& spec) {
  std::string out = kHeader;
  out += "# Builder for the TOA/UOA modules; the kernel build tree comes from the host.\n";
  out += "FROM " + spec.image + "\n";
  if (!spec.setup.empty()) out += "RUN " + spec.setup + "\n";
  out += "COPY . /src\n";
  out += "ENTRYPOINT [\"/bin/sh\", \"/src/container-build.sh\"]\n";
  return out;
}

std::string RenderContainerBuildScript() {
  std::string out = "#!/bin/sh\n";
  out += kHeader;
  out += "# Runs in the builder container: builds for kernel $1 into /out/$1 unless there.\n";
  out += "set -e\n";
  out += "kver=\"$1\"\n";
  out += "[ -f \"/out/$kver/toa.ko\" ] && [ -f \"/out/$kver/uoa.ko\" ] && exit 0\n";
  out += "rm -rf /tmp/toa-build && cp -a /src /tmp/toa-build\n";
  out += "make -C \"/lib/modules/$kver/build\" M=/tmp/toa-build modules\n";
  out += "mkdir -p \"/out/$kver\"\n";
  out += "find /tmp/toa-build -name '*.ko' -exec cp {} \"/out/$kver/\" \\;\n";
  return out;
}

std::vector<std::string> ContainerBuildCommand(const ContainerSpec& spec, const std::string& kernel) {
  return {spec.runtime, "build", "-t", "toa-build-builder:" + kernel, std::string(kContainerDir) + "/src"};
}

std::vector<std::string> ContainerRunCommand(const ContainerSpec& spec, const std::string& kernel) {
  std::vector<std::string> argv{spec.runtime, "run", "--rm"};
  if (spec.mount_host_modules) {
    argv.push_back("-v");
    argv.push_back("/lib/modules:/lib/modules:ro");
    argv.push_back("-v");
    argv.push_back("/usr/src:/usr/src:ro");
  }
  argv.push_back("-v");
  argv.push_back(std::string(kContainerDir) + "/modules:/out");
  argv.push_back("toa-build-builder:" + kernel);
  argv.push_back(kernel);
  return argv;
}

std::string RenderCoreosUnit(const ContainerSpec& spec, const std::vector<std::string>& modules,
                             const std::string& trusted_sources) {
  std::string runtime = "/usr/bin/" + spec.runtime;
  auto build = ContainerBuildCommand(spec, "%v");
  auto run = ContainerRunCommand(spec, "%v");
  build[0] = runtime;
  run[0] = runtime;
  std::string out = kHeader;
  out += "[Unit]\n";
  out += "Description=TOA/UOA modules (toa-build): build for this kernel if needed, then load\n";
  out += "Wants=network-online.target\n";
  out += "After=network-online.target " + spec.runtime + ".service\n";
  out += "\n[Service]\n";
  out += "Type=oneshot\n";
  out += "RemainAfterExit=yes\n";
  out += "ExecStartPre=" + util::FormatCommand(build) + "\n";
  out += "ExecStartPre=" + util::FormatCommand(run) + "\n";
  for (const auto& m : modules) {
    std::string line = "ExecStart=/usr/sbin/insmod " + std::string(kContainerDir) + "/modules/%v/" + m + ".ko";
    if (!trusted_sources.empty()) line += " trusted_sources=" + trusted_sources;
    out += line + "\n";
  }
  for (auto it = modules.rbegin(); it != modules.rend(); ++it)
    out += "ExecStop=/usr/sbin/rmmod " + *it + "\n";
  out += "\n[Install]\nWantedBy=multi-user.target\n";
  return out;
}

}  // namespace host
