#!/usr/bin/env python3
"""Check a built firmware ELF for thinger-patch slot records (docs/slot-format.md).

    tools/check-elf.py <elf> [expected-record-count]

Prints every record (section, address, key, capacity, flags, default) and fails when
- a record is not in an allocated, file-backed (PROGBITS) section,
- a record is malformed or not 4-byte aligned,
- the number of records differs from the expected count, or
- a non-empty default value also occurs somewhere else in the allocated sections (the compiler
  folded the default into a copy the firmware would use instead of the record), or
- the ELF contains an absolute path of the build machine (this checkout or $CARGO_HOME).
Standard library only.
"""
import os
import re
import struct
import sys

MAGIC = bytes.fromhex("5450534C4F54A55A")
SHF_ALLOC = 0x2
SHT_PROGBITS = 1
SHT_NOBITS = 8
KEY_RE = re.compile(rb"^[A-Za-z_][A-Za-z0-9_.-]{0,30}$")


def sections(data):
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        sys.exit("not a little-endian ELF32 file")
    shoff, = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)
    raw = [struct.unpack_from("<IIIIIIIIII", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = raw[shstrndx]
    out = []
    for name, typ, flags, addr, off, size, *_ in raw:
        end = data.index(b"\0", strtab[4] + name)
        out.append({
            "name": data[strtab[4] + name:end].decode(),
            "type": typ, "flags": flags, "addr": addr, "off": off, "size": size,
        })
    return out


def main():
    path = sys.argv[1]
    expected = int(sys.argv[2]) if len(sys.argv) > 2 else None
    data = open(path, "rb").read()
    secs = sections(data)
    alloc = [s for s in secs if s["flags"] & SHF_ALLOC and s["type"] != SHT_NOBITS and s["size"]]
    errors = []
    records = []

    pos = data.find(MAGIC)
    while pos >= 0:
        sec = next((s for s in secs if s["type"] != SHT_NOBITS
                    and s["off"] <= pos < s["off"] + s["size"]), None)
        rec = {"off": pos, "section": sec["name"] if sec else "<none>", "addr": None}
        records.append(rec)
        if sec is None or not (sec["flags"] & SHF_ALLOC) or sec["type"] != SHT_PROGBITS:
            errors.append(f"record at file offset {pos:#x} is not in an allocated PROGBITS section")
        else:
            rec["addr"] = sec["addr"] + pos - sec["off"]
        ver, state, flags, cap, klen, resv = struct.unpack_from("<BBHHBB", data, pos + 8)
        key = data[pos + 16:pos + 16 + klen]
        vsize = (cap + 4) & ~3
        value = data[pos + 48:pos + 48 + vsize]
        nul = value.find(b"\0")
        ok = (ver == 1 and state in (0, 1) and resv == 0 and 1 <= cap <= 4096 and 1 <= klen <= 31
              and KEY_RE.match(key) and not any(data[pos + 16 + klen:pos + 48])
              and 0 <= nul <= cap and not any(value[nul:]))
        if not ok:
            errors.append(f"malformed record at file offset {pos:#x}")
            pos = data.find(MAGIC, pos + 8)
            continue
        if rec["addr"] is not None and rec["addr"] % 4:
            errors.append(f"record {key.decode()} at {rec['addr']:#x} is not 4-byte aligned")
        rec.update(key=key.decode(), cap=cap, flags=flags, state=state,
                   default=value[:nul].decode(), size=48 + vsize)
        pos = data.find(MAGIC, pos + 48 + vsize)

    print(f"{'key':<20} {'section':<10} {'address':>10} {'size':>4} {'cap':>4} {'flags':>5}  value")
    for r in records:
        if "key" in r:
            addr = f"{r['addr']:#010x}" if r["addr"] is not None else "-"
            shown = f"<{len(r['default'])} bytes>" if r["flags"] & 1 else repr(r["default"])
            print(f"{r['key']:<20} {r['section']:<10} {addr:>10} {r['size']:>4} {r['cap']:>4} "
                  f"{r['flags']:#06x}  {shown}")

    keys = [r["key"] for r in records if "key" in r]
    for k in sorted(set(keys)):
        if keys.count(k) > 1:
            errors.append(f"key {k} appears {keys.count(k)} times")
    if expected is not None and len(records) != expected:
        errors.append(f"{len(records)} records, expected {expected}")

    # Defaults must live only inside their record: any other copy in flash/RAM images means the
    # compiler constant-folded the value and a patch would not reach the program.
    for r in records:
        if not r.get("default"):
            continue
        needle = r["default"].encode()
        for s in alloc:
            blob = data[s["off"]:s["off"] + s["size"]]
            i = blob.find(needle)
            while i >= 0:
                at = s["off"] + i
                inside = any(q["off"] + 48 <= at < q["off"] + q.get("size", 0) for q in records)
                # A short default ("dev") also occurs inside longer words ("device"): a hit
                # with a letter or digit right before or after it is other text, not a copy.
                word = (i > 0 and chr(blob[i - 1]).isalnum()) or (
                    i + len(needle) < len(blob) and chr(blob[i + len(needle)]).isalnum())
                if inside:
                    pass
                elif word:
                    print(f"note: {needle!r} of {r['key']} occurs inside other text at "
                          f"{s['name']}+{i:#x}: {blob[max(0, i - 8):i + len(needle) + 8]!r}")
                else:
                    errors.append(f"default {needle!r} of {r['key']} also at {s['name']}+{i:#x}")
                i = blob.find(needle, i + 1)

    leaks = [os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))]
    leaks.append(os.environ.get("CARGO_HOME") or os.path.expanduser("~/.cargo"))
    for leak in leaks:
        n = data.count(leak.encode())
        if n:
            errors.append(f"absolute build path {leak!r} occurs {n} times in the ELF")

    for e in errors:
        print("error:", e, file=sys.stderr)
    print(f"{len(records)} records, {len(errors)} errors")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
