/* Printing helpers for the hosted test programs (tests/common/mod.rs parses the output).
 * One line per slot: <ident> <record hex> <value hex or -> <strlen> <patched 0/1> <in place 0/1>
 * SPDX-License-Identifier: MIT OR Apache-2.0 */
#ifndef THINGER_SLOT_TEST_DUMP_H
#define THINGER_SLOT_TEST_DUMP_H

#include <stdio.h>
#include <string.h>

static void put_hex(const void *p, size_t n)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    if (n == 0)
        printf("-");
    for (i = 0; i < n; i++)
        printf("%02x", b[i]);
}

static void dump(const char *ident, const void *record, size_t size, const char *value,
                 size_t length, bool patched)
{
    printf("%s ", ident);
    put_hex(record, size);
    printf(" ");
    put_hex(value, strlen(value));
    printf(" %u %d %d\n", (unsigned)length, patched ? 1 : 0,
           value == (const char *)record + THINGER_SLOT_HEADER_SIZE ? 1 : 0);
}

/* The length is computed right here, where the optimiser sees the accessor inlined: without the
 * barrier in the accessor GCC folds strlen() of the default to a constant, and the length would
 * not change when the file is patched. */
#define DUMP(id)                                                                                   \
    dump(#id, THINGER_SLOT_RECORD(id), THINGER_SLOT_RECORD_SIZE(id), THINGER_SLOT_VALUE(id),       \
         strlen(THINGER_SLOT_VALUE(id)), THINGER_SLOT_IS_PATCHED(id))

#endif
