/*
 * The few libc functions this firmware (and GCC's code generation) needs;
 * Debian's xtensa-lx106-elf toolchain ships no C library.
 */
#include <string.h>

void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) {
        *d++ = *s++;
    }
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    while (n--) {
        *d++ = (unsigned char)c;
    }
    return dst;
}

size_t strlen(const char *s)
{
    const char *p = s;
    while (*p) {
        ++p;
    }
    return (size_t)(p - s);
}
