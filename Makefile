# Thin wrappers over the scripts the README names, so `make run` and
# `./scripts/run.sh` are the same thing.
.PHONY: run test bench build web fuzz chaos

run:
	scripts/run.sh

test:
	scripts/test.sh

build: web
	mkdir -p bin && CGO_ENABLED=0 go build -o bin/pulse ./cmd/pulse

web:
	web/build.sh

# Benchmarks beside the code they measure; see docs/benchmarks.md for the
# figures and the load tool runs.
bench:
	go test -run '^$$' -bench . -benchtime 2s ./...

fuzz:
	FUZZTIME=60s scripts/test.sh  # a duration: may hit go.dev/issue/75804 on Go 1.26

# Faults injected together under load; prints acknowledged vs counted
# events and fails on any difference (about 2.5 minutes).
chaos:
	scripts/chaos.sh
