#!/usr/bin/env bash
# Networking, berth vs podman in one run: TCP throughput (iperf3) and HTTP
# request rate (ab against busybox httpd) through a published port, as root
# (bridge networks) and rootless (berth: pasta and a bridge network; podman:
# slirp4netns with each of its port handlers, its best is the bar), and the
# start latency a bridge network adds over --network none. Everything runs
# in a network namespace of the benchmark's own: host interfaces and rules
# are untouched and no traffic leaves the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/peers.sh
berth=$PWD/target/release/berth
n=${RUNS:-10}
user=berthbench
work=$(mktemp -d /var/tmp/berth-net.XXXXXX)
chmod 755 "$work"
ns=berth-bench-$$

# An unprivileged user with subordinate ids, for the rootless half.
if ! id "$user" >/dev/null 2>&1; then
	useradd -m -s /bin/sh "$user"
fi
uid=$(id -u "$user")
gid=$(id -g "$user")
grep -q "^$user:" /etc/subuid || echo "$user:300000:65536" >>/etc/subuid
grep -q "^$user:" /etc/subgid || echo "$user:300000:65536" >>/etc/subgid
mkdir -p "/run/user/$uid" && chown "$uid:$gid" "/run/user/$uid" && chmod 700 "/run/user/$uid"
chmod 0666 /dev/net/tun 2>/dev/null || true # what udev sets; pasta and slirp4netns need it

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add h0 type veth peer name h1
ip -n "$ns" addr add 192.168.78.1/24 dev h0
ip -n "$ns" link set h0 up
ip -n "$ns" link set h1 up
ip -n "$ns" route add default via 192.168.78.254 dev h0

as_root() { nsenter --net="/run/netns/$ns" -- "$@"; }
as_user() {
	nsenter --net="/run/netns/$ns" -S "$uid" -G "$gid" -- env -i PATH="$PATH" HOME="$work/home" \
		XDG_RUNTIME_DIR="/run/user/$uid" CONTAINERS_CONF="$work/user.conf" "$@"
}

cleanup() {
	as_user "$berth" --root "$work/home/berth" rm -af >/dev/null 2>&1 || true
	as_user podman --root "$work/home/podman" --runroot "$work/home/podman-run" rm -af -t 0 >/dev/null 2>&1 || true
	as_root "$berth" --root "$work/berth" rm -af >/dev/null 2>&1 || true
	as_root podman --root "$work/podman" --runroot "$work/podman-run" rm -af -t 0 >/dev/null 2>&1 || true
	as_user "$berth" system migrate >/dev/null 2>&1 || true
	as_user podman system migrate >/dev/null 2>&1 || true
	ip netns delete "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# One image: busybox (httpd) and iperf3 with its libraries.
r=$work/rootfs
mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/www"
cp /bin/busybox "$r/bin/"
for a in sh true httpd; do ln -s busybox "$r/bin/$a"; done
cp /usr/bin/iperf3 "$r/bin/"
for lib in $(ldd /usr/bin/iperf3 | grep -o '/[^ ]*'); do
	mkdir -p "$r$(dirname "$lib")" && cp -L "$lib" "$r$lib"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
head -c 2048 /dev/urandom | base64 >"$r/www/index.html"
tar -C "$r" -cf "$work/rootfs.tar" .
mkdir -p "$work/home" && chown "$uid:$gid" "$work/home"
podman_conf "$work"
cp "$work/containers.conf" "$work/user.conf"
chmod 644 "$work/user.conf" "$work/rootfs.tar"

serve='httpd -p 80 -h /www && exec iperf3 -s'
tput() { # host port: Gbit/s received over 3 s (to the host address, as from another host)
	local out
	out=$("${run[@]}" iperf3 -c 192.168.78.1 -p "$1" -t 3 -J 2>/dev/null) || { echo failed; return; }
	python3 -c 'import json,sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9, 2))' <<<"$out"
}
rate() { # host port: HTTP requests per second, 8 clients
	"${run[@]}" ab -q -n 4000 -c 8 "http://192.168.78.1:$1/index.html" 2>/dev/null |
		awk '/Requests per second/ {print int($4)}'
}
ready() { # wait until the published iperf3 port answers
	for _ in $(seq 100); do
		"${run[@]}" bash -c "exec 3<>/dev/tcp/192.168.78.1/$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
declare -A T R
measure() { # label, then the engine command (run -d ... prefix is added)
	local label=$1
	shift
	if ! "${run[@]}" "$@" run -d --name bench -p 15201:5201 -p 18080:80 $extra img sh -c "$serve" >/dev/null 2>"$work/err" || ! ready 15201; then
		echo "  $label: could not start ($(head -c 200 "$work/err"))"
		T[$label]=failed
		R[$label]=failed
	else
		sleep 0.3
		T[$label]=$(tput 15201)
		R[$label]=$(rate 18080)
	fi
	"${run[@]}" "$@" rm -f bench >/dev/null 2>&1 || true
}

# berth's default network on another subnet than podman's (both 10.88/16).
printf '[network]\ndefault_subnet = "10.87.0.0/16"\n' >"$work/berth.conf"
B=(env CONTAINERS_CONF="$work/berth.conf" "$berth" --root "$work/berth")
P=(podman --root "$work/podman" --runroot "$work/podman-run")
UB=("$berth" --root "$work/home/berth")
UP=(podman --root "$work/home/podman" --runroot "$work/home/podman-run")
echo "importing the image..."
as_root "${B[@]}" import -q "$work/rootfs.tar" img >/dev/null
as_root "${P[@]}" import -q "$work/rootfs.tar" img >/dev/null 2>&1
as_user "${UB[@]}" import -q "$work/rootfs.tar" img >/dev/null
as_user "${UP[@]}" import -q "$work/rootfs.tar" img >/dev/null 2>&1

echo "measuring throughput and request rate..."
run=(as_root)
extra=""
measure "root berth bridge" "${B[@]}"
measure "root podman bridge" "${P[@]}"
run=(as_user)
extra="--network pasta"
measure "rootless berth pasta" "${UB[@]}"
as_user "${UB[@]}" network create benchnet >/dev/null
extra="--network benchnet"
measure "rootless berth bridge" "${UB[@]}"
extra="--network slirp4netns:port_handler=rootlesskit"
measure "rootless podman slirp4netns+rootlesskit" "${UP[@]}"
extra="--network slirp4netns:port_handler=slirp4netns"
measure "rootless podman slirp4netns" "${UP[@]}"

mean_ms() { # command... ; mean wall time in ms over $n runs
	local s e
	"$@" >/dev/null 2>&1 || { echo failed; return; }
	s=$(date +%s%N)
	for _ in $(seq "$n"); do "$@" >/dev/null 2>&1; done
	e=$(date +%s%N)
	echo $(((e - s) / n / 1000000))
}
echo "measuring bridge start overhead..."
b_none=$(mean_ms as_root "${B[@]}" run --rm --network none img true)
b_br=$(mean_ms as_root "${B[@]}" run --rm img true)
p_none=$(mean_ms as_root "${P[@]}" run --rm --network none img true)
p_br=$(mean_ms as_root "${P[@]}" run --rm img true)

ratio() { [[ $1 =~ ^[0-9.]+$ && $2 =~ ^[0-9.]+$ ]] && [ "$(echo "$2 > 0" | bc)" = 1 ] && echo "scale=2; $1 / $2" | bc -l || echo n/a; }
best() { # the larger of two numbers (or the one that is a number)
	if [[ $1 =~ ^[0-9.]+$ && $2 =~ ^[0-9.]+$ ]]; then
		[ "$(echo "$1 > $2" | bc)" = 1 ] && echo "$1" || echo "$2"
	elif [[ $1 =~ ^[0-9.]+$ ]]; then echo "$1"; else echo "$2"; fi
}
printf '\n%-42s %12s %12s\n' "through a published port" "Gbit/s" "requests/s"
for k in "root berth bridge" "root podman bridge" "rootless berth pasta" "rootless berth bridge" \
	"rootless podman slirp4netns+rootlesskit" "rootless podman slirp4netns"; do
	printf '%-42s %12s %12s\n' "$k" "${T[$k]}" "${R[$k]}"
done
pt=$(best "${T[rootless podman slirp4netns+rootlesskit]}" "${T[rootless podman slirp4netns]}")
pr=$(best "${R[rootless podman slirp4netns+rootlesskit]}" "${R[rootless podman slirp4netns]}")
printf '\nroot:     berth/podman throughput = %s, request rate = %s\n' \
	"$(ratio "${T[root berth bridge]}" "${T[root podman bridge]}")" "$(ratio "${R[root berth bridge]}" "${R[root podman bridge]}")"
printf 'rootless: berth pasta / podman best: throughput = %s, request rate = %s\n' \
	"$(ratio "${T[rootless berth pasta]}" "$pt")" "$(ratio "${R[rootless berth pasta]}" "$pr")"
printf 'rootless: berth bridge / podman best: throughput = %s, request rate = %s\n' \
	"$(ratio "${T[rootless berth bridge]}" "$pt")" "$(ratio "${R[rootless berth bridge]}" "$pr")"
printf '\nstart overhead of a bridge network (run --rm img true, mean of %s):\n' "$n"
printf '  berth   none %4s ms, bridge %4s ms: +%s ms\n' "$b_none" "$b_br" "$((b_br - b_none))"
printf '  podman  none %4s ms, bridge %4s ms: +%s ms\n' "$p_none" "$p_br" "$((p_br - p_none))"
printf '  berth/podman overhead = %s\n' "$(ratio "$((b_br - b_none))" "$((p_br - p_none))")"
