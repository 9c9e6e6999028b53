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
