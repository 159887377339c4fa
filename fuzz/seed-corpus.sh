#!/bin/sh
# Fills fuzz/corpus/<target>/ with seeds: the synthetic images that tests/suite/malformed.rs builds
# (written by its `write_fuzz_seed_corpus` test) and copies of the real fixtures from
# ../shared/fixtures/third-party (or $THINGER_PATCH_FIXTURES) up to 200 KiB. fuzz/corpus is
# gitignored: nothing here is ever committed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
corpus="$here/corpus"
fixtures="${THINGER_PATCH_FIXTURES:-$root/../shared/fixtures/third-party}"

THINGER_PATCH_FUZZ_CORPUS="$corpus" cargo test --quiet --manifest-path "$root/Cargo.toml" \
    --test suite malformed::write_fuzz_seed_corpus -- --exact

if [ ! -d "$fixtures" ]; then
    echo "no fixtures at $fixtures: synthetic seeds only"
    exit 0
fi
find "$fixtures" -type f -size -201k ! -name MANIFEST.tsv | while read -r f; do
    name=$(printf '%s' "${f#"$fixtures"/}" | tr / _)
    cp "$f" "$corpus/parse_any/$name"
    cp "$f" "$corpus/patch_roundtrip/$name"
    gzip -9 -n -c "$f" > "$corpus/gzip/$name.gz"
    case "$f" in
        *.elf) cp "$f" "$corpus/elf/$name" ;;
        *partitions*.bin) cp "$f" "$corpus/partition_table/$name" ;;
        *.bin) cp "$f" "$corpus/app_image/$name" ;;
    esac
done
for t in "$corpus"/*; do
    echo "$(basename "$t"): $(ls "$t" | wc -l) seeds"
done
