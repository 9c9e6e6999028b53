#!/usr/bin/env bash
# Start latency of `run --rm busybox true` with the image cached: berth vs
# podman vs crun (on a bundle) vs a bare unshare of the same namespaces, in
# one run. Prints the mean of N runs and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/peers.sh
berth=$PWD/target/release/berth
n=${RUNS:-20}
work=$(mktemp -d /var/tmp/berth-start.XXXXXX)
trap 'rm -rf "$work"' EXIT

# One busybox root filesystem for everyone.
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp" "$work/rootfs/proc" "$work/rootfs/sys" "$work/rootfs/dev"
cp /bin/busybox "$work/rootfs/bin/"
for a in sh true; do ln -s busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/rootfs/etc/passwd"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
"$berth" --root "$work/berth" import -q "$work/rootfs.tar" busybox >/dev/null

mean_ms() { # command... ; prints mean wall time in ms over $n runs
	local s e
	"$@" >/dev/null 2>&1 || { echo "failed"; return; }
	s=$(date +%s%N)
	for _ in $(seq "$n"); do "$@" >/dev/null 2>&1; done
	e=$(date +%s%N)
	echo $(( (e - s) / n / 1000000 ))
}

t_berth=$(mean_ms "$berth" --root "$work/berth" run --rm --network none busybox true)
t_unshare=$(mean_ms unshare --pid --fork --mount --uts --ipc --net --cgroup "$work/rootfs/bin/true")

t_crun=""
if command -v crun >/dev/null; then
	mkdir -p "$work/bundle" && cp -a "$work/rootfs" "$work/bundle/rootfs"
	(cd "$work/bundle" && crun spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"true"/' config.json)
	# crun refuses hybrid cgroup hosts unless the v2 mount is hidden from it.
	crun_run() { unshare -m --propagation private sh -c "umount /sys/fs/cgroup/unified 2>/dev/null; cd $work/bundle && crun run bench-\$\$"; }
	t_crun=$(mean_ms crun_run)
fi

t_podman=""
if command -v podman >/dev/null; then
	podman_conf "$work"
	p=(podman --root "$work/podman" --runroot "$work/podman-run")
	"${p[@]}" import -q "$work/rootfs.tar" localhost/busybox >/dev/null 2>&1 || true
	t_podman=$(mean_ms "${p[@]}" run --rm --network none localhost/busybox true)
fi

ratio() { [ -n "$2" ] && [ "$2" != failed ] && [ "$2" -gt 0 ] && echo "scale=2; $1 / $2" | bc -l || echo "n/a"; }
printf '\nrun --rm busybox true, mean of %s runs:\n' "$n"
printf '  berth    %5s ms\n' "$t_berth"
printf '  unshare  %5s ms   (bare namespaces, the floor)   berth/unshare = %s\n' "$t_unshare" "$(ratio "$t_berth" "$t_unshare")"
printf '  crun     %5s ms   berth/crun = %s\n' "${t_crun:-n/a}" "$(ratio "$t_berth" "${t_crun:-}")"
printf '  podman   %5s ms   berth/podman = %s\n' "${t_podman:-n/a}" "$(ratio "$t_berth" "${t_podman:-}")"
