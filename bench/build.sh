#!/usr/bin/env bash
# Build benchmark: berth build vs podman build (buildah inside) of the same
# 30-instruction Containerfile over a context of FILES files, in one run,
# both from the same local base image, both with their layer caches:
#   cold       first build into an empty store
#   unchanged  the same build again (every step cached)
#   one file   one context file changed, then built again
# Each side is timed the same way (wall clock of the command, no wrapper
# on either side); medians of RUNS runs and ratios berth/podman.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/peers.sh
berth=$PWD/target/release/berth
runs=${RUNS:-3}
files=${FILES:-2000}
bytes=${BYTES:-7000}
work=$(mktemp -d /var/tmp/berth-bench-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
podman_conf "$work"

# The base: busybox-static as a one-layer image, imported by both.
mkdir -p "$work/base/bin"
cp /bin/busybox "$work/base/bin/"
for a in sh cat echo mkdir ls cp wc sort; do ln -s busybox "$work/base/bin/$a"; done
tar -C "$work/base" -cf "$work/base.tar" .

# The context: FILES files of BYTES bytes (7,000 unless set) in 20 dirs.
ctx=$work/ctx
python3 - "$ctx" "$files" "$bytes" <<'PY'
import os, sys, random
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(7)
for i in range(n):
    d = os.path.join(root, "src", f"d{i % 20:02}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05}.txt"), "wb") as f:
        f.write(random.randbytes(size))
PY
{
	echo "FROM localhost/bench-base"
	echo "ARG VERSION=1"
	for i in $(seq 1 8); do echo "ENV V$i=value$i"; done
	echo "LABEL org.example.bench=build"
	echo "WORKDIR /app"
	echo "COPY src/d00 /app/d00"
	echo "RUN echo step1 > /app/one"
	for i in $(seq 1 9); do echo "COPY src/d$(printf %02d "$i") /app/d$i"; done
	echo "RUN ls /app | wc -l > /app/count"
	echo "COPY src /app/all"
	echo "RUN cat /app/count"
	echo "USER 0"
	echo "EXPOSE 8080"
	echo "CMD [\"sh\"]"
} >"$ctx/Containerfile"
instructions=$(grep -c . "$ctx/Containerfile")

B() { "$berth" --root "$work/berth" --runroot "$work/berth-run" "$@"; }
P() { podman --root "$work/podman" --runroot "$work/podman-run" --storage-driver overlay "$@"; }
B import -q "$work/base.tar" bench-base >/dev/null
P import -q "$work/base.tar" localhost/bench-base >/dev/null

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }
# name, prepare-command, build-command...
timeit() {
	local prep=$1; shift
	for _ in $(seq "$runs"); do
		eval "$prep"
		# Earlier runs' dirty pages are written back first, so that
		# neither side's fsyncs wait for the other's writes.
		sync
		local s e
		s=$(now); "$@" >/dev/null 2>&1; e=$(now)
		echo "$e - $s" | bc -l
	done | median
}
reset_berth() { rm -rf "$work/berth"; B import -q "$work/base.tar" bench-base >/dev/null; }
reset_podman() { P rmi -af >/dev/null 2>&1 || true; P import -q "$work/base.tar" localhost/bench-base >/dev/null; }

cold_b=$(timeit reset_berth B build -q --network none -t bench "$ctx")
cold_p=$(timeit reset_podman P build -q --network none --layers -t bench "$ctx")
same_b=$(timeit : B build -q --network none -t bench "$ctx")
same_p=$(timeit : P build -q --network none --layers -t bench "$ctx")
change='date +%s%N > "$ctx/src/d15/f00015.txt"'
one_b=$(timeit "$change" B build -q --network none -t bench "$ctx")
one_p=$(timeit "$change" P build -q --network none --layers -t bench "$ctx")

ratio() { echo "$1 / $2" | bc -l; }
printf '\nbuild of a %s-instruction Containerfile, %s-file %s MB context, %s runs (median):\n' "$instructions" "$files" $((files * bytes / 1000000)) "$runs"
printf '                 berth      podman     berth/podman\n'
printf '  cold         %7.3f s  %7.3f s   %.2f\n' "$cold_b" "$cold_p" "$(ratio "$cold_b" "$cold_p")"
printf '  unchanged    %7.3f s  %7.3f s   %.3f\n' "$same_b" "$same_p" "$(ratio "$same_b" "$same_p")"
printf '  one file     %7.3f s  %7.3f s   %.3f\n' "$one_b" "$one_p" "$(ratio "$one_b" "$one_p")"
