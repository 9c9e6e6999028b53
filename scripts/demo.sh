#!/usr/bin/env bash
# Turns Debian's busybox-static into a local image with `berth import`,
# with no network access, shows it and runs a container from it. Usage: scripts/demo.sh PATH/TO/berth
set -euo pipefail
berth=${1:-target/release/berth}
if [ ! -x /bin/busybox ]; then
	apt-get install -y -q busybox-static
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp" "$work/rootfs/root"
cp /bin/busybox "$work/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
	[ "$applet" = busybox ] || ln -s busybox "$work/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/rootfs/etc/passwd"
echo 'root:x:0:' >"$work/rootfs/etc/group"
chmod 1777 "$work/rootfs/tmp"
tar -C "$work/rootfs" -czf "$work/busybox.tar.gz" .

echo "+ berth import -c 'CMD [\"/bin/sh\"]' busybox.tar.gz busybox"
"$berth" import -c 'CMD ["/bin/sh"]' -m "Debian busybox-static" "$work/busybox.tar.gz" busybox
echo "+ berth images"
"$berth" images
echo "+ berth image inspect --format '{{.Id}} {{.Config.Cmd}} {{.Architecture}}' busybox"
"$berth" image inspect --format '{{.Id}} {{.Config.Cmd}} {{.Architecture}}' busybox
echo "+ berth system check"
"$berth" system check
echo "+ berth run --rm busybox sh -c 'echo hello from \$(hostname); id; ps'"
"$berth" run --rm busybox sh -c 'echo hello from $(hostname); id; ps'
