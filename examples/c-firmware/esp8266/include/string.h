/* The part of <string.h> that mini_libc.c implements (Debian's xtensa-lx106-elf toolchain has no libc). */
#ifndef MINI_LIBC_STRING_H
#define MINI_LIBC_STRING_H

#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
size_t strlen(const char *s);

#endif
