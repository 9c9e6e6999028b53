#!/usr/bin/env bash
# Push benchmark: berth push vs skopeo copy of the same 4 x 40 MB image
# (the same gzip blobs, read from local disk) to a local registry, in one
# run. Each push goes to a registry started fresh on a new port, so
# neither side can skip or mount a blob it pushed before (skopeo keeps a
# blob-location cache). Prints medians and the ratio berth/skopeo.
set -euo pipefail
cd "$(dirname "$0")/.."
berth=$PWD/target/release/berth
runs=${RUNS:-3}
work=$(mktemp -d /var/tmp/berth-bench-push.XXXXXX)
cleanup() { stop_registry; rm -rf "$work"; }
trap cleanup EXIT
. bench/peers.sh

echo "building a 4 x 40 MB image..."
compressed=$(python3 bench/make_image.py "$work/layout" 4 40)
# berth gets the same blobs through a registry (pulled images keep their
# compressed layers, which push sends as they are).
start_registry "$work"
skopeo copy -q --dest-tls-verify=false "oci:$work/layout:big" "docker://127.0.0.1:$port/src/big:latest"
"$berth" --root "$work/berth" pull -q --tls-verify=false "127.0.0.1:$port/src/big:latest" >/dev/null
"$berth" --root "$work/berth" tag "127.0.0.1:$port/src/big:latest" localhost/big

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timeit() { # command with DEST in it... ; prints median seconds
	for _ in $(seq "$runs"); do
		start_registry "$work"
		local cmd=("${@//DEST/127.0.0.1:$port/bench/big:latest}")
		local s e
		s=$(date +%s.%N)
		"${cmd[@]}" >/dev/null 2>"$work/err" || { echo "failed: ${cmd[*]}: $(tail -1 "$work/err")" >&2; exit 1; }
		e=$(date +%s.%N)
		# What landed is the whole image.
		skopeo inspect --raw --tls-verify=false "docker://127.0.0.1:$port/bench/big:latest" >/dev/null
		stop_registry
		echo "$e - $s" | bc -l
	done | median
}

t_berth=$(timeit "$berth" --root "$work/berth" push -q --tls-verify=false localhost/big DEST)
t_skopeo=$(timeit skopeo copy -q --dest-tls-verify=false "oci:$work/layout:big" docker://DEST)
printf '\npush of %s MB (4 gzip layers) to a fresh local registry, %s runs (median):\n' $((compressed / 1000000)) "$runs"
printf '  berth   %6.2f s\n' "$t_berth"
printf '  skopeo  %6.2f s   berth/skopeo = %.2f\n' "$t_skopeo" "$(echo "$t_berth / $t_skopeo" | bc -l)"
