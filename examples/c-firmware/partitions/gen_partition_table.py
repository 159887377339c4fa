#!/usr/bin/env python3
"""Turn a partition CSV into the 3072-byte binary ESP-IDF's bootloader reads at 0x8000.

Binary format (ESP-IDF components/partition_table, esp_partition.h):
  32-byte entries  { u16 magic 0x50AA (bytes AA 50), u8 type, u8 subtype,
                     u32 offset, u32 size, char label[16], u32 flags }
  then the MD5 entry: EB EB, 14 x FF, MD5 of every preceding entry byte,
  then 0xFF up to 0xC00 bytes (an all-0xFF entry ends the table).

Only what the demo needs: numeric offsets/sizes (hex, decimal, or with K/M suffix),
the standard type and subtype names, flags "encrypted"/"readonly". Deterministic
output: same CSV -> same bytes.

usage: gen_partition_table.py INPUT.csv OUTPUT.bin
"""
import hashlib
import struct
import sys

TABLE_SIZE = 0xC00
ENTRY = struct.Struct("<2sBBII16sI")
MAGIC = b"\xAA\x50"
MD5_MAGIC = b"\xEB\xEB" + b"\xFF" * 14

TYPES = {"app": 0x00, "data": 0x01}
SUBTYPES = {
    0x00: {"factory": 0x00, "test": 0x20, **{f"ota_{n}": 0x10 + n for n in range(16)}},
    0x01: {"ota": 0x00, "phy": 0x01, "nvs": 0x02, "coredump": 0x03, "nvs_keys": 0x04,
           "efuse": 0x05, "undefined": 0x06, "esphttpd": 0x80, "fat": 0x81, "spiffs": 0x82,
           "littlefs": 0x83},
}
FLAGS = {"encrypted": 1 << 0, "readonly": 1 << 1}


def number(text):
    text = text.strip().lower()
    scale = 1
    if text.endswith("k"):
        text, scale = text[:-1], 1024
    elif text.endswith("m"):
        text, scale = text[:-1], 1024 * 1024
    return int(text, 0) * scale


def parse(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            cols = [c.strip() for c in line.split(",")]
            cols += [""] * (6 - len(cols))
            name, ptype, subtype, offset, size, flags = cols[:6]
            try:
                t = TYPES[ptype] if ptype in TYPES else number(ptype)
                st = SUBTYPES.get(t, {}).get(subtype)
                st = st if st is not None else number(subtype)
                fl = 0
                for flag in filter(None, (x.strip() for x in flags.split(":"))):
                    fl |= FLAGS[flag]
                off, sz = number(offset), number(size)
            except (KeyError, ValueError) as e:
                sys.exit(f"{path}:{lineno}: cannot parse {line!r}: {e}")
            label = name.encode("ascii")
            if not 0 < len(label) <= 16:
                sys.exit(f"{path}:{lineno}: label {name!r} must be 1..16 ASCII bytes")
            if off % 0x1000 or (t == 0x00 and off % 0x10000):
                sys.exit(f"{path}:{lineno}: offset {off:#x} misaligned")
            rows.append((label, t, st, off, sz, fl))
    by_offset = sorted(rows, key=lambda r: r[3])  # entries are written in CSV order, as ESP-IDF does
    for a, b in zip(by_offset, by_offset[1:]):
        if a[3] + a[4] > b[3]:
            sys.exit(f"{path}: partitions {a[0]!r} and {b[0]!r} overlap")
    return rows


def build(rows):
    entries = b"".join(ENTRY.pack(MAGIC, t, st, off, sz, label.ljust(16, b"\0"), fl)
                       for label, t, st, off, sz, fl in rows)
    table = entries + MD5_MAGIC + hashlib.md5(entries).digest()
    if len(table) > TABLE_SIZE - 32:
        sys.exit("too many partitions")
    return table + b"\xFF" * (TABLE_SIZE - len(table))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    data = build(parse(sys.argv[1]))
    with open(sys.argv[2], "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
