/*
 * Host program (x86_64/aarch64 Linux) using device/arduino/ThingerSlot/src/ThingerSlot.h, for
 * tests/host_programs.rs: built with the host C compiler (and as C++), patched by thinger-patch
 * like firmware, then run. It prints every slot as `key=value`, `key.len=N` and
 * `key.patched=0|1`, so the test sees what the optimised program really reads.
 *
 * The defaults are distinctive strings that occur nowhere else in the program: the test counts
 * them in the allocated sections (exactly once, inside the record, before patching; never after).
 * Never compare a value with its default here: the literal would land in .rodata.
 */
#include <stdio.h>
#include <string.h>

#include "ThingerSlot.h"

THINGER_SLOT(wifi_ssid, 32, "default-ssid-7f3a", THINGER_SLOT_REQUIRED);
THINGER_SLOT(wifi_password, 64, "default-pass-c41d", THINGER_SLOT_SECRET);
THINGER_SLOT_NAMED(fw_version, "fw.version", 16, "dflt-ver-9e2b", 0);
/* Declared, never read: --gc-sections and LTO must keep the record anyway. */
THINGER_SLOT(never_read, 24, "never-read-5b6c", 0);

static void show(const char *key, const char *value, int patched)
{
    /* strlen() on the value: folded to a constant if the optimiser could see the default. */
    printf("%s=%s\n%s.len=%u\n%s.patched=%d\n", key, value, key, (unsigned)strlen(value), key,
           patched);
}

int main(void)
{
    show("wifi_ssid", THINGER_SLOT_VALUE(wifi_ssid), THINGER_SLOT_IS_PATCHED(wifi_ssid));
    show("wifi_password", THINGER_SLOT_VALUE(wifi_password),
         THINGER_SLOT_IS_PATCHED(wifi_password));
    show("fw.version", THINGER_SLOT_VALUE(fw_version), THINGER_SLOT_IS_PATCHED(fw_version));
    /* The first byte, read directly: a folded default would give 'd' whatever the file says. */
    printf("wifi_ssid.first=%d\n", (int)(unsigned char)THINGER_SLOT_VALUE(wifi_ssid)[0]);
#ifdef THINGER_TEST_EXTRA_COPY
    /* Negative control for the test's checker only: a second copy of a default. */
    printf("extra=%s\n", "default-ssid-7f3a");
#endif
    return 0;
}
