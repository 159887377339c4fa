/*
 * thinger-patch demo application, shared by the ESP32-C3 and ESP8266 builds.
 *
 * Declares the six standard Thinger.io slots plus two of its own and prints
 * them on the serial console in a loop, and hands them to stand-ins for the
 * WiFi and Thinger.io client calls of a real firmware. Every slot is read
 * through THINGER_SLOT_VALUE / THINGER_SLOT_IS_PATCHED, so a value patched
 * into the ELF or the image after the build is what the program uses.
 *
 * The chip-specific part is the console (console_write) and the chip name,
 * in esp32c3/console.c and esp8266/console.c.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ThingerSlot.h>

#include "demo.h"

/* wifi_ssid, wifi_password, thinger_host, thinger_user, thinger_device, thinger_credentials */
THINGER_STANDARD_SLOTS();
THINGER_SLOT_NAMED(fw_version, "fw.version", 16, "dev", 0);
/* On the ESP8266 the linker script moves this record into flash (.irom0.text). */
THINGER_SLOT(greeting, 48, "hello", 0);

/* ---- initialised, mutable data: gives the image a DRAM segment ---- */

static char status_line[40] = "state: booting";
static volatile uint32_t loop_count = 7;
static volatile uint32_t connect_attempts = 3;

/* ---- constant text (.rodata) ---- */

static const char banner[] = "\r\nthinger-patch C demo firmware on ";
static const char secret_mask[] = "********";
static const char *const state_names[] = {"default", "patched"};

static void console_puts(const char *s)
{
    console_write(s, strlen(s));
}

static void show(const char *key, const char *value, bool patched, bool secret)
{
    console_puts(key);
    console_puts(" = ");
    if (secret) {
        /* never print a secret; whether it is set is enough */
        console_puts(value[0] != '\0' ? secret_mask : "(empty)");
    } else {
        console_puts(value);
    }
    console_puts(" (");
    console_puts(state_names[patched ? 1 : 0]);
    console_puts(")\r\n");
}

/* stand-ins for WiFi.begin(ssid, password) and ThingerClient(user, device, credentials) */
static const char *volatile wifi_config[2];
static const char *volatile thinger_config[4];

static void connect(void)
{
    wifi_config[0] = THINGER_SLOT_VALUE(wifi_ssid);
    wifi_config[1] = THINGER_SLOT_VALUE(wifi_password);
    thinger_config[0] = THINGER_SLOT_VALUE(thinger_host);
    thinger_config[1] = THINGER_SLOT_VALUE(thinger_user);
    thinger_config[2] = THINGER_SLOT_VALUE(thinger_device);
    thinger_config[3] = THINGER_SLOT_VALUE(thinger_credentials);
    connect_attempts++;
}

int main(void)
{
    console_puts(banner);
    console_puts(demo_chip_name);
    console_puts("\r\n");

    for (;;) {
        console_puts(status_line);
        console_puts("\r\n");
        show("wifi_ssid", THINGER_SLOT_VALUE(wifi_ssid), THINGER_SLOT_IS_PATCHED(wifi_ssid), false);
        show("wifi_password", THINGER_SLOT_VALUE(wifi_password), THINGER_SLOT_IS_PATCHED(wifi_password),
             true);
        show("thinger_host", THINGER_SLOT_VALUE(thinger_host), THINGER_SLOT_IS_PATCHED(thinger_host), false);
        show("thinger_user", THINGER_SLOT_VALUE(thinger_user), THINGER_SLOT_IS_PATCHED(thinger_user), false);
        show("thinger_device", THINGER_SLOT_VALUE(thinger_device), THINGER_SLOT_IS_PATCHED(thinger_device),
             false);
        show("thinger_credentials", THINGER_SLOT_VALUE(thinger_credentials),
             THINGER_SLOT_IS_PATCHED(thinger_credentials), true);
        show("fw.version", THINGER_SLOT_VALUE(fw_version), THINGER_SLOT_IS_PATCHED(fw_version), false);
        show("greeting", THINGER_SLOT_VALUE(greeting), THINGER_SLOT_IS_PATCHED(greeting), false);

        if (THINGER_SLOT_VALUE(wifi_ssid)[0] != '\0') {
            connect();
            memcpy(status_line, "state: connecting", sizeof "state: connecting");
        }
        console_puts(THINGER_SLOT_VALUE(greeting));
        console_puts(", world\r\n");
        loop_count++;
        for (volatile uint32_t i = 0; i < 1000000u; ++i) {
        }
    }
}
