# Cairn: two commands for a newcomer on a fresh Debian machine.
#   make run    install what is missing, build release, start a node in the foreground
#   make test   install what is missing, build, run every test
SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)
PORT ?= 7379
DATA_DIR ?= ./cairn-data

.PHONY: run test build release unit integration lint format bench clean

run:
	@tools/ensure-deps.sh build
	swift build -c release --product cairn
	@echo "Cairn is starting on 127.0.0.1:$(PORT) (data in $(DATA_DIR)). Connect with: redis-cli -p $(PORT)"
	@echo "Metrics: curl http://127.0.0.1:$$(( $(PORT) + 20000 ))/metrics   Stop: Ctrl-C"
	exec .build/release/cairn server --port $(PORT) --data-dir $(DATA_DIR)

test:
	@tools/ensure-deps.sh test
	$(MAKE) lint
	swift build --build-tests
	$(MAKE) unit
	$(MAKE) integration

build:
	@tools/ensure-deps.sh build
	swift build

release:
	@tools/ensure-deps.sh build
	swift build -c release --product cairn

unit:
	swift test --skip-build

integration:
	CAIRN_REQUIRE_TARGETS=1 python3 -m pytest tests/integration -q -p no:cacheprovider

lint:
	swift format lint --strict -r Sources Tests Package.swift

format:
	swift format -i -r Sources Tests Package.swift

bench:
	@tools/ensure-deps.sh bench
	swift build -c release --product cairn
	tools/bench.sh

clean:
	rm -rf .build
