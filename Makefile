# Cairn: two commands for a newcomer on a fresh Debian machine.
#   make run    install what is missing, build release, run a local 3-node cluster in the foreground
#   make test   install what is missing, build, run every test
SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)
PORT ?= 7001
DATA_DIR ?= ./cairn-dev

.PHONY: run test build release unit integration lint format bench cluster-bench cluster-loads node-cost rebalance-bench overload-bench clean

run:
	@tools/ensure-deps.sh build
	swift build -c release --product cairn
	@echo "Starting a local 3-node Cairn cluster: clients on 127.0.0.1:$(PORT)-$$(( $(PORT) + 2 )), HTTP on $$(( $(PORT) + 20000 ))-$$(( $(PORT) + 20002 )), data and logs in $(DATA_DIR)."
	@echo "It prints the endpoints once every node is ready. Ctrl-C stops all nodes; 'make run' again resumes the cluster with its data."
	exec .build/release/cairn dev --nodes 3 --port $(PORT) --data-dir $(DATA_DIR)

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

cluster-bench:
	@tools/ensure-deps.sh bench
	swift build -c release --product cairn
	tools/cluster-bench.sh

cluster-loads:
	@tools/ensure-deps.sh bench
	swift build -c release --product cairn
	tools/cluster-loads.sh

node-cost:
	@tools/ensure-deps.sh profile
	swift build -c release --product cairn
	tools/node-cost.sh set 16
	tools/node-cost.sh get 16

rebalance-bench:
	@tools/ensure-deps.sh bench
	swift build -c release --product cairn
	tools/rebalance-bench.sh

overload-bench:
	@tools/ensure-deps.sh bench
	swift build -c release --product cairn
	python3 tools/overload_bench.py

clean:
	rm -rf .build
