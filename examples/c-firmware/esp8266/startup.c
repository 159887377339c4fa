/*
 * Entry point of the ESP8266 demo application. The ESP8266 ROM loader has
 * copied the RAM segments (.data, .rodata, .text) to DRAM/IRAM and jumps to
 * the image's entry address with a usable stack; what remains is .bss and
 * main(). Lives in IRAM (.entry.text): flash is not mapped yet at this point.
 * (This firmware is test data for thinger-patch; it is never run.)
 */
#include <stdint.h>

extern uint32_t _bss_start[], _bss_end[];
extern int main(void);

__attribute__((section(".entry.text"), used, noreturn))
void call_user_start(void)
{
    for (volatile uint32_t *p = _bss_start; p < _bss_end; ++p) {
        *p = 0;
    }
    main();
    for (;;) {
    }
}
