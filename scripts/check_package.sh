#!/usr/bin/env bash
# Checks the Debian package scripts/package.sh builds (contract §7): its file list and
# control fields, that the binary it installs runs and finds every library it needs,
# that `cmake --install` installs the same files, and that systemd accepts its template
# unit. Run by scripts/test.sh. Prints "package: ok" at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(bash scripts/package.sh | tail -n 1)
dir=$(dirname "$(dirname "$deb")")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "package: $*" >&2; exit 1; }

dpkg-deb -c "$deb" | awk '{ print $NF }' | sed 's|^\./||' | grep -v '/$' | sort > "$work/files"
expected="usr/bin/slot-machine
usr/lib/systemd/system/slot-machine@.service
usr/share/doc/slot-machine/README.md
usr/share/doc/slot-machine/copyright
usr/share/doc/slot-machine/server.json.example
usr/share/doc/slot-machine/slot-machine.json.example
usr/share/man/man1/slot-machine.1.gz"
diff <(echo "$expected") "$work/files" || fail "unexpected file list in $deb (diff above: - expected, + found)"

info=$(dpkg-deb -I "$deb")
for field in "Package: slot-machine" "Architecture: amd64" "Section: admin" "Maintainer: "; do
  grep -q "^ $field" <<<"$info" || fail "control field '$field' missing"
done
depends=$(grep '^ Depends:' <<<"$info")
# Computed from the binary: every library it loads, and nothing it does not.
for lib in libgit2 libcpp-httplib libfmt libsystemd0 libstdc++6 libc6; do
  grep -q "$lib" <<<"$depends" || fail "Depends: lacks $lib: $depends"
done
grep -q -E 'boost|libcli11|nlohmann' <<<"$depends" && fail "Depends: names a build-only library: $depends"

dpkg-deb -x "$deb" "$work/root"
"$work/root/usr/bin/slot-machine" version | grep -q '^slot-machine' || fail "the installed binary does not run"
if ldd "$work/root/usr/bin/slot-machine" | grep -q 'not found'; then
  fail "the installed binary misses libraries: $(ldd "$work/root/usr/bin/slot-machine" | grep 'not found')"
fi
zcat "$work/root/usr/share/man/man1/slot-machine.1.gz" | grep -q '^\.TH SLOT-MACHINE 1' || fail "man page is not roff"

cmake --install "$dir" --prefix "$work/install" >/dev/null
(cd "$work/install" && find . -type f | sed 's|^\./||' | sed 's|^|usr/|' | sort) > "$work/installed"
diff "$work/files" "$work/installed" || fail "cmake --install installs other files than the package (diff above)"

# The template with ExecStart pointed at the extracted binary (it is not in /usr/bin here).
mkdir "$work/units"
sed "s|/usr/bin/slot-machine|$work/root/usr/bin/slot-machine|" \
  "$work/root/usr/lib/systemd/system/slot-machine@.service" > "$work/units/slot-machine@.service"
(cd "$work/units" && systemd-analyze verify slot-machine@demo.service) || fail "systemd-analyze rejects the template unit"
echo "package: ok ($deb; $depends)"
