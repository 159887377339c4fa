# The platform build script (BUILD_SCRIPT) of the test: the parts of builder/main.py of
# platformio/platform-espressif32 v6.13.0 that pio-extra/thinger_patch.py depends on, copied in
# upstream order with upstream's expressions, plus a stand-in for the framework build:
#
# - the construction variables (PROGSUFFIX, PROGNAME "firmware", OBJCOPY, SIZETOOL,
#   ESP32_APP_OFFSET, the __get_board_* helpers),
# - the ElfToBin builder, verbatim: `"$PYTHONEXE" "$OBJCOPY" --chip <mcu> elf2image
#   --flash_mode ... --flash_freq ... --flash_size ... -o $TARGET $SOURCES`,
# - `target_elf = env.BuildProgram()`, `target_firm = env.ElfToBin(...)`, the buildprog,
#   nobuild, checkprogsize and size targets,
# - the esptool upload protocol, verbatim (UPLOADERFLAGS, UPLOADCMD with `$ESP32_APP_OFFSET
#   $SOURCE`, FLASH_EXTRA_IMAGES, BeforeUpload, the "upload" platform target),
# - Default([target_buildprog, target_size]).
#
# SHIM differences (marked below): the compiler is Debian's riscv64-unknown-elf-gcc with
# picolibc instead of PlatformIO's riscv32-esp-elf toolchain, the firmware is the bare-metal
# ESP32-C3 demo of examples/c-firmware (its sources, linker script and startup, by path)
# instead of an Arduino/ESP-IDF framework build, OBJCOPY is the esptool of $ESPTOOL (the pinned
# 5.6.0; PlatformIO ships tool-esptoolpy 4.x, whose option names use underscores, which
# esptool 5 still accepts), and UPLOADER is tests/platformio/fake_uploader.py, which records
# its arguments instead of talking to a serial port.

import os
import sys
from os.path import join

from SCons.Script import (  # pylint: disable=import-error
    COMMAND_LINE_TARGETS,
    AlwaysBuild,
    Builder,
    Default,
    DefaultEnvironment,
)

#
# Helpers
#


def BeforeUpload(target, source, env):
    upload_options = {}
    if "BOARD" in env:
        upload_options = env.BoardConfig().get("upload", {})

    env.AutodetectUploadPort()

    # SHIM: no serial ports to touch or wait for
    assert not upload_options.get("use_1200bps_touch", False)


def _get_board_memory_type(env):
    board_config = env.BoardConfig()
    default_type = "%s_%s" % (
        board_config.get("build.flash_mode", "dio"),
        board_config.get("build.psram_type", "qspi"),
    )

    return board_config.get(
        "build.memory_type",
        board_config.get(
            "build.%s.memory_type" % env.subst("$PIOFRAMEWORK").strip().replace(" ", "_"),
            default_type,
        ),
    )


def _normalize_frequency(frequency):
    frequency = str(frequency).replace("L", "")
    return str(int(int(frequency) / 1000000)) + "m"


def _get_board_f_flash(env):
    frequency = env.subst("$BOARD_F_FLASH")
    return _normalize_frequency(frequency)


def _get_board_f_image(env):
    board_config = env.BoardConfig()
    if "build.f_image" in board_config:
        return _normalize_frequency(board_config.get("build.f_image"))

    return _get_board_f_flash(env)


def _get_board_flash_mode(env):
    if ["arduino"] == env.get("PIOFRAMEWORK") and _get_board_memory_type(env) in (
        "opi_opi",
        "opi_qspi",
    ):
        return "dout"

    mode = env.subst("$BOARD_FLASH_MODE")
    if mode in ("qio", "qout"):
        return "dio"
    return mode


env = DefaultEnvironment()
platform = env.PioPlatform()
board = env.BoardConfig()
mcu = board.get("build.mcu", "esp32")
toolchain_arch = "xtensa-%s" % mcu
if mcu in ("esp32c3", "esp32c6"):
    toolchain_arch = "riscv32-esp"

# SHIM: Debian's bare-metal RISC-V toolchain instead of PlatformIO's toolchain-riscv32-esp
toolchain_arch = "riscv64-unknown"
esptool = os.environ.get("ESPTOOL", "")
if not os.path.isfile(esptool):
    sys.stderr.write("Error: set ESPTOOL to the esptool script (the pinned esptool 5.6.0)\n")
    env.Exit(1)

env.Replace(
    __get_board_f_flash=_get_board_f_flash,
    __get_board_f_image=_get_board_f_image,
    __get_board_flash_mode=_get_board_flash_mode,
    __get_board_memory_type=_get_board_memory_type,
    AR="%s-elf-gcc-ar" % toolchain_arch,
    AS="%s-elf-as" % toolchain_arch,
    CC="%s-elf-gcc" % toolchain_arch,
    CXX="%s-elf-g++" % toolchain_arch,
    OBJCOPY=esptool,  # SHIM: join(platform.get_package_dir("tool-esptoolpy"), "esptool.py")
    RANLIB="%s-elf-gcc-ranlib" % toolchain_arch,
    SIZETOOL="%s-elf-size" % toolchain_arch,
    ARFLAGS=["rc"],
    SIZEPROGREGEXP=(
        r"^(?:\.iram0\.text|\.iram0\.vectors|\.dram0\.data|\.flash\.text|\.flash\.rodata|)"
        r"\s+([0-9]+).*"
    ),
    SIZEDATAREGEXP=r"^(?:\.dram0\.data|\.dram0\.bss|\.noinit)\s+([0-9]+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
    ESP32_APP_OFFSET=board.get("upload.offset_address", "0x10000"),
    PROGSUFFIX=".elf",
)

# Allow user to override via pre:script
if env.get("PROGNAME", "program") == "program":
    env.Replace(PROGNAME="firmware")

env.Append(
    BUILDERS=dict(
        ElfToBin=Builder(
            action=env.VerboseAction(
                " ".join(
                    [
                        '"$PYTHONEXE" "$OBJCOPY"',
                        "--chip",
                        mcu,
                        "elf2image",
                        "--flash_mode",
                        "${__get_board_flash_mode(__env__)}",
                        "--flash_freq",
                        "${__get_board_f_image(__env__)}",
                        "--flash_size",
                        board.get("upload.flash_size", "4MB"),
                        "-o",
                        "$TARGET",
                        "$SOURCES",
                    ]
                ),
                "Building $TARGET",
            ),
            suffix=".bin",
        ),
    )
)

# SHIM: in place of frameworks/arduino.py / espidf.py: the ESP32-C3 demo of examples/c-firmware,
# compiled from the repository (one object per source, so the test can watch each one) and
# linked with its own linker script, as examples/c-firmware/build.sh does.
SHIM_DIR = os.path.dirname(os.path.abspath(env.subst("$BUILD_SCRIPT")))
REPO = os.path.normpath(join(SHIM_DIR, "..", ".."))
DEMO = join(REPO, "examples", "c-firmware")
ARCH_FLAGS = ["-march=rv32imc", "-mabi=ilp32", "--specs=picolibc.specs"]
env.Append(
    ASFLAGS=ARCH_FLAGS,
    CCFLAGS=ARCH_FLAGS
    + [
        "-std=gnu11",
        "-Os",
        "-ffreestanding",
        "-ffunction-sections",
        "-fdata-sections",
        "-fno-common",
        "-fno-asynchronous-unwind-tables",
        "-Wall",
        "-Wextra",
    ],
    CPPPATH=[join(REPO, "device", "arduino", "ThingerSlot", "src")],
    LINKFLAGS=ARCH_FLAGS
    + [
        "-nostartfiles",
        "-Wl,--gc-sections",
        "-Wl,--build-id=none",
        "-Wl,--no-warn-rwx-segments",
    ],
    LDSCRIPT_PATH=join(DEMO, "esp32c3", "esp32c3.ld"),
)
env.Replace(
    PIOBUILDFILES=[
        env.Object(join("$BUILD_SRC_DIR", os.path.splitext(os.path.basename(src))[0] + ".o"), src)
        for src in (
            join(DEMO, "esp32c3", "startup.S"),
            join(DEMO, "esp32c3", "app_desc.c"),
            join(DEMO, "esp32c3", "console.c"),
            join(DEMO, "common", "demo_app.c"),
        )
    ],
    # what the Arduino framework script (arduino-esp32 tools/platformio-build.py) sets; here
    # the prebuilt stand-in bootloader and partition table of examples/c-firmware
    FLASH_EXTRA_IMAGES=[
        ("0x0", join(DEMO, "prebuilt", "esp32c3-bootloader.bin")),
        ("0x8000", join(DEMO, "prebuilt", "esp32c3-partition-table.bin")),
    ],
)

#
# Target: Build executable and linkable firmware or FS image
#

target_elf = None
if "nobuild" in COMMAND_LINE_TARGETS:
    target_elf = join("$BUILD_DIR", "${PROGNAME}.elf")
    target_firm = join("$BUILD_DIR", "${PROGNAME}.bin")
else:
    target_elf = env.BuildProgram()
    target_firm = env.ElfToBin(join("$BUILD_DIR", "${PROGNAME}"), target_elf)
    env.Depends(target_firm, "checkprogsize")

AlwaysBuild(env.Alias("nobuild", target_firm))
target_buildprog = env.Alias("buildprog", target_firm, target_firm)

#
# Target: Print binary size
#

target_size = env.AddPlatformTarget(
    "size",
    target_elf,
    env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE"),
    "Program Size",
    "Calculate program size",
)

#
# Target: Upload firmware or FS image
#

upload_protocol = env.subst("$UPLOAD_PROTOCOL")
upload_actions = []

if upload_protocol == "esptool":
    env.Replace(
        # SHIM: join(platform.get_package_dir("tool-esptoolpy") or "", "esptool.py")
        UPLOADER=join(SHIM_DIR, "fake_uploader.py"),
        UPLOADERFLAGS=[
            "--chip",
            mcu,
            "--port",
            '"$UPLOAD_PORT"',
            "--baud",
            "$UPLOAD_SPEED",
            "--before",
            board.get("upload.before_reset", "default_reset"),
            "--after",
            board.get("upload.after_reset", "hard_reset"),
            "write_flash",
            "-z",
            "--flash_mode",
            "${__get_board_flash_mode(__env__)}",
            "--flash_freq",
            "${__get_board_f_image(__env__)}",
            "--flash_size",
            board.get("upload.flash_size", "detect"),
        ],
        UPLOADCMD='"$PYTHONEXE" "$UPLOADER" $UPLOADERFLAGS $ESP32_APP_OFFSET $SOURCE',
    )
    for image in env.get("FLASH_EXTRA_IMAGES", []):
        env.Append(UPLOADERFLAGS=[image[0], env.subst(image[1])])

    upload_actions = [
        env.VerboseAction(BeforeUpload, "Looking for upload port..."),
        env.VerboseAction("$UPLOADCMD", "Uploading $SOURCE"),
    ]

# custom upload tool
elif upload_protocol == "custom":
    upload_actions = [env.VerboseAction("$UPLOADCMD", "Uploading $SOURCE")]

else:
    sys.stderr.write("Warning! Unknown upload protocol %s\n" % upload_protocol)

env.AddPlatformTarget("upload", target_firm, upload_actions, "Upload")
env.AddPlatformTarget("uploadfs", target_firm, upload_actions, "Upload Filesystem Image")
env.AddPlatformTarget("uploadfsota", target_firm, upload_actions, "Upload Filesystem Image OTA")

#
# Default targets
#

Default([target_buildprog, target_size])
