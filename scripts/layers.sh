#!/usr/bin/env bash
# Checks the include layering docs/architecture.md states between its "layers" markers:
# every folder of src/ (and cmd) is on exactly one line, top to bottom, and a file may
# include only its own folder's headers or a folder on a lower line. An include that
# points up or sideways, or a folder the list does not name, fails with the file and
# line. Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - <<'EOF'
import os, re, sys

doc = open("docs/architecture.md").read()
m = re.search(r"<!-- layers -->\s*```[^\n]*\n(.*?)```\s*<!-- /layers -->", doc, re.S)
if not m:
    sys.exit("layers: docs/architecture.md has no ```-block between <!-- layers --> and <!-- /layers -->")
level = {}
for depth, line in enumerate(l for l in m.group(1).splitlines() if l.strip()):
    for folder in line.split():
        if folder in level:
            sys.exit(f"layers: docs/architecture.md names {folder} twice")
        level[folder] = depth

folders = {d for d in os.listdir("src") if os.path.isdir(os.path.join("src", d))} | {"cmd"}
missing = sorted(folders - level.keys())
if missing:
    sys.exit(f"layers: docs/architecture.md's layers do not name {', '.join(missing)}: add each to the line "
             "that matches what it includes")

bad = []
for top in ("src", "cmd"):
    for root, _, files in os.walk(top):
        for f in files:
            if not f.endswith((".cpp", ".h")):
                continue
            path = os.path.join(root, f)
            own = "cmd" if top == "cmd" else path.split(os.sep)[1]
            for n, text in enumerate(open(path, encoding="utf-8"), 1):
                inc = re.match(r'\s*#\s*include\s+"([a-z0-9_]+)/', text)
                if not inc or inc.group(1) == own or inc.group(1) not in level:
                    continue
                if level[inc.group(1)] <= level[own]:
                    bad.append(f"{path}:{n}: {own}/ includes {inc.group(1)}/, which is not below it")
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(f"layers: {len(bad)} include(s) against docs/architecture.md's layers: move the shared piece down "
             "a layer, or change the layers (and say why)")
print(f"layers: {len(level)} folders, every include points down")
EOF
