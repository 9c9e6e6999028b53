#!/bin/sh
# Runs inside the VM as PID 1: a cgroup v2 host like a systemd one, then
# berth's limits checked from inside containers and from the host side.
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /tmp; mount -t tmpfs tmpfs /var/lib; mount -t tmpfs tmpfs /run
# Processes may not live in a cgroup that delegates controllers: use a leaf.
mkdir /sys/fs/cgroup/init && echo $$ >/sys/fs/cgroup/init/cgroup.procs
echo "+memory +pids +cpu" >/sys/fs/cgroup/cgroup.subtree_control
B=/work/berth
# The VM has no nftables: containers get a private network namespace.
printf '[containers]\nnetns = "private"\n' >/tmp/containers.conf
export CONTAINERS_CONF=/tmp/containers.conf
check() { name=$1; shift; if "$@"; then echo "ok $name"; else echo "FAIL $name"; fi; }
$B import -q /work/busybox.tar busybox >/dev/null || echo "FAIL import"
out=$($B run --rm --memory 64m busybox cat /sys/fs/cgroup/memory.max)
check memory-max [ "$out" = 67108864 ]
out=$($B run --rm --cpus 0.5 busybox cat /sys/fs/cgroup/cpu.max)
check cpu-max [ "$out" = "50000 100000" ]
out=$($B run --rm --pids-limit 12 busybox cat /sys/fs/cgroup/pids.max)
check pids-max [ "$out" = 12 ]
$B run --rm --memory 24m busybox sh -c 'x=$(head -c 60000000 /dev/zero | tr "\0" a); echo survived'
check oom-exit-137 [ $? = 137 ]
$B run --rm --pids-limit 8 busybox sh -c 'for i in $(seq 20); do sleep 1 & done; wait' 2>/dev/null
check pids-fork-bomb-contained [ $? != 0 ]
out=$($B run --rm busybox sh -c 'cat /proc/self/cgroup')
check cgroup-namespace [ "$out" = "0::/" ]
# Device nodes: a node made in the container (mknod is allowed) gives no
# access; --device does; the default nodes work (BPF device program).
$B run --rm --cap-add MKNOD busybox sh -c 'mknod /k c 1 11 && echo BERTH-V2-DEVTAG >/k' 2>/dev/null
check v2-device-node-refused [ -z "$(dmesg | grep BERTH-V2-DEVTAG)" ]
$B run --rm --device /dev/kmsg busybox sh -c 'echo BERTH-V2-DEVOK >/dev/kmsg'
check v2-device-flag-allows [ -n "$(dmesg | grep BERTH-V2-DEVOK)" ]
out=$($B run --rm busybox sh -c 'echo ok >/dev/null && head -c1 /dev/zero | wc -c')
check v2-default-devices [ "$out" = 1 ]
check no-cgroups-left [ -z "$(ls -A /sys/fs/cgroup/berth 2>/dev/null | grep berth-)" ]
# Rootless, with a delegated subtree as systemd gives user@UID.service: the
# user owns the directory and its procs/subtree_control/threads files,
# controllers are enabled down to it, and the user's processes live in a
# leaf of it (init.scope).
echo 'u:x:1001:1001::/tmp/u:/bin/sh' >>/etc/passwd
D=/sys/fs/cgroup/user.slice/user-1001.slice/user@1001.service
mkdir -p $D/init.scope
echo "+memory +pids +cpu" >/sys/fs/cgroup/user.slice/cgroup.subtree_control
echo "+memory +pids +cpu" >/sys/fs/cgroup/user.slice/user-1001.slice/cgroup.subtree_control
chown 1001:1001 $D $D/cgroup.procs $D/cgroup.subtree_control $D/cgroup.threads
chown -R 1001:1001 $D/init.scope
mkdir -p /tmp/u/run && chown -R 1001:1001 /tmp/u && chmod 700 /tmp/u/run
asuser() {
	sh -c "echo \$\$ >$D/init.scope/cgroup.procs && exec setpriv --reuid=1001 --regid=1001 --clear-groups \
		env HOME=/tmp/u XDG_RUNTIME_DIR=/tmp/u/run CONTAINERS_CONF=/tmp/containers.conf \"\$@\"" sh "$@"
}
asuser $B import -q /work/busybox.tar busybox >/dev/null || echo "FAIL rootless-import"
out=$(asuser $B run --rm --memory 64m --pids-limit 20 busybox sh -c 'cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max')
check rootless-delegated-limits [ "$(echo $out)" = "67108864 20" ]
asuser $B run --rm --memory 24m busybox sh -c 'x=$(head -c 60000000 /dev/zero | tr "\0" a); echo survived'
check rootless-oom-exit-137 [ $? = 137 ]
id=$(asuser $B run -d --memory 32m busybox sleep 60)
check rootless-detached-in-subtree [ "$(cat $D/berth/berth-$id/memory.max 2>/dev/null)" = 33554432 ]
asuser $B rm -f $id >/dev/null
check rootless-no-cgroups-left [ -z "$(ls -A $D/berth 2>/dev/null | grep berth-)" ]
echo RESULTS-END
poweroff -f
