#!/usr/bin/env bash
# Pull benchmark: berth pull vs podman pull vs skopeo copy (to an OCI dir)
# of a 220 MB, 4-layer image from a local registry, in one run. Prints
# median times, ratios and berth's unpack throughput.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/peers.sh
berth=$PWD/target/release/berth
runs=${RUNS:-3}
work=$(mktemp -d /var/tmp/berth-bench.XXXXXX)
cleanup() { stop_registry; rm -rf "$work"; }
trap cleanup EXIT
start_registry "$work"

echo "building a 4 x 55 MB image..."
compressed=$(python3 bench/make_image.py "$work/layout" 4 55)
skopeo copy -q --dest-tls-verify=false "oci:$work/layout:big" "docker://127.0.0.1:$port/bench/big:latest"
image=127.0.0.1:$port/bench/big:latest
uncompressed=$((4 * 55 * 1024 * 1024))

cat >"$work/registries.conf" <<CONF
[[registry]]
location = "127.0.0.1:$port"
insecure = true
CONF
export CONTAINERS_REGISTRIES_CONF=$work/registries.conf
podman_conf "$work"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timeit() { # name, command... ; prints median seconds
	local name=$1; shift
	for i in $(seq "$runs"); do
		rm -rf "$work/dest"; mkdir -p "$work/dest"
		local s e
		s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
		echo "$e - $s" | bc -l
	done | median
}

t_berth=$(timeit berth "$berth" --root "$work/dest/berth" pull -q "$image")
t_skopeo=$(timeit skopeo skopeo copy -q --src-tls-verify=false "docker://$image" "oci:$work/dest/oci:big")
if command -v podman >/dev/null; then
	t_podman=$(timeit podman podman --root "$work/dest/podman" --runroot "$work/dest/podman-run" pull -q "$image")
else
	t_podman=""
fi
printf '\npull of %s MB compressed, %s MB uncompressed, %s runs (median):\n' $((compressed / 1000000)) $((uncompressed / 1000000)) "$runs"
printf '  berth   %6.2f s   unpack throughput %.0f MB/s\n' "$t_berth" "$(echo "$uncompressed / 1000000 / $t_berth" | bc -l)"
printf '  skopeo  %6.2f s   (copy to an OCI dir, no unpack)  berth/skopeo = %.2f\n' "$t_skopeo" "$(echo "$t_berth / $t_skopeo" | bc -l)"
if [ -n "$t_podman" ]; then
	printf '  podman  %6.2f s   berth/podman = %.2f\n' "$t_podman" "$(echo "$t_berth / $t_podman" | bc -l)"
else
	echo "  podman  not installed (make bench-deps installs it)"
fi
