#!/usr/bin/env bash
# Container lifecycle with no daemon, berth vs podman in one run: `ps -a`
# with many containers, a run -d + stop + rm cycle, 20 `run --rm` with 10 in
# parallel, and the resident memory of berth's monitor vs conmon.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/peers.sh
berth=$PWD/target/release/berth
n=${PS_N:-1000}
work=$(mktemp -d /var/tmp/berth-life.XXXXXX)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/rootfs/bin" "$work/rootfs/etc"
cp /bin/busybox "$work/rootfs/bin/"
for a in sh true sleep; do ln -s busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/rootfs/etc/passwd"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
b=("$berth" --root "$work/berth" --runroot "$work/berth-run")
"${b[@]}" import -q "$work/rootfs.tar" busybox >/dev/null

have_podman=false
if command -v podman >/dev/null; then
	have_podman=true
	podman_conf "$work"
	p=(podman --root "$work/podman" --runroot "$work/podman-run")
	"${p[@]}" import -q "$work/rootfs.tar" localhost/busybox >/dev/null 2>&1
fi

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
ratio() { [ -n "${2:-}" ] && [ "$2" -gt 0 ] && echo "scale=2; $1 / $2" | bc -l || echo n/a; }

echo "creating $n containers each..."
seq "$n" | xargs -P 4 -I{} "${b[@]}" create --network none --name c{} busybox true >/dev/null
$have_podman && seq "$n" | xargs -P 4 -I{} "${p[@]}" create --network none --name c{} localhost/busybox true >/dev/null 2>&1
t_ps=$(ms "${b[@]}" ps -a)
t_pps=""; $have_podman && t_pps=$(ms "${p[@]}" ps -a)
"${b[@]}" container prune >/dev/null
$have_podman && "${p[@]}" container prune -f >/dev/null 2>&1

cycle() { id=$("$@" run -d --network none busybox sleep 100) && "$@" stop -t 0 "$id" && "$@" rm "$id"; }
t_cycle=$(ms cycle "${b[@]}")
t_pcycle=""; $have_podman && t_pcycle=$(ms cycle "${p[@]}")

par() { seq 20 | xargs -P 10 -I{} "$@" run --rm --network none busybox true; }
t_par=$(ms par "${b[@]}")
t_ppar=""; $have_podman && t_ppar=$(ms par "${p[@]}")

rss() { grep VmRSS "/proc/$1/status" | awk '{print $2}'; }
"${b[@]}" run -d --network none --name m busybox sleep 100 >/dev/null
sleep 2
r_mon=$(rss "$("${b[@]}" inspect --format '{{.State.ConmonPid}}' m)")
"${b[@]}" rm -f m >/dev/null
r_conmon=""
if $have_podman; then
	"${p[@]}" run -d --network none --name m localhost/busybox sleep 100 >/dev/null 2>&1
	sleep 2
	r_conmon=$(rss "$("${p[@]}" inspect --format '{{.State.ConmonPid}}' m)")
	"${p[@]}" rm -f -t 0 m >/dev/null 2>&1
fi

printf '\ncontainer lifecycle:\n'
printf '  ps -a with %s containers   berth %5s ms   podman %5s ms   ratio %s\n' "$n" "$t_ps" "${t_pps:-n/a}" "$(ratio "$t_ps" "${t_pps:-}")"
printf '  run -d + stop + rm         berth %5s ms   podman %5s ms   ratio %s\n' "$t_cycle" "${t_pcycle:-n/a}" "$(ratio "$t_cycle" "${t_pcycle:-}")"
printf '  20 run --rm, 10 parallel   berth %5s ms   podman %5s ms   ratio %s\n' "$t_par" "${t_ppar:-n/a}" "$(ratio "$t_par" "${t_ppar:-}")"
printf '  monitor RSS                berth %5s kB   conmon %5s kB   ratio %s\n' "$r_mon" "${r_conmon:-n/a}" "$(ratio "$r_mon" "${r_conmon:-}")"
