# Convenience targets; the scripts are the source of truth.
#   make deps          install what building and testing needs (Debian, root)
#   make build         bin/kedge (static; KEDGE_ARCH=arm64|armv7 cross-compiles)
#   make test          every test (README's test command)
#   make e2e-chaos     the long edge tests: a 5-minute link cut and a 5-minute
#                      flaky link (KEDGE_CHAOS_DURATION=2m for shorter runs)
#   make e2e-soak      an agent cut off for 2 hours, measured every 10 minutes
#                      (KEDGE_SOAK_DURATION, KEDGE_SOAK_EVERY)
#   make release       dist/: static kedge for amd64, arm64 and armv7, .xz,
#                      sha256 lists, install.sh (three cold builds: ~45 min)
#   make release-test  checks dist/ and runs the ARM binaries under qemu
#   make conformance   the upstream [Conformance] specs on a 2-node cluster,
#                      offline (CONFORMANCE_FOCUS=regex for a subset,
#                      CONFORMANCE_SUBSET=ci for the CI subset)
.PHONY: deps build test e2e-chaos e2e-soak release release-test conformance

deps:
	scripts/deps test release

build:
	scripts/build

test:
	scripts/test

e2e-chaos:
	scripts/e2e-chaos

e2e-soak:
	scripts/e2e-soak

release:
	scripts/release

release-test:
	scripts/release-test

conformance:
	scripts/conformance
