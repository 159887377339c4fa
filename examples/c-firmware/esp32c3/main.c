/*
 * thinger-patch demo application for the ESP32-C3.
 *
 * Declares the six standard Thinger.io slots plus two of its own, and prints
 * them over the USB-Serial-JTAG console in a loop, the way a real firmware
 * would hand them to the WiFi and Thinger.io client code. Built bare-metal
 * with Debian's riscv64-unknown-elf-gcc and picolibc; see ../README.md.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <ThingerSlot.h>

/* wifi_ssid, wifi_password, thinger_host, thinger_user, thinger_device, thinger_credentials */
THINGER_STANDARD_SLOTS();
THINGER_SLOT_NAMED(fw_version, "fw.version", 16, "dev", 0);
THINGER_SLOT(greeting, 48, "hello", 0);

/* ---- a tiny console on the USB-Serial-JTAG peripheral (ESP32-C3 TRM, ch. 30) ---- */

#define USB_SERIAL_JTAG_EP1_REG      (*(volatile uint32_t *)0x60043000u)
#define USB_SERIAL_JTAG_EP1_CONF_REG (*(volatile uint32_t *)0x60043004u)

static void console_write(const char *s, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        USB_SERIAL_JTAG_EP1_REG = (uint8_t)s[i];
    }
    USB_SERIAL_JTAG_EP1_CONF_REG = 1u; /* WR_DONE: flush */
}

static void console_puts(const char *s)
{
    console_write(s, strlen(s));
}

/* ---- initialised, mutable data: gives the image a DRAM segment ---- */

static char status_line[40] = "state: booting";
static volatile uint32_t loop_count = 7;
static volatile uint32_t connect_attempts = 3;

/* ---- constant text (.rodata, in the flash-mapped DROM segment) ---- */

static const char banner[] = "\r\nthinger-patch C demo firmware (ESP32-C3)\r\n";
static const char secret_mask[] = "********";
static const char *const state_names[] = {"unpatched", "patched"};

static void show(const char *key, const char *value, bool patched, bool secret)
{
    console_puts(key);
    console_puts(" = ");
    if (secret) {
        /* never print a secret; its length is enough to show it is set */
        console_puts(strlen(value) ? secret_mask : "(empty)");
    } else {
        console_puts(value);
    }
    console_puts(" (");
    console_puts(state_names[patched ? 1 : 0]);
    console_puts(")\r\n");
}

/* stand-ins for the WiFi and Thinger.io client calls of a real firmware */
static volatile const char *wifi_config[2];
static volatile const char *thinger_config[4];

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
    console_puts(status_line);
    console_puts("\r\n");

    for (;;) {
        show("wifi_ssid", THINGER_SLOT_VALUE(wifi_ssid), THINGER_SLOT_IS_PATCHED(wifi_ssid), false);
        show("wifi_password", THINGER_SLOT_VALUE(wifi_password), THINGER_SLOT_IS_PATCHED(wifi_password), true);
        show("thinger_host", THINGER_SLOT_VALUE(thinger_host), THINGER_SLOT_IS_PATCHED(thinger_host), false);
        show("thinger_user", THINGER_SLOT_VALUE(thinger_user), THINGER_SLOT_IS_PATCHED(thinger_user), false);
        show("thinger_device", THINGER_SLOT_VALUE(thinger_device), THINGER_SLOT_IS_PATCHED(thinger_device), false);
        show("thinger_credentials", THINGER_SLOT_VALUE(thinger_credentials),
             THINGER_SLOT_IS_PATCHED(thinger_credentials), true);
        show("fw.version", THINGER_SLOT_VALUE(fw_version), THINGER_SLOT_IS_PATCHED(fw_version), false);
        show("greeting", THINGER_SLOT_VALUE(greeting), THINGER_SLOT_IS_PATCHED(greeting), false);

        if (THINGER_SLOT_VALUE(wifi_ssid)[0] != '\0') {
            connect();
            memcpy(status_line, "state: connecting", sizeof "state: connecting");
        }
        console_puts(THINGER_SLOT_VALUE(greeting));
        console_puts("\r\n");
        loop_count++;
        for (volatile uint32_t i = 0; i < 1000000u; ++i) {
        }
    }
}
