/*
 * Firmware in the style the predecessor script patches (docs: thinger-and-field-notes §3):
 * no slot records, only placeholder strings, each a keyword padded with spaces to the value's
 * capacity. Test data for the `pythonpatcher` convention, in its two generations:
 *
 *   LEGACY_GEN=2024  16-character WIFISSID, DEVCNAME, CLOUDNAM (the Thinger.io USER there),
 *                    DEVCCRED, and a 24-character WIFIPASS;
 *   LEGACY_GEN=2025  every text placeholder 24 characters, DEVCUSER (the user) and CLOUDNAM
 *                    (now the HOST), plus 8-character TZ_OFF, DST_OFF, LONGTD, LATITD and a
 *                    32-character OWMAPI.
 *
 * Built by build.sh like the slot demo (same console and startup code); the values are read
 * through volatile pointers so that each placeholder is kept, exactly once, in .rodata.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "demo.h"

#if LEGACY_GEN == 2024
static const char ssid[] = "WIFISSID        ";
static const char pass[] = "WIFIPASS                ";
static const char device[] = "DEVCNAME        ";
static const char user[] = "CLOUDNAM        ";
static const char credentials[] = "DEVCCRED        ";
static const char *const extra[] = {0};
#elif LEGACY_GEN == 2025
static const char ssid[] = "WIFISSID                ";
static const char pass[] = "WIFIPASS                ";
static const char device[] = "DEVCNAME                ";
static const char user[] = "DEVCUSER                ";
static const char host[] = "CLOUDNAM                ";
static const char credentials[] = "DEVCCRED                ";
static const char tz_offset[] = "TZ_OFF  ";
static const char dst_offset[] = "DST_OFF ";
static const char longitude[] = "LONGTD  ";
static const char latitude[] = "LATITD  ";
static const char owm_api_key[] = "OWMAPI                          ";
static const char *const extra[] = {host, tz_offset, dst_offset, longitude, latitude, owm_api_key, 0};
#else
#error "LEGACY_GEN must be 2024 or 2025"
#endif

/* stand-ins for WiFi.begin(ssid, pass), ThingerClient(user, device, credentials), and the rest */
static const char *volatile config[6];
static const char *volatile settings[8];
static volatile uint32_t loop_count;

static void console_puts(const char *s)
{
    console_write(s, strlen(s));
}

int main(void)
{
    console_puts("\r\nlegacy placeholder demo on ");
    console_puts(demo_chip_name);
    console_puts("\r\n");
    config[0] = ssid;
    config[1] = pass;
    config[2] = user;
    config[3] = device;
    config[4] = credentials;
    for (size_t i = 0; extra[i] != 0; ++i) {
        settings[i] = extra[i];
    }
    for (;;) {
        console_puts("connecting to ");
        console_puts(config[0]);
        console_puts("\r\n");
        loop_count++;
        for (volatile uint32_t i = 0; i < 1000000u; ++i) {
        }
    }
}
