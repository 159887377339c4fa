/*
 * Serial console of the ESP32-C3 demo: the USB-Serial-JTAG peripheral
 * (ESP32-C3 TRM, ch. 30), which needs no clock or pin setup.
 */
#include <stdint.h>

#include "../common/demo.h"

#define USB_SERIAL_JTAG_EP1_REG      (*(volatile uint32_t *)0x60043000u)
#define USB_SERIAL_JTAG_EP1_CONF_REG (*(volatile uint32_t *)0x60043004u)
#define USB_SERIAL_JTAG_IN_EP_DATA_FREE (1u << 1)
#define USB_SERIAL_JTAG_WR_DONE         (1u << 0)

const char demo_chip_name[] = "ESP32-C3";

void console_write(const char *s, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        /* the 64-byte FIFO is full: flush it and wait (a real driver would time out) */
        while (!(USB_SERIAL_JTAG_EP1_CONF_REG & USB_SERIAL_JTAG_IN_EP_DATA_FREE)) {
            USB_SERIAL_JTAG_EP1_CONF_REG = USB_SERIAL_JTAG_WR_DONE;
        }
        USB_SERIAL_JTAG_EP1_REG = (uint8_t)s[i];
    }
    USB_SERIAL_JTAG_EP1_CONF_REG = USB_SERIAL_JTAG_WR_DONE;
}
