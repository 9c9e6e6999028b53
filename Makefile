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
TEST_DEBS := $(BUILD_DEBS) strace docker-registry skopeo podman runc apache2-utils openssl util-linux iproute2 tar gzip debootstrap qemu-system-x86 kmod cpio fuse-overlayfs nftables passt mariadb-client slirp4netns
# Extra packages for benchmarks (peers run side by side with berth).
BENCH_DEBS := $(TEST_DEBS) bc podman crun runc conmon python3 hyperfine iperf3 apache2-utils slirp4netns

.PHONY: build build-deps test test-deps bench bench-deps lint demo clean fuzz compat

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

# podman's own v4.3.1 system tests against berth, from a directory the
# user gives (never fetched or kept here); not part of `make test`.
compat: build
	@test -n "$(COMPAT_DIR)" || { echo "make compat COMPAT_DIR=/path/to/podman/test/system [COMPAT_FILES='010-images 030-run']"; exit 2; }
	command -v bats >/dev/null || apt-get install -y bats
	compat/run.sh "$(COMPAT_DIR)" $(COMPAT_FILES)

bench: build bench-deps
	bench/pull.sh
	bench/start.sh
	bench/lifecycle.sh
	bench/network.sh
	bench/build.sh
	FILES=10000 BYTES=10000 RUNS=1 bench/build.sh
	bench/push.sh

# Fuzz targets in fuzz/ (cargo-fuzz's layout: reference parsing,
# manifests/indexes/configs, registries.conf, layer unpacking that must
# write nothing outside its dir). cargo-fuzz's default sanitizer needs a
# nightly toolchain, which these machines do not have, so they are built
# here on stable with the same libFuzzer coverage flags cargo-fuzz passes
# (`-s none`), for the host target so build scripts stay uninstrumented.
# FUZZ_SECONDS per target: CI runs a short smoke run of each.
FUZZ_SECONDS ?= 180
FUZZ_TARGETS := reference manifest registries_conf unpack
FUZZ_TRIPLE := $(shell rustc -vV | sed -n 's/^host: //p')
FUZZ_RUSTFLAGS := -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
	-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
	-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks
fuzz: build-deps
	cd fuzz && RUSTFLAGS="$(FUZZ_RUSTFLAGS)" $(CARGO) build --release --target $(FUZZ_TRIPLE) --bins
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus/$$t fuzz/artifacts/$$t; \
		if [ -d fuzz/seeds/$$t ]; then cp -n fuzz/seeds/$$t/* fuzz/corpus/$$t/; fi; \
		echo "fuzzing $$t for $(FUZZ_SECONDS)s"; \
		fuzz/target/$(FUZZ_TRIPLE)/release/$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 \
			-artifact_prefix=fuzz/artifacts/$$t/ fuzz/corpus/$$t >fuzz/artifacts/$$t.log 2>&1 \
			|| { tail -n 40 fuzz/artifacts/$$t.log; echo "fuzz target $$t failed: fuzz/artifacts/$$t"; exit 1; }; \
		grep -E '^#[0-9]+ +DONE' fuzz/artifacts/$$t.log || tail -n 2 fuzz/artifacts/$$t.log; \
	done

demo: build
	scripts/demo.sh $(BERTH)

clean:
	$(CARGO) clean
