/*
 * ThingerSlot.h - patchable "slot" records for ESP8266 / ESP32 firmware.
 *
 * A slot is a fixed-size record compiled into the firmware's constant data. After the build,
 * `thinger-patch` finds every record in the ELF or ESP image and overwrites its value in place
 * (WiFi credentials, Thinger.io device id, ...), without the sources and without recompiling.
 * The record layout is the slot format version 1 (docs/slot-format.md in the thinger-patch
 * repository); this header produces it byte for byte.
 *
 *     #include <ThingerSlot.h>
 *
 *     THINGER_SLOT(wifi_ssid, 32, "", THINGER_SLOT_REQUIRED);      // key "wifi_ssid"
 *     THINGER_SLOT_NAMED(fw_version, "fw.version", 16, "dev", 0);  // key "fw.version"
 *     THINGER_STANDARD_SLOTS();  // the six standard Thinger.io slots (not together with the above)
 *
 *     const char *ssid = THINGER_SLOT_VALUE(wifi_ssid);  // valid for the whole program
 *     bool patched = THINGER_SLOT_IS_PATCHED(wifi_ssid);
 *
 * Declarations go at file scope. Everything a declaration defines has internal linkage, so use
 * the slot in the file that declares it (pass the pointer on if other files need it). The same
 * declaration in several files gives several identical records; thinger-patch writes them all.
 *
 * Works in C99 and later and C++11 and later, with GCC or Clang (it relies on GNU attributes and
 * inline asm): xtensa-lx106 (ESP8266), xtensa-esp32*, riscv32 (ESP32-C*), and host compilers.
 *
 * SPDX-License-Identifier: MIT OR Apache-2.0
 */
#ifndef THINGER_SLOT_H
#define THINGER_SLOT_H

#include <stddef.h>
#include <stdint.h>
#ifndef __cplusplus
#include <stdbool.h>
#endif

#if !defined(__GNUC__)
#error "ThingerSlot.h needs GCC or Clang (it uses GNU attributes and inline asm)"
#endif

/* ---------------------------------------------------------------------------------------------
 * Public constants
 * ------------------------------------------------------------------------------------------- */

/* Flags (spec section 2). */
#define THINGER_SLOT_SECRET 1   /* tools mask the value in every output */
#define THINGER_SLOT_REQUIRED 2 /* personalisation fails unless a value is given */

#define THINGER_SLOT_FORMAT_VERSION 1
#define THINGER_SLOT_MAX_CAPACITY 4096
#define THINGER_SLOT_MAX_KEY_LEN 31
#define THINGER_SLOT_HEADER_SIZE 48

/* Size V of the value field for a capacity: (capacity + 1) rounded up to a multiple of 4. */
#define THINGER_SLOT_VALUE_SIZE(capacity) ((((size_t)(capacity)) + 4u) & ~(size_t)3u)

/* ---------------------------------------------------------------------------------------------
 * Public API
 * ------------------------------------------------------------------------------------------- */

/* Declares a slot whose key is the identifier itself: THINGER_SLOT(wifi_ssid, 32, "", 0); */
#define THINGER_SLOT(ident, capacity, default_value, flags)                                        \
    THINGER_SLOT_NAMED(ident, #ident, capacity, default_value, flags)

/* The value: a NUL-terminated string, valid for the whole program. */
#define THINGER_SLOT_VALUE(ident) (thinger_slot_value_##ident())

/* true once thinger-patch has written a value into the record (state byte = 1). */
#define THINGER_SLOT_IS_PATCHED(ident) (thinger_slot_patched_##ident())

/* Diagnostics: the address of the whole record (48 + V bytes) and its size. On ESP8266 the
 * record may live in flash, where only aligned 32-bit loads are allowed. */
#define THINGER_SLOT_RECORD(ident) (thinger_slot_address_##ident())
#define THINGER_SLOT_RECORD_SIZE(ident) (sizeof(thinger_slot_type_##ident))

/* The six standard Thinger.io slots (spec section 3). */
#define THINGER_STANDARD_SLOTS()                                                                   \
    THINGER_SLOT(wifi_ssid, 32, "", THINGER_SLOT_REQUIRED);                                        \
    THINGER_SLOT(wifi_password, 64, "", THINGER_SLOT_SECRET);                                      \
    THINGER_SLOT(thinger_host, 64, "iot.thinger.io", 0);                                           \
    THINGER_SLOT(thinger_user, 32, "", THINGER_SLOT_REQUIRED);                                     \
    THINGER_SLOT(thinger_device, 32, "", THINGER_SLOT_REQUIRED);                                   \
    THINGER_SLOT(thinger_credentials, 64, "", THINGER_SLOT_SECRET | THINGER_SLOT_REQUIRED)

/* ---------------------------------------------------------------------------------------------
 * Configuration (normally automatic)
 *
 * THINGER_SLOT_COPY_FROM_FLASH: 1 on ESP8266. The LX106 can only do aligned 32-bit loads from
 * the memory-mapped flash window; a byte load (strlen, printf, WiFi.begin...) raises
 * LoadStoreErrorCause. When a record lies in that window, the value accessor copies the value
 * once into a RAM buffer with word loads and returns the copy. Elsewhere the value is returned
 * in place. The window can be overridden with THINGER_SLOT_FLASH_BEGIN / _END.
 * ------------------------------------------------------------------------------------------- */
#ifndef THINGER_SLOT_COPY_FROM_FLASH
/* ESP8266 Arduino/PlatformIO define ESP8266 and ARDUINO_ARCH_ESP8266; the ESP8266 RTOS SDK
 * defines __ESP8266__. A bare xtensa-lx106-elf-gcc only defines __XTENSA__ with the call0 ABI,
 * which among Espressif chips only the ESP8266 uses (ESP32, -S2, -S3 use the windowed ABI). */
#if defined(ESP8266) || defined(ARDUINO_ARCH_ESP8266) || defined(__ESP8266__) ||                   \
    (defined(__XTENSA__) && defined(__XTENSA_CALL0_ABI__) && !defined(ESP32))
#define THINGER_SLOT_COPY_FROM_FLASH 1
#else
#define THINGER_SLOT_COPY_FROM_FLASH 0
#endif
#endif

#ifndef THINGER_SLOT_FLASH_BEGIN
#define THINGER_SLOT_FLASH_BEGIN 0x40200000u /* ESP8266 flash mapped by the cache (1 MB) */
#endif
#ifndef THINGER_SLOT_FLASH_END
#define THINGER_SLOT_FLASH_END 0x40300000u
#endif

/* ---------------------------------------------------------------------------------------------
 * Implementation. Nothing below is API; names may change.
 * ------------------------------------------------------------------------------------------- */

/* Compile-time checks: static_assert / _Static_assert where the language has them, a negative
 * array size otherwise (C99), whose typedef name then tells what went wrong. */
#if defined(__cplusplus) && __cplusplus >= 201103L
#define THINGER_SLOT_PRIV_ASSERT(cond, name, msg) static_assert(cond, msg)
#elif !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define THINGER_SLOT_PRIV_ASSERT(cond, name, msg) _Static_assert(cond, msg)
#else
#define THINGER_SLOT_PRIV_ASSERT(cond, name, msg)                                                  \
    typedef char name[(cond) ? 1 : -1] __attribute__((__unused__))
#endif

/* `used` keeps the compiler from discarding the record although the program may never name it.
 * `retain` (SHF_GNU_RETAIN) keeps the linker's --gc-sections from discarding its section: a
 * declared slot stays visible to thinger-patch even if the code that reads it was removed.
 * Some toolchains know the attribute but cannot emit the flag and warn "'retain' attribute
 * ignored"; that warning is silenced around the record (see THINGER_SLOT_PRIV_DIAG_*). */
#ifndef THINGER_SLOT_NO_RETAIN
#if defined(__has_attribute)
#if __has_attribute(__retain__)
#define THINGER_SLOT_PRIV_RETAIN , __retain__
#endif
#endif
#endif
#ifndef THINGER_SLOT_PRIV_RETAIN
#define THINGER_SLOT_PRIV_RETAIN
#endif

#define THINGER_SLOT_PRIV_DIAG_PUSH                                                                \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wattributes\"")
#define THINGER_SLOT_PRIV_DIAG_POP _Pragma("GCC diagnostic pop")

/* The empty asm takes the pointer in a register and "may change it", so the optimiser no longer
 * knows that it points at a constant object whose initialiser it can see. Without it, GCC/Clang
 * fold strlen/strcmp/reads of the default into the code or copy the default into the merged
 * string pool, and a value patched after the build would never be read. */
#define THINGER_SLOT_PRIV_LAUNDER(p) __asm__ __volatile__("" : "+r"(p))

/* 32-bit word that may alias anything: reads of the record as words are defined behaviour. */
typedef uint32_t thinger_slot_priv_word __attribute__((__may_alias__));

/* State byte (offset 9), read as part of the aligned word at offset 8 because on ESP8266 the
 * record may be in flash, where byte loads fault. volatile: one real load at run time. */
static inline unsigned thinger_slot_priv_state(const void *record)
{
    uint32_t w = ((const volatile thinger_slot_priv_word *)record)[2];
#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) &&                                    \
    __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (unsigned)((w >> 16) & 0xFFu);
#else
    return (unsigned)((w >> 8) & 0xFFu);
#endif
}

#if THINGER_SLOT_COPY_FROM_FLASH
/* Returns `value` itself unless it lies in the flash window; then copies its `words` aligned
 * 32-bit words (volatile: the compiler must not turn them into byte loads or a memcpy) into
 * `ram` the first time and returns `ram`. The record never changes at run time, so one copy
 * is enough, and a second copy by a racing caller writes the same bytes. */
static inline const char *thinger_slot_priv_from_flash(const char *value, uint32_t *ram,
                                                       size_t words, unsigned char *copied)
{
    uintptr_t a = (uintptr_t)value;
    if (a - (uintptr_t)THINGER_SLOT_FLASH_BEGIN >=
        (uintptr_t)THINGER_SLOT_FLASH_END - (uintptr_t)THINGER_SLOT_FLASH_BEGIN)
        return value;
    if (!*copied) {
        const volatile thinger_slot_priv_word *src =
            (const volatile thinger_slot_priv_word *)(const void *)value;
        size_t i;
        for (i = 0; i < words; i++)
            ram[i] = src[i];
        *copied = 1;
    }
    return (const char *)ram;
}
#define THINGER_SLOT_PRIV_RAM_DECL(vsize)                                                          \
    static uint32_t thinger_slot_ram[(vsize) / 4];                                                 \
    static unsigned char thinger_slot_copied;
#define THINGER_SLOT_PRIV_RETURN(value, vsize)                                                     \
    return thinger_slot_priv_from_flash((value), thinger_slot_ram, (vsize) / 4,                    \
                                        &thinger_slot_copied)
#else
#define THINGER_SLOT_PRIV_RAM_DECL(vsize)
#define THINGER_SLOT_PRIV_RETURN(value, vsize) return (value)
#endif

#if defined(__cplusplus) && __cplusplus >= 201103L
/* C++ can also check the characters of a key (spec section 3) and that the default has no NUL. */
constexpr bool thinger_slot_priv_key_char(char c, bool first)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
           (!first && ((c >= '0' && c <= '9') || c == '.' || c == '-'));
}
constexpr bool thinger_slot_priv_key_ok(const char *k, size_t i, size_t n)
{
    return i >= n ||
           (thinger_slot_priv_key_char(k[i], i == 0) && thinger_slot_priv_key_ok(k, i + 1, n));
}
constexpr bool thinger_slot_priv_no_nul(const char *s, size_t i, size_t n)
{
    return i >= n || (s[i] != '\0' && thinger_slot_priv_no_nul(s, i + 1, n));
}
#define THINGER_SLOT_PRIV_CXX_CHECKS(ident, key_str, default_str)                                  \
    static_assert(thinger_slot_priv_key_ok("" key_str "", 0, sizeof("" key_str "") - 1),           \
                  "ThingerSlot: slot " #ident ": key must match [A-Za-z_][A-Za-z0-9_.-]*");        \
    static_assert(thinger_slot_priv_no_nul("" default_str "", 0, sizeof("" default_str "") - 1),   \
                  "ThingerSlot: slot " #ident ": default must not contain a NUL byte");
#else
#define THINGER_SLOT_PRIV_CXX_CHECKS(ident, key_str, default_str)
#endif

/*
 * Declares a slot with an explicit key string.
 *
 * The record is a `static const` struct of bytes only (no padding, no endianness), 4-byte
 * aligned, in its own section `.rodata.thinger_slot.<ident>`: `.rodata.*` is allocated and
 * flashed on every ESP toolchain, and its own section keeps it apart from mergeable strings.
 * `"" x ""` makes the compiler insist that key and default are string literals, whose sizes
 * are then known at compile time. The default appears nowhere but in the record's initialiser.
 */
#define THINGER_SLOT_NAMED(ident, key_str, capacity_, default_str, flags_)                         \
    THINGER_SLOT_PRIV_ASSERT(sizeof("" key_str "") >= 2 && sizeof("" key_str "") <= 32,            \
                             thinger_slot_error_key_must_be_1_to_31_bytes_##ident,                 \
                             "ThingerSlot: slot " #ident ": key must be 1..31 bytes");             \
    THINGER_SLOT_PRIV_ASSERT((capacity_) >= 1 && (capacity_) <= THINGER_SLOT_MAX_CAPACITY,         \
                             thinger_slot_error_capacity_must_be_1_to_4096_##ident,                \
                             "ThingerSlot: slot " #ident ": capacity must be 1..4096");            \
    THINGER_SLOT_PRIV_ASSERT(sizeof("" default_str "") - 1 <= (size_t)(capacity_),                 \
                             thinger_slot_error_default_longer_than_capacity_##ident,              \
                             "ThingerSlot: slot " #ident ": default is longer than its capacity"); \
    THINGER_SLOT_PRIV_ASSERT(((flags_) & ~(THINGER_SLOT_SECRET | THINGER_SLOT_REQUIRED)) == 0,     \
                             thinger_slot_error_unknown_flags_##ident,                             \
                             "ThingerSlot: slot " #ident ": flags must be SECRET, REQUIRED or 0"); \
    THINGER_SLOT_PRIV_CXX_CHECKS(ident, key_str, default_str)                                      \
    typedef struct {                                                                               \
        uint8_t magic[8];                                                                          \
        uint8_t version;                                                                           \
        uint8_t state;                                                                             \
        uint8_t flags[2];                                                                          \
        uint8_t capacity[2];                                                                       \
        uint8_t key_len;                                                                           \
        uint8_t reserved;                                                                          \
        char key[32];                                                                              \
        char value[THINGER_SLOT_VALUE_SIZE(capacity_)];                                            \
    } thinger_slot_type_##ident;                                                                   \
    THINGER_SLOT_PRIV_DIAG_PUSH                                                                    \
    static const thinger_slot_type_##ident thinger_slot_record_##ident __attribute__((             \
        __used__ THINGER_SLOT_PRIV_RETAIN, __aligned__(4),                                         \
        __section__(".rodata.thinger_slot." #ident))) = {                                          \
        {0x54, 0x50, 0x53, 0x4C, 0x4F, 0x54, 0xA5, 0x5A},                                          \
        THINGER_SLOT_FORMAT_VERSION,                                                               \
        0,                                                                                         \
        {(uint8_t)((flags_) & 0xFF), (uint8_t)(((flags_) >> 8) & 0xFF)},                           \
        {(uint8_t)((capacity_) & 0xFF), (uint8_t)(((capacity_) >> 8) & 0xFF)},                     \
        (uint8_t)(sizeof("" key_str "") - 1),                                                      \
        0,                                                                                         \
        "" key_str "",                                                                             \
        "" default_str ""};                                                                        \
    THINGER_SLOT_PRIV_DIAG_POP                                                                     \
    static inline const void *thinger_slot_address_##ident(void)                                   \
    {                                                                                              \
        const thinger_slot_type_##ident *r = &thinger_slot_record_##ident;                         \
        THINGER_SLOT_PRIV_LAUNDER(r);                                                              \
        return r;                                                                                  \
    }                                                                                              \
    static inline const char *thinger_slot_value_##ident(void)                                     \
    {                                                                                              \
        THINGER_SLOT_PRIV_RAM_DECL(THINGER_SLOT_VALUE_SIZE(capacity_))                             \
        const thinger_slot_type_##ident *r = &thinger_slot_record_##ident;                         \
        THINGER_SLOT_PRIV_LAUNDER(r);                                                              \
        THINGER_SLOT_PRIV_RETURN(r->value, THINGER_SLOT_VALUE_SIZE(capacity_));                    \
    }                                                                                              \
    static inline bool thinger_slot_patched_##ident(void)                                          \
    {                                                                                              \
        const thinger_slot_type_##ident *r = &thinger_slot_record_##ident;                         \
        THINGER_SLOT_PRIV_LAUNDER(r);                                                              \
        return thinger_slot_priv_state(r) == 1;                                                    \
    }                                                                                              \
    THINGER_SLOT_PRIV_ASSERT(sizeof(thinger_slot_type_##ident) ==                                  \
                                 THINGER_SLOT_HEADER_SIZE + THINGER_SLOT_VALUE_SIZE(capacity_),    \
                             thinger_slot_error_unexpected_padding_##ident,                        \
                             "ThingerSlot: slot " #ident ": record has unexpected padding")

#endif /* THINGER_SLOT_H */
