/* The declarations of the golden vectors of docs/slot-format.md section 6 (A, B, D as compiled;
 * C is wifi_password after patching), plus a named key and a slot the program never reads.
 * Mirrored by tests/rust/probe.rs and tests/common/mod.rs (vector_slots).
 * Built with THINGER_SLOT_TEST_HOSTED as a program that prints every slot; without it (cross
 * compilers, freestanding) as an object whose functions use every accessor.
 * SPDX-License-Identifier: MIT OR Apache-2.0 */
#include <ThingerSlot.h>

THINGER_SLOT(wifi_ssid, 32, "", THINGER_SLOT_REQUIRED);                                /* A */
THINGER_SLOT(thinger_host, 64, "iot.thinger.io", 0);                                   /* B */
THINGER_SLOT(wifi_password, 64, "", THINGER_SLOT_SECRET | THINGER_SLOT_REQUIRED);      /* C */
THINGER_SLOT(x, 1, "", 0);                                                             /* D */
THINGER_SLOT_NAMED(fw_version, "fw.version", 16, "dev-7f3a9c", 0);
THINGER_SLOT(never_read, 8, "nr-5e1b", 0); /* unused: must survive --gc-sections */

#ifdef THINGER_SLOT_TEST_HOSTED
#include "dump.h"

int main(void)
{
    DUMP(wifi_ssid);
    DUMP(thinger_host);
    DUMP(wifi_password);
    DUMP(x);
    DUMP(fw_version);
    return 0;
}
#else
const char *thinger_slot_test_value(int i);
const char *thinger_slot_test_value(int i)
{
    switch (i) {
    case 0: return THINGER_SLOT_VALUE(wifi_ssid);
    case 1: return THINGER_SLOT_VALUE(thinger_host);
    case 2: return THINGER_SLOT_VALUE(wifi_password);
    case 3: return THINGER_SLOT_VALUE(x);
    default: return THINGER_SLOT_VALUE(fw_version);
    }
}
int thinger_slot_test_patched(void);
int thinger_slot_test_patched(void)
{
    return THINGER_SLOT_IS_PATCHED(wifi_ssid) + THINGER_SLOT_IS_PATCHED(thinger_host) +
           THINGER_SLOT_IS_PATCHED(fw_version);
}
#endif
