# thinger-patch for PlatformIO: one personalised firmware image per credential profile.
#
#     [env:esp32dev]
#     extra_scripts = post:path/to/thinger_patch.py
#     custom_thinger_profiles = kitchen, garage
#     ; custom_thinger_config = thinger-patch.toml     (optional, relative to the project)
#
# Every build then also writes, for each listed profile P:
#
#     $BUILD_DIR/${PROGNAME}.P.elf   the firmware ELF with P's values (thinger-patch patch)
#     $BUILD_DIR/${PROGNAME}.P.bin   its image, made by the platform's own converter (ElfToBin)
#
# and `pio run -t upload` sends ${PROGNAME}.<THINGER_PROFILE>.bin (default: the first listed
# profile) where the platform would send ${PROGNAME}.bin. Choosing another profile means setting
# THINGER_PROFILE; platformio.ini is not touched, so nothing is recompiled.
#
# pio-extra/README.md explains the design, what upload sends for each protocol, and what has
# been verified. SPDX-License-Identifier: MIT OR Apache-2.0

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from os.path import join

# pylint: disable=import-error
from SCons.Action import Action
from SCons.Script import ARGUMENTS, COMMAND_LINE_TARGETS, AlwaysBuild, Default, Import

Import("env")
env = globals()["env"]  # what Import() defined, named for readers and linters

TOOL = "thinger-patch"
PROFILE_RE = re.compile(r"^[A-Za-z0-9_-]+$")
FS_TARGETS = ("buildfs", "uploadfs", "uploadfsota")
# `$SOURCE`, `${SOURCE}`, `$SOURCE.abspath`, `${SOURCE.abspath}`; not `$SOURCES`, not `$$SOURCE`
SOURCE_RE = re.compile(r"(?<!\$)\$(?:\{SOURCE((?:\.\w+)*)\}|SOURCE((?:\.\w+)*)(?!\w))")
VERBOSE = bool(int(ARGUMENTS.get("PIOVERBOSE", 0)))


def _error(message):
    sys.stderr.write("Error: %s: %s\n" % (TOOL, message))


def _exit(message):
    _error(message)
    env.Exit(1)


# ---------------------------------------------------------------------------------------------
# Configuration (read when the script is loaded; nothing runs yet)
# ---------------------------------------------------------------------------------------------

PROJECT_DIR = env.subst("$PROJECT_DIR")
BUILD_DIR = env.subst("$BUILD_DIR")
PROGNAME = env.subst("$PROGNAME")

_raw_profiles = env.GetProjectOption("custom_thinger_profiles", "")
PROFILES = [p for p in re.split(r"[\s,]+", _raw_profiles or "") if p]
if not PROFILES:
    _exit(
        "custom_thinger_profiles is not set for [env:%s]: list the profiles of thinger-patch.toml "
        "to build, e.g. `custom_thinger_profiles = kitchen, garage`" % env.subst("$PIOENV")
    )
for _p in PROFILES:
    if not PROFILE_RE.match(_p):
        _exit("custom_thinger_profiles: %r is not a profile name ([A-Za-z0-9_-]+)" % _p)
if len(set(PROFILES)) != len(PROFILES):
    _exit("custom_thinger_profiles lists a profile twice: %s" % ", ".join(PROFILES))

_config = (env.GetProjectOption("custom_thinger_config", "") or "").strip()
# Relative to the project folder; without it thinger-patch searches as on the command line
# (thinger-patch.toml in the project folder or a parent, then the user config folder).
CONFIG = os.path.normpath(join(PROJECT_DIR, os.path.expanduser(_config))) if _config else None

_env_profile = os.environ.get("THINGER_PROFILE", "").strip()
UPLOAD_PROFILE = _env_profile or PROFILES[0]
UPLOAD_PROFILE_ORIGIN = (
    "THINGER_PROFILE" if _env_profile else "the first of custom_thinger_profiles"
)


def _find_tool():
    """(path, None) or (None, message). THINGER_PATCH wins; then PATH; then ~/.cargo/bin."""
    explicit = os.environ.get("THINGER_PATCH", "").strip()
    if explicit:
        path = os.path.expanduser(explicit)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.abspath(path), None
        return None, "THINGER_PATCH=%s is not an executable file" % explicit
    found = shutil.which(TOOL)
    if found:
        return found, None
    cargo_home = os.environ.get("CARGO_HOME") or join(os.path.expanduser("~"), ".cargo")
    exe = TOOL + (".exe" if os.name == "nt" else "")
    candidate = join(cargo_home, "bin", exe)
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate, None
    return None, (
        "the %s program was not found: not on PATH, not in %s, and THINGER_PATCH is not set. "
        "Install it (`cargo install --locked --path <thinger-patch checkout>`) or set "
        "THINGER_PATCH=/path/to/%s" % (TOOL, join(cargo_home, "bin"), TOOL)
    )


_STATE = {}
_LOCK = threading.Lock()  # SCons runs actions in threads with --jobs


def _tool():
    with _LOCK:
        if "tool" not in _STATE:
            _STATE["tool"] = _find_tool()
        return _STATE["tool"]


# ---------------------------------------------------------------------------------------------
# Actions (run by SCons when a target is out of date)
# ---------------------------------------------------------------------------------------------


def _personalise(elf, profile, out=None):
    """Run `thinger-patch patch ELF --profile P -o OUT`, or with `out=None` a dry run
    (`--dry-run --json`: everything checked and personalised in memory, nothing written).
    Returns the CompletedProcess, or None after printing why the build must stop. The tool
    masks secrets in everything it prints."""
    tool, problem = _tool()
    if problem:
        with _LOCK:
            first = not _STATE.get("reported")
            _STATE["reported"] = True
        if first:  # say it once, not once per profile
            _error(problem)
        return None
    cmd = [tool, "patch", elf, "--profile", profile]
    cmd += ["-o", out] if out else ["--dry-run", "--json"]
    if CONFIG:
        cmd += ["--config", CONFIG]
    try:
        proc = subprocess.run(
            cmd,
            cwd=PROJECT_DIR,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            encoding="utf-8",
            errors="replace",
            check=False,
        )
    except OSError as exc:
        _error("cannot run %s: %s" % (tool, exc))
        return None
    if proc.returncode != 0:
        _error(
            "personalising %s with profile '%s' failed (%s exited with status %d):\n%s"
            % (os.path.relpath(elf, PROJECT_DIR), profile, tool, proc.returncode,
               (proc.stderr or proc.stdout).rstrip())
        )
        return None
    return proc


def _digest(elf, profile):
    """The SHA-256 of the ELF personalised with the profile's current values, from one dry run
    (`patch --dry-run --json` reports it; nothing is written). None after printing why not."""
    proc = _personalise(elf, profile)
    if proc is None:
        return None
    try:
        return json.loads(proc.stdout)["results"][0]["sha256"]
    except (ValueError, KeyError, IndexError, TypeError):
        _error("thinger-patch printed no SHA-256 for profile '%s' (is it older than this "
               "script? update it)" % profile)
        return None


def _make_digest_action(profile):
    def thinger_patch_digest(target, source, env):
        """Keep only the personalised ELF's SHA-256 in the stamp file (rewritten only when it
        changes: the stamp's content is what SCons compares)."""
        stamp = target[0].get_abspath()
        os.makedirs(os.path.dirname(stamp), exist_ok=True)
        digest = _digest(source[0].get_abspath(), profile)
        if digest is None:
            return 1
        line = "sha256 %s\n" % digest
        try:
            with open(stamp, encoding="ascii") as fp:
                if fp.read() == line:
                    return 0
        except (OSError, ValueError):
            pass
        with open(stamp + ".tmp", "w", encoding="ascii") as fp:
            fp.write(line)
        os.replace(stamp + ".tmp", stamp)
        return 0

    return thinger_patch_digest


def _owner_only(target, source, env):
    for node in target:
        if os.name == "posix" and os.path.isfile(node.get_abspath()):
            os.chmod(node.get_abspath(), 0o600)
    return 0


def _make_patch_action(profile):
    def thinger_patch_personalise(target, source, env):
        proc = _personalise(source[0].get_abspath(), profile, target[0].get_abspath())
        if proc is None:
            return 1
        report = proc.stdout.rstrip().splitlines()
        for line in report if VERBOSE else report[:1]:
            print(line)
        if proc.stderr.strip():
            sys.stderr.write(proc.stderr)
        return 0

    return thinger_patch_personalise


# ---------------------------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------------------------


def _image_path(profile):
    return join(BUILD_DIR, "%s.%s.bin" % (PROGNAME, profile))


def _build_images():
    if "ElfToBin" not in env["BUILDERS"]:
        _exit(
            "this platform defines no ElfToBin builder; thinger_patch.py supports the "
            "espressif32 and espressif8266 platforms"
        )
    for flag in (
        "PIO_ESP32_SIGNATURE_REQUIRED",
        "PIO_ESP32_SECURE_BOOT_BUILD_SIGNED_BINARIES",
        "PIO_ESP32_ENCRYPTION_REQUIRED",
    ):
        if env.get(flag):
            _exit(
                "%s is set: personalised images would not be signed/encrypted, and thinger-patch "
                "never re-signs. Build without it, or personalise before signing." % flag
            )
    elf = env.File(env.subst("$PROGPATH"))
    images = []
    for profile in PROFILES:
        # 1. stamp: SHA-256 of the ELF personalised with the profile's current values (checked on
        #    every build, because values come from env variables, files and the keyring, which
        #    SCons cannot see). Only this hash is stored, never a value.
        stamp = env.Command(
            join(BUILD_DIR, "thinger-patch", profile + ".sha256"),
            elf,
            env.VerboseAction(
                _make_digest_action(profile), "Checking thinger-patch profile '%s'" % profile
            ),
        )
        AlwaysBuild(stamp)
        env.Precious(stamp)  # SCons would delete it before the action and lose its mtime
        # 2. the personalised ELF: out of date only when the ELF or the stamp changed
        personal_elf = env.Command(
            join(BUILD_DIR, "%s.%s.elf" % (PROGNAME, profile)),
            [elf, stamp],
            env.VerboseAction(
                _make_patch_action(profile), "Personalising $TARGET (profile '%s')" % profile
            ),
        )
        # 3. the image, by the platform's own converter
        # (the whole file name: with a dot in it, SCons would not append the builder's suffix)
        image = env.ElfToBin(_image_path(profile), personal_elf)
        # personalised files hold secrets: owner-only like thinger-patch's own outputs, and never
        # into a shared build cache
        env.AddPostAction(image, Action(_owner_only, None))
        env.NoCache([stamp, personal_elf, image])
        images.extend(image)
    return images


def _relabel_upload(image):
    """Point the upload command at the personalised image: PlatformIO's upload actions run
    $UPLOADCMD, whose $SOURCE is ${PROGNAME}.bin; every $SOURCE in UPLOADCMD and UPLOADERFLAGS
    becomes ${THINGER_UPLOAD_IMAGE} (a File node, so SCons quotes it as it quotes $SOURCE)."""
    env["THINGER_UPLOAD_IMAGE"] = image

    def redirect(value):
        if not isinstance(value, str):
            return value, False
        new = SOURCE_RE.sub(
            lambda m: "${THINGER_UPLOAD_IMAGE%s}" % (m.group(1) or m.group(2) or ""), value
        )
        return new, new != value

    redirected = False
    cmd = env.get("UPLOADCMD")
    if isinstance(cmd, str):
        cmd, changed = redirect(cmd)
        env.Replace(UPLOADCMD=cmd)
        redirected |= changed
    flags = env.get("UPLOADERFLAGS")
    if isinstance(flags, (list, tuple)):
        new_flags = []
        for flag in flags:
            flag, changed = redirect(flag)
            new_flags.append(flag)
            redirected |= changed
        env.Replace(UPLOADERFLAGS=new_flags)
    return redirected


def _wire_upload(build_images):
    image = env.File(_image_path(UPLOAD_PROFILE))
    image_path = image.get_abspath()  # actions capture strings only (SCons hashes closures)
    rel = os.path.relpath(image_path, PROJECT_DIR)
    upload_targets = ["upload"] + [t for t in COMMAND_LINE_TARGETS if t.startswith("__upload")]
    upload_requested = any(t in COMMAND_LINE_TARGETS for t in upload_targets)
    if UPLOAD_PROFILE not in PROFILES:
        if upload_requested:
            _exit(
                "THINGER_PROFILE=%s is not one of custom_thinger_profiles (%s)"
                % (UPLOAD_PROFILE, ", ".join(PROFILES))
            )
        return
    redirected = _relabel_upload(image)

    def announce(target, source, env):
        if not redirected:
            _error(
                "the upload command of this environment never names $SOURCE, so it cannot be "
                "pointed at %s; use $SOURCE in upload_command" % rel
            )
            return 1
        if not os.path.isfile(image_path):
            _error("%s does not exist: build it first (`pio run`)" % rel)
            return 1
        print(
            "%s: uploading %s (profile '%s', from %s)"
            % (TOOL, rel, UPLOAD_PROFILE, UPLOAD_PROFILE_ORIGIN)
        )
        return 0

    for name in upload_targets:
        alias = env.Alias(name)
        if build_images:
            env.Depends(alias, image)
        env.AddPreAction(name, env.VerboseAction(announce, "Selecting the personalised image..."))
        if redirected:
            _relabel(alias)


def _relabel(alias):
    """PlatformIO labels the upload step "Uploading $SOURCE", i.e. ${PROGNAME}.bin: make the
    label name the file really sent. Only that exact label is changed; when SCons' internals
    differ from 4.x, the label simply stays as it was (the command is redirected anyway)."""

    def walk(action):
        for sub in getattr(action, "list", None) or []:
            walk(sub)
        if getattr(action, "cmdstr", None) == "Uploading $SOURCE":
            action.cmdstr = "Uploading ${THINGER_UPLOAD_IMAGE}"

    for node in alias:
        try:
            actions = node.get_executor().get_action_list()
        except Exception:  # pylint: disable=broad-except
            continue
        for action in actions:
            walk(action)


def main():
    if "__test" in COMMAND_LINE_TARGETS:
        print("%s: `pio test` build, firmware images are not personalised" % TOOL)
        return
    if set(FS_TARGETS) & set(COMMAND_LINE_TARGETS):
        return  # file system images: nothing to personalise, and upload sends the FS image
    build_images = "nobuild" not in COMMAND_LINE_TARGETS
    if build_images:
        images = _build_images()
        Default(images)
        env.AddCustomTarget(
            "thinger-images",
            images,
            None,
            title="Personalised images",
            description="Build %s for %s"
            % (os.path.basename(_image_path("<profile>")), ", ".join(PROFILES)),
        )
    _wire_upload(build_images)


main()
