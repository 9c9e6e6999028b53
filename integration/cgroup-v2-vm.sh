#!/usr/bin/env bash
# Boots Debian's own kernel under qemu (TCG: this machine cannot use KVM)
# with a unified cgroup v2 hierarchy (cgroup_no_v1=all), shares the host's
# /usr read-only and a work dir over 9p, and runs berth's cgroup v2 checks
# there. Prints "ok NAME" / "FAIL NAME ..." lines, then "RESULTS-END".
# Usage: integration/cgroup-v2-vm.sh BERTH_BINARY CACHE_DIR
set -euo pipefail
berth=$(readlink -f "$1")
cache=$(readlink -f "$2")
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$cache"

command -v qemu-system-x86_64 >/dev/null || { echo "SKIP qemu-system-x86_64 is not installed"; exit 0; }

# Debian's kernel, fetched once with apt and unpacked (never installed).
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$pkg" ] || { echo "SKIP no linux-image package known to apt (run apt-get update)"; exit 0; }
kdir=$cache/$pkg
if [ ! -d "$kdir/boot" ]; then
	rm -rf "$kdir.tmp" && mkdir -p "$kdir.tmp"
	(cd "$kdir.tmp" && apt-get download "$pkg" >/dev/null 2>&1 && dpkg-deb -x ./*.deb root && rm -f ./*.deb) ||
		{ echo "SKIP cannot download $pkg"; rm -rf "$kdir.tmp"; exit 0; }
	mv "$kdir.tmp/root" "$kdir" && rm -rf "$kdir.tmp"
fi
kernel=$(ls "$kdir"/boot/vmlinuz-*)
mods=$(ls -d "$kdir"/lib/modules/*)

# The initramfs: static busybox, the modules 9p and overlayfs need (in
# dependency order, from modinfo), and a first-stage init.
work=$(mktemp -d /var/tmp/berth-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
ird=$work/initrd
mkdir -p "$ird/bin" "$ird/modules" "$ird/proc" "$ird/sys" "$ird/dev" "$ird/newroot"
cp /bin/busybox "$ird/bin/busybox"
declare -A path_of seen
while IFS= read -r f; do n=$(basename "$f" .ko); path_of[${n//-/_}]=$f; done < <(find "$mods" -name '*.ko')
order=()
add() {
	local m=${1//-/_}
	[ -n "${seen[$m]:-}" ] && return
	seen[$m]=1
	local f=${path_of[$m]:-}
	[ -n "$f" ] || return 0 # built in
	local dep
	for dep in $(modinfo -F depends "$f" | tr ',' ' '); do add "$dep"; done
	cp "$f" "$ird/modules/$m.ko"
	order+=("$m")
}
for m in virtio_pci 9pnet_virtio 9p overlay; do add "$m"; done
printf '%s\n' "${order[@]}" >"$ird/modules/order"
cat >"$ird/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /modules/order); do insmod /modules/$m.ko || echo "insmod $m failed"; done
mount -t tmpfs -o size=1200m tmpfs /newroot
cd /newroot && mkdir -p usr work proc sys dev tmp etc var/lib run root
mount -t 9p -o trans=virtio,version=9p2000.L,ro usr /newroot/usr
mount -t 9p -o trans=virtio,version=9p2000.L work /newroot/work
ln -s usr/bin bin; ln -s usr/sbin sbin; ln -s usr/lib lib; ln -s usr/lib64 lib64
echo 'root:x:0:0:root:/root:/bin/sh' >etc/passwd; echo 'root:x:0:' >etc/group
exec switch_root /newroot /bin/sh /work/stage2.sh
INIT
chmod +x "$ird/init"
(cd "$ird" && find . | cpio -o -H newc --quiet) >"$work/initrd.cpio"

# What runs inside: the binary, a busybox image, and the checks.
share=$work/share
mkdir -p "$share"
cp "$berth" "$share/berth"
cp "$here/cgroup-v2-checks.sh" "$share/stage2.sh"
rootfs=$work/bbroot
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
tar -C "$rootfs" -cf "$share/busybox.tar" .

timeout 900 qemu-system-x86_64 -accel tcg -m 1536 -smp 2 -nographic -no-reboot \
	-kernel "$kernel" -initrd "$work/initrd.cpio" \
	-append "console=ttyS0 cgroup_no_v1=all pci=noacpi panic=-1 quiet" \
	-virtfs local,path=/usr,mount_tag=usr,security_model=none,readonly=on \
	-virtfs "local,path=$share,mount_tag=work,security_model=none" </dev/null |
	tr -d '\r' | grep -aoE '(ok|FAIL) [a-z0-9-]+|SKIP .*|RESULTS-END|insmod .*' || true
