/* THINGER_STANDARD_SLOTS(): hosted, prints the six records; otherwise uses every accessor.
 * SPDX-License-Identifier: MIT OR Apache-2.0 */
#include <ThingerSlot.h>

THINGER_STANDARD_SLOTS();

#ifdef THINGER_SLOT_TEST_HOSTED
#include "dump.h"

int main(void)
{
    DUMP(wifi_ssid);
    DUMP(wifi_password);
    DUMP(thinger_host);
    DUMP(thinger_user);
    DUMP(thinger_device);
    DUMP(thinger_credentials);
    return 0;
}
#else
const char *thinger_slot_test_value(int i);
const char *thinger_slot_test_value(int i)
{
    switch (i) {
    case 0: return THINGER_SLOT_VALUE(wifi_ssid);
    case 1: return THINGER_SLOT_VALUE(wifi_password);
    case 2: return THINGER_SLOT_VALUE(thinger_host);
    case 3: return THINGER_SLOT_VALUE(thinger_user);
    case 4: return THINGER_SLOT_VALUE(thinger_device);
    default: return THINGER_SLOT_VALUE(thinger_credentials);
    }
}
int thinger_slot_test_patched(void);
int thinger_slot_test_patched(void)
{
    return THINGER_SLOT_IS_PATCHED(wifi_ssid) + THINGER_SLOT_IS_PATCHED(thinger_credentials);
}
#endif
