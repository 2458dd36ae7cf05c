# Convenience targets; the scripts are the source of truth.
#   make build      bin/kedge
#   make test       every test (README's test command)
#   make e2e-chaos  the long edge tests: a 5-minute link cut and a 5-minute
#                   flaky link (KEDGE_CHAOS_DURATION=2m for shorter runs)
.PHONY: build test e2e-chaos

build:
	scripts/build

test:
	scripts/test

e2e-chaos:
	scripts/e2e-chaos
