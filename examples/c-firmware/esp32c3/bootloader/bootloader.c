/*
 * A stand-in for the ESP-IDF second-stage bootloader, just enough to be a
 * valid ESP32-C3 image at flash offset 0x0 of the merged demo image: an
 * esp_bootloader_desc_t, a bit of code in IRAM and text in DRAM. It does not
 * load the application (thinger-patch never runs it; it only has to be left
 * untouched when the app inside the merged file is patched).
 */
#include <stdint.h>

/* ESP-IDF components/esp_bootloader_format/include/esp_bootloader_desc.h */
typedef struct {
    uint8_t magic_byte;   /* 0x50 */
    uint8_t reserved[3];
    uint32_t version;     /* CONFIG_BOOTLOADER_PROJECT_VER */
    char idf_ver[32];
    char date_time[24];
    uint32_t reserved2[4];
} esp_bootloader_desc_t;

_Static_assert(sizeof(esp_bootloader_desc_t) == 80, "esp_bootloader_desc_t must be 80 bytes");

__attribute__((section(".data_bootloader_desc"), used, aligned(16)))
const esp_bootloader_desc_t esp_bootloader_desc = {
    .magic_byte = 0x50,
    .version = 1,
    .idf_ver = "none (thinger-patch demo)",
    .date_time = "Jan  1 2025 00:00:00",
};

/* USB-Serial-JTAG endpoint 1 (ESP32-C3 TRM, ch. 30): write a byte, then flush. */
#define USB_SERIAL_JTAG_EP1_REG      (*(volatile uint32_t *)0x60043000u)
#define USB_SERIAL_JTAG_EP1_CONF_REG (*(volatile uint32_t *)0x60043004u)

static const char hello[] = "thinger-patch demo bootloader: nothing to see here\r\n";

/* a little initialised data, so the DRAM segment has some */
static volatile uint32_t boot_attempts = 1;

__attribute__((section(".iram_loader.text"), noinline))
static void put_str(const char *s)
{
    while (*s) {
        USB_SERIAL_JTAG_EP1_REG = (uint8_t)*s++;
    }
    USB_SERIAL_JTAG_EP1_CONF_REG = 1u; /* WR_DONE */
}

__attribute__((noreturn)) void bootloader_main(void)
{
    boot_attempts++;
    put_str(hello);
    for (;;) {
        __asm__ volatile("wfi");
    }
}
