# SCons tool loaded by tests/platformio/SConstruct: this project's own small emulation of the
# environment methods PlatformIO adds to a build, limited to the ones pio-extra/thinger_patch.py
# and tests/platformio/espressif32.py call. Method names and call signatures are those of
# PlatformIO Core 6.2.0's build API, so the extra script runs unchanged; the code is written for
# this test and needs no PlatformIO installation.

import configparser
import json
import os
import subprocess
import sys

import SCons.Environment  # pylint: disable=import-error
from SCons.Action import Action  # pylint: disable=import-error
from SCons.Script import ARGUMENTS, AlwaysBuild  # pylint: disable=import-error

HERE = os.path.dirname(os.path.abspath(__file__))
_NO_DEFAULT = object()
_VERBOSE = ARGUMENTS.get("PIOVERBOSE", "0") not in ("", "0")

# platformio.ini options whose value is a list (one entry per line or comma-separated)
_LIST_OPTIONS = ("extra_scripts",)

_ini_cache = {}
_board_cache = {}
_deferred = []


# ---- platformio.ini ------------------------------------------------------------------------


def _ini(path):
    if path not in _ini_cache:
        parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
        with open(path, encoding="utf8") as fp:
            parser.read_file(fp)
        _ini_cache[path] = parser
    return _ini_cache[path]


def GetProjectOption(env, option, default=_NO_DEFAULT):
    """The option of [env:$PIOENV], else of [env]. Values are the raw strings (what PlatformIO
    6.2.0 returns for custom_* options), except the list-valued options above."""
    parser = _ini(env.subst("$PROJECT_CONFIG"))
    for section in ("env:" + env.subst("$PIOENV"), "env"):
        if parser.has_option(section, option):
            raw = parser.get(section, option)
            if option not in _LIST_OPTIONS:
                return raw
            entries = raw.splitlines() if "\n" in raw else raw.split(",")
            return [e.strip() for e in entries if e.strip()]
    if default is _NO_DEFAULT:
        raise KeyError("platformio.ini: [env:%s] has no option %s" % (env["PIOENV"], option))
    return default


# ---- boards --------------------------------------------------------------------------------


class _Board:
    """Dotted-path access to a board manifest (tests/platformio/boards/<id>.json)."""

    def __init__(self, data):
        self._data = data

    def get(self, path, default=_NO_DEFAULT):
        node = self._data
        for key in path.split("."):
            if not isinstance(node, dict) or key not in node:
                if default is _NO_DEFAULT:
                    raise KeyError("board has no option %s" % path)
                return default
            node = node[key]
        return node


def BoardConfig(env, board=None):
    board = board or env.subst("$BOARD")
    if board not in _board_cache:
        manifest = os.path.join(HERE, "boards", "%s.json" % board)
        if not board or not os.path.isfile(manifest):
            sys.stderr.write("Error: unknown board '%s' (no %s)\n" % (board, manifest))
            env.Exit(1)
        with open(manifest, encoding="utf8") as fp:
            _board_cache[board] = _Board(json.load(fp))
    return _board_cache[board]


# ---- actions and targets -------------------------------------------------------------------


def VerboseAction(env, act, actstr):
    """The action, labelled actstr; with PIOVERBOSE=1 SCons prints the command instead."""
    return Action(act) if _VERBOSE else Action(act, actstr)


def _add_target(
    env, name, dependencies, actions, title=None, description=None, always_build=True
):
    """env.AddPlatformTarget / env.AddCustomTarget: an alias, rebuilt on every run unless
    always_build=False. title and description only feed `pio run --list-targets`."""
    alias = env.Alias(name, dependencies, actions)
    if always_build:
        AlwaysBuild(alias)
    return alias


def _hook(scons_method):
    """AddPreAction / AddPostAction. PlatformIO 6.2.0 attaches an action to a target that does
    not exist yet (no file on disk, no alias) only after all extra scripts ran, so a script may
    name targets that are declared later; emulated with ApplyDeferredHooks()."""

    def declared(env, item):
        nodes = env.arg2nodes(item, env.fs.Entry)
        return bool(nodes) and all(node.exists() for node in nodes)

    def hook(env, files, action):
        ready, pending = [], []
        for item in files if isinstance(files, (list, tuple)) else [files]:
            (ready if declared(env, item) else pending).append(item)
        if pending:
            _deferred.append(lambda: scons_method(env, pending, action))
        return scons_method(env, ready, action) if ready else []

    return hook


def ApplyDeferredHooks(env):
    while _deferred:
        _deferred.pop(0)()


# ---- program -------------------------------------------------------------------------------


def _check_size(target, source, env):
    """Fail when text + data of the ELF exceed the board's upload.maximum_size."""
    limit = int(env.BoardConfig().get("upload.maximum_size", 0))
    if not limit:
        return 0
    out = subprocess.run(
        [env.subst("$SIZETOOL"), "-B", "-d", source[0].get_abspath()],
        stdout=subprocess.PIPE,
        universal_newlines=True,
        check=True,
    ).stdout
    text, data = (int(v) for v in out.splitlines()[1].split()[:2])
    if text + data > limit:
        sys.stderr.write("Error: the program needs %d bytes, the board has %d\n"
                         % (text + data, limit))
        return 1
    return 0


def BuildProgram(env):
    """Link $PIOBUILDFILES (the objects the platform script declares; PlatformIO would collect
    src/ and the libraries) into $PROGPATH with $LDSCRIPT_PATH, and declare the always-run
    `checkprogsize` target that PlatformIO 6.2.0 defines next to the program."""
    script = ["-T", env.subst("$LDSCRIPT_PATH")] if env.get("LDSCRIPT_PATH") else []
    elf = env.Program(
        env.File("$PROGPATH"), env["PIOBUILDFILES"], LINKFLAGS=script + env["LINKFLAGS"]
    )
    check = env.VerboseAction(_check_size, "Checking the size of $SOURCE")
    AlwaysBuild(env.Alias("checkprogsize", elf, check))
    return elf


# ---- SCons tool interface ------------------------------------------------------------------


def exists(_env):
    return True


def generate(env):
    for method in (
        GetProjectOption,
        BoardConfig,
        VerboseAction,
        ApplyDeferredHooks,
        BuildProgram,
    ):
        env.AddMethod(method)
    env.AddMethod(_add_target, "AddPlatformTarget")
    env.AddMethod(_add_target, "AddCustomTarget")
    env.AddMethod(_hook(SCons.Environment.Base.AddPreAction), "AddPreAction")
    env.AddMethod(_hook(SCons.Environment.Base.AddPostAction), "AddPostAction")
