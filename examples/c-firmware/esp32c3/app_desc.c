/*
 * esp_app_desc_t, laid out exactly as ESP-IDF's
 * components/esp_app_format/include/esp_app_desc.h (256 bytes). ESP-IDF
 * places it in section .rodata_desc, which its linker script (and ours) puts
 * first in the flash-mapped DROM output section .flash.appdesc, so it is the
 * first data of image segment 0 (file offset 0x20).
 *
 * esptool elf2image sees the .flash.appdesc section and writes the SHA-256 of
 * the ELF into app_elf_sha256 (image offset 0xB0). Everything else here is
 * fixed text, so the image is reproducible: no __DATE__/__TIME__.
 */
#include <stdint.h>

#define ESP_APP_DESC_MAGIC_WORD 0xABCD5432u

typedef struct {
    uint32_t magic_word;             /* 0x00 ESP_APP_DESC_MAGIC_WORD */
    uint32_t secure_version;         /* 0x04 anti-rollback counter */
    uint32_t reserv1[2];             /* 0x08 */
    char version[32];                /* 0x10 application version */
    char project_name[32];           /* 0x30 */
    char time[16];                   /* 0x50 compile time */
    char date[16];                   /* 0x60 compile date */
    char idf_ver[32];                /* 0x70 */
    uint8_t app_elf_sha256[32];      /* 0x90 filled in by esptool elf2image */
    uint16_t min_efuse_blk_rev_full; /* 0xB0 */
    uint16_t max_efuse_blk_rev_full; /* 0xB2 */
    uint8_t mmu_page_size;           /* 0xB4 log2 of the flash MMU page size */
    uint8_t reserv3[3];              /* 0xB5 */
    uint32_t reserv2[18];            /* 0xB8 */
} esp_app_desc_t;

_Static_assert(sizeof(esp_app_desc_t) == 256, "esp_app_desc_t must be 256 bytes");
_Static_assert(__builtin_offsetof(esp_app_desc_t, app_elf_sha256) == 0x90, "app_elf_sha256 offset");

__attribute__((section(".rodata_desc"), used, aligned(16)))
const esp_app_desc_t esp_app_desc = {
    .magic_word = ESP_APP_DESC_MAGIC_WORD,
    .secure_version = 0,
    .version = "1.0.0",
    .project_name = "thinger-c3-demo",
    .time = "00:00:00",
    .date = "Jan  1 2025",
    .idf_ver = "none (bare metal, Debian gcc)",
    .app_elf_sha256 = {0},
    .min_efuse_blk_rev_full = 0,
    .max_efuse_blk_rev_full = 199, /* ESP-IDF's default for the ESP32-C3: v1.99 */
    .mmu_page_size = 16,           /* 64 KB */
};
