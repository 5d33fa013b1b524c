#!/usr/bin/env bash
# Checks that every relative link in the Markdown docs (README.md, docs/, bench/README.md)
# points at a file that exists and, for a #fragment into a Markdown file, at a heading it
# has (GitHub's anchor rules). A link that breaks when a section moves fails the run with
# the file and the link. Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - <<'PY'
import os, re, sys

def anchors(path):
    out = set()
    for heading in re.findall(r"^#+ (.*)$", open(path, encoding="utf-8").read(), re.M):
        out.add(re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-"))
    return out

files = ["README.md", "bench/README.md"]
for root, _, names in os.walk("docs"):
    files += [os.path.join(root, n) for n in names if n.endswith(".md")]
bad, count = [], 0
for f in sorted(files):
    text = re.sub(r"```.*?```", "", open(f, encoding="utf-8").read(), flags=re.S)  # not in code blocks
    for link in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", link):
            continue
        count += 1
        path, _, frag = link.partition("#")
        target = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
        if not os.path.exists(target):
            bad.append(f"{f}: link {link}: no file {target}")
        elif frag and target.endswith(".md") and frag not in anchors(target):
            bad.append(f"{f}: link {link}: {target} has no heading #{frag}")
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(f"doc links: {len(bad)} broken; fix the link or the heading it names")
print(f"doc links: {count} relative links in {len(files)} files, all resolve")
PY
