# A stand-in for the `platformio/builder/tools/*.py` SCons tools of the PlatformIO Core package,
# version 6.2.0 from PyPI (`pip download platformio==6.2.0 --no-deps`), which bundles and runs
# SCons 4.11.1 (`tool-scons ~4.41101.0` in platformio/dependencies.py).
#
# Every environment method that pio-extra/thinger_patch.py calls, or that the build script
# tests/platformio/espressif32.py (a copy of the upstream espressif32 builder's relevant parts)
# calls, is here with the same name, the same signature and, where it matters for the extra
# script, the same body as in PlatformIO 6.2.0. Each function names the upstream file it comes
# from. What is simplified is said at the function; nothing here downloads or needs a PlatformIO
# installation.
#
# Loaded as an SCons tool (`tools=[..., "pio_tools"]`, like PlatformIO's `toolpath`).

import configparser
import json
import os
import re
import subprocess
import sys

from SCons.Action import Action  # pylint: disable=import-error
from SCons.Script import ARGUMENTS  # pylint: disable=import-error
from SCons.Script import COMMAND_LINE_TARGETS  # pylint: disable=import-error
from SCons.Script import AlwaysBuild  # pylint: disable=import-error


class _Missing:
    """platformio.compat.MISSING"""

    def __repr__(self):
        return "MISSING"


MISSING = _Missing()

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------------------------
# platformio/builder/tools/piotarget.py
# ---------------------------------------------------------------------------------------------


def VerboseAction(_, act, actstr):
    if int(ARGUMENTS.get("PIOVERBOSE", 0)):
        return act
    return Action(act, actstr)


def IsCleanTarget(env):
    return env.GetOption("clean")


def AddTarget(  # pylint: disable=too-many-arguments
    env,
    name,
    dependencies,
    actions,
    title=None,
    description=None,
    group="General",
    always_build=True,
):
    if "__PIO_TARGETS" not in env:
        env["__PIO_TARGETS"] = {}
    assert name not in env["__PIO_TARGETS"]
    env["__PIO_TARGETS"][name] = dict(
        name=name, title=title, description=description, group=group
    )
    target = env.Alias(name, dependencies, actions)
    if always_build:
        AlwaysBuild(target)
    return target


def AddPlatformTarget(env, *args, **kwargs):
    return env.AddTarget(group="Platform", *args, **kwargs)


def AddCustomTarget(env, *args, **kwargs):
    return env.AddTarget(group="Custom", *args, **kwargs)


# ---------------------------------------------------------------------------------------------
# platformio/builder/tools/piohooks.py: AddPreAction / AddPostAction on files that do not
# exist yet are delayed until main.py calls ProcessDelayedActions() after the extra scripts.
# ---------------------------------------------------------------------------------------------


def AddActionWrapper(handler):
    def wraps(env, files, action):
        if not isinstance(files, (list, tuple, set)):
            files = [files]
        known_nodes = []
        unknown_files = []
        for item in files:
            nodes = env.arg2nodes(item, env.fs.Entry)
            if nodes and nodes[0].exists():
                known_nodes.extend(nodes)
            else:
                unknown_files.append(item)
        if unknown_files:
            env.Append(**{"_PIO_DELAYED_ACTIONS": [(handler, unknown_files, action)]})
        if known_nodes:
            return handler(known_nodes, action)
        return []

    return wraps


def ProcessDelayedActions(env):
    for func, nodes, action in env.get("_PIO_DELAYED_ACTIONS", []):
        func(nodes, action)


# ---------------------------------------------------------------------------------------------
# platformio/builder/tools/pioproject.py + platformio/project/config.py
#
# Simplified: the real ProjectConfig also knows every option's type, `extends`, `${...}`
# interpolation and `platformio_*` environment overrides. Here: `[env:NAME]`, then `[env]`;
# options PlatformIO declares as `multiple` are split like ProjectConfigBase.parse_multi_values;
# everything else (all `custom_*` options) is returned as the raw string, as PlatformIO does
# for options it has no metadata for.
# ---------------------------------------------------------------------------------------------

MULTIPLE_OPTIONS = {"extra_scripts", "lib_deps", "build_flags", "lib_extra_dirs", "framework"}

# option -> build environment variable (the `buildenvvar` of platformio/project/options.py)
BUILDENVVARS = {
    "board": "BOARD",
    "framework": "PIOFRAMEWORK",
    "board_build.mcu": "BOARD_MCU",
    "board_build.f_cpu": "BOARD_F_CPU",
    "board_build.f_flash": "BOARD_F_FLASH",
    "board_build.flash_mode": "BOARD_FLASH_MODE",
    "upload_port": "UPLOAD_PORT",
    "upload_protocol": "UPLOAD_PROTOCOL",
    "upload_speed": "UPLOAD_SPEED",
    "upload_flags": "UPLOAD_FLAGS",
    "build_flags": "BUILD_FLAGS",
}


def parse_multi_values(items):
    result = []
    if not items:
        return result
    if not isinstance(items, (list, tuple)):
        items = items.split("\n" if "\n" in items else ", ")
    for item in items:
        item = item.strip()
        if not item or item.startswith((";", "#")):
            continue
        result.append(item)
    return result


class ProjectConfig:
    _instances = {}

    def __init__(self, path):
        self.path = path
        self._parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
        with open(path, encoding="utf8") as fp:
            self._parser.read_file(fp)

    @classmethod
    def get_instance(cls, path):
        if path not in cls._instances:
            cls._instances[path] = ProjectConfig(path)
        return cls._instances[path]

    def walk_options(self, section):
        for sec in (section, "env"):
            if self._parser.has_section(sec):
                for option in self._parser.options(sec):
                    yield sec, option

    def options(self, section):
        return sorted({option for _, option in self.walk_options(section)})

    def get(self, section, option, default=MISSING):
        value = MISSING
        for sec in (section, "env"):
            if self._parser.has_section(sec) and self._parser.has_option(sec, option):
                value = self._parser.get(sec, option)
                break
        if value is MISSING:
            if default is not MISSING:
                return default
            # what PlatformIO raises (configparser.NoOptionError -> InvalidProjectConfError)
            raise configparser.NoOptionError(option, section)
        if option in MULTIPLE_OPTIONS:
            return parse_multi_values(value)
        return value


def GetProjectConfig(env):
    return ProjectConfig.get_instance(env["PROJECT_CONFIG"])


def GetProjectOptions(env, as_dict=False):
    config = env.GetProjectConfig()
    section = "env:" + env["PIOENV"]
    items = [(o, config.get(section, o)) for o in config.options(section)]
    return dict(items) if as_dict else items


def GetProjectOption(env, option, default=MISSING):
    return env.GetProjectConfig().get("env:" + env["PIOENV"], option, default)


def LoadProjectOptions(env):
    config = env.GetProjectConfig()
    section = "env:" + env["PIOENV"]
    for option in config.options(section):
        buildenvvar = BUILDENVVARS.get(option)
        if not buildenvvar or buildenvvar in env:
            continue
        env[buildenvvar] = config.get(section, option)


# ---------------------------------------------------------------------------------------------
# platformio/builder/tools/pioplatform.py + platformio/platform/board.py
#
# Simplified: boards come from tests/platformio/boards/<board>.json (copies of the platform's
# board manifests) instead of an installed platform package; no packages are installed.
# ---------------------------------------------------------------------------------------------


class PlatformBoardConfig:
    def __init__(self, manifest_path):
        self._id = os.path.basename(manifest_path)[:-5]
        assert os.path.isfile(manifest_path)
        self.manifest_path = manifest_path
        with open(manifest_path, encoding="utf8") as fp:
            self._manifest = json.load(fp)

    def get(self, path, default=MISSING):
        try:
            value = self._manifest
            for k in path.split("."):
                value = value[k]
            return value
        except KeyError:
            if default is not MISSING:
                return default
        raise KeyError("Invalid board option '%s'" % path)

    def update(self, path, value):
        node = self._manifest
        keys = path.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value

    def __contains__(self, key):
        try:
            self.get(key)
            return True
        except KeyError:
            return False

    @property
    def id(self):
        return self._id


_BOARDS = {}


def BoardConfig(env, board=None):
    board = board or env.get("BOARD")
    assert board, "BoardConfig: Board is not defined"
    if board not in _BOARDS:
        path = os.path.join(HERE, "boards", board + ".json")
        if not os.path.isfile(path):
            sys.stderr.write("Error: Unknown board ID '%s'\n" % board)
            env.Exit(1)
        _BOARDS[board] = PlatformBoardConfig(path)
    return _BOARDS[board]


class _Platform:
    """The few PlatformBase members the espressif32 builder uses; no package is installed."""

    name = "espressif32"

    @staticmethod
    def get_package_dir(_name):
        return None

    @staticmethod
    def is_embedded():
        return True


def PioPlatform(_):
    return _Platform()


def LoadPioPlatform(env):
    env["PIOPLATFORM"] = env.PioPlatform().name
    if "BOARD" not in env:
        return
    board_config = env.BoardConfig()
    for option, value in env.GetProjectOptions():
        if option.startswith("board_"):
            board_config.update(option.lower()[6:], value)
    # default variables from the board manifest (options.py: data path of each buildenvvar)
    for option, buildenvvar in BUILDENVVARS.items():
        if buildenvvar in env:
            continue
        data_path = option[6:] if option.startswith("board_") else option.replace("_", ".")
        try:
            env[buildenvvar] = board_config.get(data_path)
        except KeyError:
            pass


# ---------------------------------------------------------------------------------------------
# platformio/builder/tools/piomisc.py
# ---------------------------------------------------------------------------------------------


def GetExtraScripts(env, scope):
    items = []
    for item in env.GetProjectOption("extra_scripts", []):
        if scope == "post" and ":" not in item:
            items.append(item)
        elif item.startswith("%s:" % scope):
            items.append(item[len(scope) + 1 :])
    if not items:
        return items
    cwd = os.getcwd()
    os.chdir(env.subst("$PROJECT_DIR"))
    try:
        return [os.path.abspath(env.subst(item)) for item in items]
    finally:
        os.chdir(cwd)


# ---------------------------------------------------------------------------------------------
# platformio/builder/tools/piointegration.py
# ---------------------------------------------------------------------------------------------


def IsIntegrationDump(_):
    return set(["__idedata", "idedata"]) & set(COMMAND_LINE_TARGETS)


# ---------------------------------------------------------------------------------------------
# platformio/builder/tools/piobuild.py
#
# Simplified: instead of collecting the project's src/ and library sources (ProcessProgramDeps,
# ProcessProjectDeps, LDF), the build script hands the object list over in PIOBUILDFILES.
# The Program/alias/AlwaysBuild structure is upstream's.
# ---------------------------------------------------------------------------------------------


def BuildProgram(env):
    if env.get("LDSCRIPT_PATH") and not any("-Wl,-T" in f for f in env["LINKFLAGS"]):
        env.Prepend(LINKFLAGS=["-T", env.subst("$LDSCRIPT_PATH")])

    program = env.Program(env.subst("$PROGPATH"), env["PIOBUILDFILES"])
    env.Replace(PIOMAINPROG=program)

    AlwaysBuild(
        env.Alias(
            "checkprogsize",
            program,
            env.VerboseAction(env.CheckUploadSize, "Checking size $PIOMAINPROG"),
        )
    )

    print("Building in %s mode" % env["BUILD_TYPE"])

    return program


# ---------------------------------------------------------------------------------------------
# platformio/builder/tools/pioupload.py
# ---------------------------------------------------------------------------------------------


def AutodetectUploadPort(*args, **kwargs):
    """Simplified: only a manually specified port (the test always passes UPLOAD_PORT=...)."""
    env = args[0]
    if env.subst("$UPLOAD_PORT"):
        print(env.subst("Using manually specified: $UPLOAD_PORT"))
        return
    sys.stderr.write("Error: Please specify `upload_port` for environment\n")
    env.Exit(1)


def CheckUploadSize(_, target, source, env):
    """Upstream's size check, without the memory-usage bar chart."""
    program_max_size = int(env.BoardConfig().get("upload.maximum_size", 0))
    cmd = env.subst(env.get("SIZECHECKCMD", ""), target=target, source=source)
    if not program_max_size or not cmd:
        return None
    out = subprocess.run(cmd.split(), stdout=subprocess.PIPE, universal_newlines=True, check=False)
    if out.returncode != 0:
        return None
    regexp = re.compile(env.get("SIZEPROGREGEXP"))
    size = 0
    for line in out.stdout.splitlines():
        match = regexp.search(line.strip())
        if match:
            size += sum(int(v) for v in match.groups())
    print("Flash: used %d bytes from %d bytes" % (size, program_max_size))
    if size > program_max_size:
        sys.stderr.write(
            "Error: The program size (%d bytes) is greater than maximum allowed\n" % size
        )
        env.Exit(1)
    return None


def PrintUploadInfo(env):
    configured = env.subst("$UPLOAD_PROTOCOL")
    available = [configured] if configured else []
    if "BOARD" in env:
        available.extend(env.BoardConfig().get("upload", {}).get("protocols", []))
    if available:
        print("AVAILABLE: %s" % ", ".join(sorted(set(available))))
    if configured:
        print("CURRENT: upload_protocol = %s" % configured)


def GetBuildType(env):
    return "release"


def exists(_):
    return True


def generate(env):
    env.AddMethod(VerboseAction)
    env.AddMethod(IsCleanTarget)
    env.AddMethod(AddTarget)
    env.AddMethod(AddPlatformTarget)
    env.AddMethod(AddCustomTarget)
    env.Replace(**{"_PIO_DELAYED_ACTIONS": []})
    env.AddMethod(AddActionWrapper(env.AddPreAction), "AddPreAction")
    env.AddMethod(AddActionWrapper(env.AddPostAction), "AddPostAction")
    env.AddMethod(ProcessDelayedActions)
    env.AddMethod(GetProjectConfig)
    env.AddMethod(GetProjectOptions)
    env.AddMethod(GetProjectOption)
    env.AddMethod(LoadProjectOptions)
    env.AddMethod(BoardConfig)
    env.AddMethod(PioPlatform)
    env.AddMethod(LoadPioPlatform)
    env.AddMethod(GetExtraScripts)
    env.AddMethod(IsIntegrationDump)
    env.AddMethod(BuildProgram)
    env.AddMethod(AutodetectUploadPort)
    env.AddMethod(CheckUploadSize)
    env.AddMethod(PrintUploadInfo)
    env.AddMethod(GetBuildType)
    return env
