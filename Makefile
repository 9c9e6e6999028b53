# berth: build, test, benchmark. Every target works on a fresh Debian 12
# machine as root with a Rust toolchain (rustup) installed.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec

CARGO ?= cargo
BERTH := target/release/berth
# Debian packages needed to build berth (libseccomp for the seccomp filter)
# and to run the demo.
BUILD_DEBS := libseccomp-dev pkg-config busybox-static uidmap nftables catatonit
# Debian packages the tests need (installed by `make test-deps`).
TEST_DEBS := $(BUILD_DEBS) docker-registry skopeo apache2-utils openssl util-linux iproute2 tar gzip debootstrap qemu-system-x86 kmod cpio fuse-overlayfs nftables passt mariadb-client slirp4netns
# Extra packages for benchmarks (peers run side by side with berth).
BENCH_DEBS := $(TEST_DEBS) bc podman crun runc conmon python3 hyperfine iperf3 apache2-utils slirp4netns

.PHONY: build build-deps test test-deps bench bench-deps lint demo clean

build: build-deps
	$(CARGO) build --release

# Installs only what is missing, so a second run does nothing.
build-deps:
	@missing=$$(for p in $(BUILD_DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

test-deps:
	@missing=$$(for p in $(TEST_DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

bench-deps:
	@missing=$$(for p in $(BENCH_DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

# Unit tests, then end-to-end tests as root and as an unprivileged user
# against real registries. Skipped tests say why and are counted.
test: test-deps
	@mkdir -p target
	$(CARGO) test --no-fail-fast --all-targets 2>&1 | tee target/test.log
	@passed=$$(grep -Eo '[0-9]+ passed' target/test.log | awk '{s+=$$1} END {print s+0}'); \
	failed=$$(grep -Eo '[0-9]+ failed' target/test.log | awk '{s+=$$1} END {print s+0}'); \
	skipped=$$(grep -c '^BERTH-SKIP' target/test.log || true); \
	grep '^BERTH-SKIP' target/test.log || true; \
	echo "berth: $$((passed - skipped)) passed, $$failed failed, $$skipped skipped"

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

bench: build bench-deps
	bench/pull.sh
	bench/start.sh
	bench/lifecycle.sh
	bench/network.sh

demo: build
	scripts/demo.sh $(BERTH)

clean:
	$(CARGO) clean
