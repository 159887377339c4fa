/*
 * Serial console of the ESP8266 demo: UART0 (TX on GPIO1), left configured
 * at 74880 baud by the boot ROM.
 */
#include <stdint.h>

#include "../common/demo.h"

#define UART0_FIFO   (*(volatile uint32_t *)0x60000000u)
#define UART0_STATUS (*(volatile uint32_t *)0x6000001Cu)
#define UART_TXFIFO_CNT(status) (((status) >> 16) & 0xFFu)

const char demo_chip_name[] = "ESP8266";

void console_write(const char *s, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        while (UART_TXFIFO_CNT(UART0_STATUS) >= 126u) {
        }
        UART0_FIFO = (uint8_t)s[i];
    }
}
