# Stands in for esptool.py in the test's upload step (tests/platformio/espressif32.py sets it as
# $UPLOADER): appends its command line as one JSON array to the file named by
# $FAKE_UPLOAD_LOG and checks that every file of `write_flash ADDRESS FILE...` exists.
import json
import os
import sys

args = sys.argv[1:]
with open(os.environ["FAKE_UPLOAD_LOG"], "a", encoding="utf8") as log:
    log.write(json.dumps(args) + "\n")

rest = args[args.index("write_flash") + 1 :]
pairs = []
i = 0
while i < len(rest):
    if rest[i] == "-z":
        i += 1
    elif rest[i].startswith("--"):
        i += 2
    else:
        pairs.append((rest[i], rest[i + 1]))
        i += 2
missing = [path for _, path in pairs if not os.path.isfile(path)]
if missing:
    sys.exit("fake_uploader: no such file: %s" % ", ".join(missing))
for address, path in pairs:
    print("fake_uploader: %s <- %s (%d bytes)" % (address, path, os.path.getsize(path)))
