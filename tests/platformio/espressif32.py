# Platform build script ($BUILD_SCRIPT) of tests/platformio/SConstruct: this project's own
# minimal emulation of an ESP32-C3 build of the espressif32 platform, reduced to what
# pio-extra/thinger_patch.py depends on. The behaviour emulated is that of platform-espressif32
# v6.13.0 (learned by reading its builder, none of it reproduced):
#
# - the program is $BUILD_DIR/firmware.elf, converted to firmware.bin by an `ElfToBin` builder
#   that runs `esptool --chip <mcu> elf2image <flash options> -o $TARGET $SOURCE`;
# - the `upload` target runs $UPLOADCMD, an esptool `write_flash` command whose flags
#   ($UPLOADERFLAGS) end with the framework's FLASH_EXTRA_IMAGES (bootloader, partition table)
#   and which then names $SOURCE at the app offset, 0x10000;
# - `nobuild` declares no build step and uses the existing firmware.bin.
#
# What stands in for the parts this test cannot download:
# - compiler: Debian's riscv64-unknown-elf-gcc with picolibc;
# - framework: the bare-metal ESP32-C3 demo of examples/c-firmware (sources, linker script,
#   prebuilt bootloader and partition table), compiled as examples/c-firmware/build.sh does;
# - esptool: the program named by $ESPTOOL (the pinned esptool 5.6.0, which still accepts the
#   underscore option names of esptool 4);
# - serial upload: tests/platformio/fake_uploader.py, which only records its arguments.

import os
import sys
from os.path import join

from SCons.Script import COMMAND_LINE_TARGETS, AlwaysBuild, Builder, Default, Import

Import("env")
env = globals()["env"]

HERE = os.path.dirname(os.path.abspath(env.subst("$BUILD_SCRIPT")))
REPO = os.path.normpath(join(HERE, "..", ".."))
DEMO = join(REPO, "examples", "c-firmware")
CROSS = "riscv64-unknown-elf-"

board = env.BoardConfig()
mcu = board.get("build.mcu")

esptool = os.environ.get("ESPTOOL", "")
if not os.path.isfile(esptool):
    sys.stderr.write("Error: ESPTOOL must name the esptool program (the pinned esptool 5.6.0)\n")
    env.Exit(1)


def flash_options():
    """--flash_mode/--flash_freq/--flash_size from the board: a qio/qout board's image says
    dio (the bootloader switches to the faster mode), the frequency is given in MHz."""
    mode = board.get("build.flash_mode", "dio")
    if mode in ("qio", "qout"):
        mode = "dio"
    mhz = int(str(board.get("build.f_flash", "40000000")).rstrip("L")) // 1000000
    size = board.get("upload.flash_size", "4MB")
    return "--flash_mode %s --flash_freq %dm --flash_size %s" % (mode, mhz, size)


env.Replace(
    CC=CROSS + "gcc",
    AS=CROSS + "as",
    AR=CROSS + "gcc-ar",
    RANLIB=CROSS + "gcc-ranlib",
    SIZETOOL=CROSS + "size",
    ESPTOOL=esptool,
    PROGSUFFIX=".elf",
)
if env["PROGNAME"] == "program":  # PlatformIO's default name; a pre: script may choose another
    env["PROGNAME"] = "firmware"

elf2image = '"$PYTHONEXE" "$ESPTOOL" --chip %s elf2image %s -o $TARGET $SOURCE' % (
    mcu,
    flash_options(),
)
env.Append(
    BUILDERS={
        "ElfToBin": Builder(
            action=env.VerboseAction(elf2image, "Building $TARGET"), suffix=".bin"
        )
    }
)

# ---- the framework stand-in ----------------------------------------------------------------

rv32 = ["-march=rv32imc", "-mabi=ilp32", "--specs=picolibc.specs"]
env.Append(
    ASFLAGS=rv32,
    CCFLAGS=rv32 + ["-std=gnu11", "-Os", "-ffreestanding", "-ffunction-sections",
                    "-fdata-sections", "-fno-common", "-fno-asynchronous-unwind-tables",
                    "-Wall", "-Wextra"],
    CPPPATH=[join(REPO, "device", "arduino", "ThingerSlot", "src")],
    LINKFLAGS=rv32 + ["-nostartfiles", "-Wl,--gc-sections", "-Wl,--build-id=none",
                      "-Wl,--no-warn-rwx-segments"],
    LDSCRIPT_PATH=join(DEMO, "esp32c3", "esp32c3.ld"),
)
demo_sources = ["esp32c3/startup.S", "esp32c3/app_desc.c", "esp32c3/console.c",
                "common/demo_app.c"]
env["PIOBUILDFILES"] = [  # one object per source, in $BUILD_DIR/src
    env.Object(join("$BUILD_DIR", "src", os.path.splitext(os.path.basename(s))[0] + ".o"),
               join(DEMO, s))
    for s in demo_sources
]
env["FLASH_EXTRA_IMAGES"] = [
    ("0x0", join(DEMO, "prebuilt", "esp32c3-bootloader.bin")),
    ("0x8000", join(DEMO, "prebuilt", "esp32c3-partition-table.bin")),
]

# ---- build targets -------------------------------------------------------------------------


def firmware_image():
    """firmware.bin: converted from the program, or with `nobuild` the file already there."""
    if "nobuild" in COMMAND_LINE_TARGETS:
        return env.File(join("$BUILD_DIR", "${PROGNAME}.bin"))
    image = env.ElfToBin(join("$BUILD_DIR", "${PROGNAME}"), env.BuildProgram())
    env.Depends(image, "checkprogsize")  # the size check runs before the conversion
    return image


firmware = firmware_image()
Default(firmware)
AlwaysBuild(env.Alias("nobuild", firmware))

# ---- upload --------------------------------------------------------------------------------

if env.subst("$UPLOAD_PROTOCOL") != "esptool":
    sys.stderr.write("Error: this test platform only knows upload_protocol = esptool\n")
    env.Exit(1)


def require_port(target, source, env):
    port = env.subst("$UPLOAD_PORT")
    if not port:
        sys.stderr.write("Error: no upload port: pass UPLOAD_PORT=...\n")
        return 1
    print("Upload port: %s" % port)
    return 0


write_flash = ["--chip", mcu, "--port", '"$UPLOAD_PORT"', "--baud", "$UPLOAD_SPEED",
               "--before", "default_reset", "--after", "hard_reset", "write_flash", "-z"]
write_flash += flash_options().split()
for address, path in env["FLASH_EXTRA_IMAGES"]:
    write_flash += [address, path]
env.SetDefault(UPLOAD_SPEED=board.get("upload.speed", 115200))
env.Replace(
    UPLOADER=join(HERE, "fake_uploader.py"),
    UPLOADERFLAGS=write_flash,
    # the image is the alias' $SOURCE, written last at the application offset
    UPLOADCMD='"$PYTHONEXE" "$UPLOADER" $UPLOADERFLAGS 0x10000 $SOURCE',
)
env.AddPlatformTarget(
    "upload",
    firmware,
    [
        env.VerboseAction(require_port, "Checking the upload port..."),
        env.VerboseAction("$UPLOADCMD", "Uploading $SOURCE"),
    ],
    "Upload",
)
