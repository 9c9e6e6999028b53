#!/usr/bin/env bash
# Start latency of a container that runs `true`, image cached: berth
# (`run --rm --network none busybox true`) vs crun (`crun run` of a bundle
# with the same root filesystem) vs podman vs a bare unshare of the same
# namespaces (the floor). Prints means and ratios.
#
# Measured the same way on every side: hyperfine -N runs each command
# directly (no shell, no wrapper process), and hyperfine itself runs inside
# one private mount namespace in which the empty cgroup v2 mount of this
# hybrid host is hidden (crun refuses hybrid hosts otherwise). Nobody pays
# for an unshare or a shell that the others do not.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BERTH_BENCH_PRIVATE_MOUNTS:-}" ]; then
	exec unshare --mount --propagation private env BERTH_BENCH_PRIVATE_MOUNTS=1 "$0" "$@"
fi
umount /sys/fs/cgroup/unified 2>/dev/null || true
. bench/peers.sh
berth=$PWD/target/release/berth
n=${RUNS:-30}
work=$(mktemp -d /var/tmp/berth-start.XXXXXX)
trap 'rm -rf "$work"' EXIT

# One busybox root filesystem for everyone.
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp" "$work/rootfs/proc" "$work/rootfs/sys" "$work/rootfs/dev"
cp /bin/busybox "$work/rootfs/bin/"
for a in sh true; do ln -s busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/rootfs/etc/passwd"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
"$berth" --root "$work/berth" --runroot "$work/berth-run" import -q "$work/rootfs.tar" busybox >/dev/null

cmds=(-n berth "$berth --root $work/berth --runroot $work/berth-run run --rm --network none busybox true")
cmds+=(-n unshare "unshare --pid --fork --mount --uts --ipc --net --cgroup $work/rootfs/bin/true")
if command -v crun >/dev/null; then
	mkdir -p "$work/bundle" && cp -a "$work/rootfs" "$work/bundle/rootfs"
	(cd "$work/bundle" && crun spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"true"/' config.json)
	cmds+=(-n crun "crun --root $work/crun-state run --bundle $work/bundle bench")
	# The same container as berth's: berth's own runtime spec (seccomp
	# filter, capabilities, masked paths, device cgroup, /etc files),
	# with the plain rootfs for root.path and no berth annotations.
	id=$("$berth" --root "$work/berth" --runroot "$work/berth-run" create --network none busybox true)
	mkdir -p "$work/bundle-berth" && cp -a "$work/rootfs" "$work/bundle-berth/rootfs"
	python3 - "$work/berth/containers/$id/userdata/config.json" "$work/bundle-berth" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
spec["root"]["path"] = sys.argv[2] + "/rootfs"
spec.pop("annotations", None)
spec["linux"]["cgroupsPath"] = "/bench-crun"
json.dump(spec, open(sys.argv[2] + "/config.json", "w"))
PY
	cmds+=(-n crun-same-spec "crun --root $work/crun-state run --bundle $work/bundle-berth bench2")
fi
if command -v podman >/dev/null; then
	podman_conf "$work"
	p="podman --root $work/podman --runroot $work/podman-run"
	$p import -q "$work/rootfs.tar" localhost/busybox >/dev/null 2>&1 || true
	cmds+=(-n podman "$p run --rm --network none localhost/busybox true")
fi

hyperfine -N --style basic --warmup 3 --runs "$n" --export-json "$work/start.json" "${cmds[@]}" >"$work/hyperfine.txt" 2>&1 ||
	{ cat "$work/hyperfine.txt"; exit 1; }

python3 - "$work/start.json" "$n" <<'EOF'
import json, sys
runs = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
b = runs["berth"]["median"]
print(f"\nstart of a container running `true`, hyperfine -N, {sys.argv[2]} runs each, one private mount namespace (ratios of medians):")
for name, r in runs.items():
    ratio = "" if name == "berth" else f"   berth/{name} = {b / r['median']:.2f}"
    print(f"  {name:14} median {r['median']*1000:6.1f} ms   mean {r['mean']*1000:6.1f} ± {r['stddev']*1000:4.1f}{ratio}")
EOF
