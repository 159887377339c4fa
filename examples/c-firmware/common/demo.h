/* What the shared demo application (demo_app.c) needs from the chip-specific code. */
#ifndef DEMO_H
#define DEMO_H

#include <stddef.h>

/* "ESP32-C3" / "ESP8266" */
extern const char demo_chip_name[];

/* Write n bytes to the serial console. */
void console_write(const char *s, size_t n);

int main(void);

#endif
