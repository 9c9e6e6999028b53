# Shared by the benchmarks: settings podman needs on this kind of machine
# (hard rlimits it cannot exceed; runc, since crun refuses hybrid cgroups).
# Usage: . bench/peers.sh; podman_conf DIR
podman_conf() {
	cat >"$1/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
	export CONTAINERS_CONF=$1/containers.conf
}

# An empty docker-registry on a fresh loopback port, its data under
# $1/registry; sets $port and $reg_pid (stop_registry stops it).
reg_pid=
stop_registry() {
	if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi
	reg_pid=
}
start_registry() {
	stop_registry
	rm -rf "$1/registry"
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	cat >"$1/reg.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $1/registry}}
http: {addr: 127.0.0.1:$port}
YML
	docker-registry serve "$1/reg.yml" >/dev/null 2>&1 &
	reg_pid=$!
	for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
}
