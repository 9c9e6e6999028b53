#!/usr/bin/env bash
# make compat: podman's own system tests (test/system/*.bats of podman
# v4.3.1) run against berth, from a directory the user gives; nothing of
# podman's is kept in berth. Builds the stand-in of podman's test image
# (quay.io/libpod/testimage:20220615: busybox, /home/podman/testimage-id
# and pause, WORKDIR /home/podman) into berth's store and pushes it to a
# docker-registry on loopback that registries.conf names as quay.io's
# mirror (the tests pull it again and again), then runs each file with
# PODMAN=berth and prints its pass/fail/skip counts.
#
#   make compat COMPAT_DIR=/path/to/podman/test/system [COMPAT_FILES="010-images 030-run"]
#   PODMAN=podman compat/run.sh DIR   # the same run against podman
set -euo pipefail
dir=${1:?usage: compat/run.sh PODMAN_TEST_SYSTEM_DIR [FILE...]}
shift
[ -f "$dir/helpers.bash" ] || { echo "compat: $dir has no helpers.bash; give podman's test/system directory (v4.3.1)" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
engine=${PODMAN:-$here/target/release/berth}
command -v bats >/dev/null || { echo "compat: bats is not installed (apt-get install bats)" >&2; exit 2; }
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(001-basic 005-info 010-images 011-image 015-help 020-tag 030-run
	035-logs 040-ps 045-start 050-stop 055-rm 060-mount 065-cp 075-exec 080-pause 090-events
	110-history 120-load 125-import 130-kill 140-diff 160-volumes 300-cli-parsing 320-system-df
	500-networking 610-format)

berth=$here/target/release/berth
image=quay.io/libpod/testimage:20220615
work=$(mktemp -d)
. "$here/bench/peers.sh"
trap 'stop_registry; rm -rf "$work"' EXIT
start_registry "$work"
cat >"$work/registries.conf" <<CONF
[[registry]]
location = "quay.io"
[[registry.mirror]]
location = "127.0.0.1:$port"
insecure = true
CONF
export CONTAINERS_REGISTRIES_CONF=$work/registries.conf
[ "$(basename "$engine")" != podman ] || podman_conf "$work"
fixture=6 # bump when the stand-in changes, so that a cached older one is rebuilt
# build_standin TAG ID: the stand-in, whose /home/podman/testimage-id says ID
build_standin() {
	local ref=$1 id=$2 root=$work/root-$2
	if [ "$("$berth" image inspect --format '{{index .Labels "berth.compat.fixture"}}' "$ref" 2>/dev/null)" = "$fixture" ]; then
		return
	fi
	"$berth" rmi -f "$ref" >/dev/null 2>&1 || true
	# alpine's top-level directories, which tests use as --workdir and mount points
	mkdir -p "$root/bin" "$root/home/podman" "$root/tmp" "$root/etc" "$root/usr/bin" "$root/sbin" "$root/usr/sbin" \
		"$root/srv" "$root/mnt" "$root/opt" "$root/media" "$root/root" "$root/run" "$root/var/tmp" \
		"$root/var/log" "$root/usr/local/bin" "$root/lib"
	cp /bin/busybox "$root/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
	done
	for a in env top nc; do ln -sf ../../bin/busybox "$root/usr/bin/$a"; done
	# Debian's busybox has no printenv applet; the real test image (alpine) has
	printf '%s\n' '#!/bin/sh' '[ $# -eq 0 ] && exec env' 'rc=0' \
		'for v; do eval "[ -n \"\${$v+x}\" ]" && eval "printf \"%s\\n\" \"\$$v\"" || rc=1; done' \
		'exit $rc' >"$root/usr/bin/printenv"
	chmod 755 "$root/usr/bin/printenv"
	ln -sf ../proc/mounts "$root/etc/mtab"
	echo "$id" >"$root/home/podman/testimage-id"
	touch --date=@1600000000 "$root/home/podman/testimage-id"
	printf '%s\n' '#!/bin/sh' 'echo Confirmed: testimage pause invoked as $0' 'while :; do' '    sleep 0.1' 'done' >"$root/home/podman/pause"
	chmod 755 "$root/home/podman/pause"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\n' >"$root/etc/group"
	ln -sf busybox "$root/bin/busybox-extras" # alpine's httpd and friends
	printf '%s\n' 'ftp-data 20/tcp' 'ftp 21/tcp' 'ssh 22/tcp' 'http 80/tcp www' >"$root/etc/services"
	chmod 555 "$root" # as the real test image has it
	tar -C "$root" -cf "$root.tar" .
	chmod 755 "$root"
	# As build-testimage makes it: a squashed base, then these steps (so
	# that `history` shows them), with a fixed timestamp.
	"$berth" import -q "$root.tar" "localhost/interim-$id" >/dev/null
	mkdir -p "$work/ctx-$id"
	cat >"$work/ctx-$id/Containerfile" <<-EOF
		FROM localhost/interim-$id
		LABEL created_by=test/system/build-testimage
		LABEL created_at=2022-06-15T00:00:00Z
		LABEL berth.compat.fixture=$fixture
		WORKDIR /home/podman
		CMD ["/bin/echo", "This container is intended for podman CI testing"]
	EOF
	"$berth" build -q --timestamp 1655251200 -t "$ref" "$work/ctx-$id" >/dev/null
	"$berth" rmi "localhost/interim-$id" >/dev/null
}
build_standin "$image" 20220615
# the "non-local" image that the pull tests fetch: a different image
nonlocal=quay.io/libpod/testimage:00000004
build_standin "$nonlocal" 00000004
"$berth" push -q --tls-verify=false "$nonlocal" "127.0.0.1:$port/libpod/testimage:00000004"
"$berth" rmi "$nonlocal" >/dev/null
"$berth" push -q --tls-verify=false "$image" "127.0.0.1:$port/libpod/testimage:20220615"

scratch=$(mktemp -d /tmp/berth-compat.XXXXXX)
cp -r "$dir"/. "$scratch/"
total_p=0 total_f=0 total_s=0
printf '%-22s %5s %5s %5s\n' file pass fail skip
for f in "${files[@]}"; do
	f=${f%.bats}
	[ -f "$scratch/$f.bats" ] || { echo "compat: no $f.bats" >&2; continue; }
	out=$scratch/$f.tap
	(cd "$scratch" && PODMAN=$engine timeout 1800 bats --tap "$f.bats" >"$out" 2>&1) || true
	s=$(grep -c '^ok .* # skip' "$out" || true)
	p=$(( $(grep -c '^ok ' "$out" || true) - s ))
	n=$(grep -c '^not ok ' "$out" || true)
	printf '%-22s %5d %5d %5d\n' "$f" "$p" "$n" "$s"
	total_p=$((total_p + p)) total_f=$((total_f + n)) total_s=$((total_s + s))
done
printf '%-22s %5d %5d %5d\n' total "$total_p" "$total_f" "$total_s"
echo "TAP output per file: $scratch"
