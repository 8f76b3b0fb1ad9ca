# make run   — install and start what is needed, then run the controller on manifests/
# make test  — the whole test suite against a real Redis and a real dockerd
SHELL := /bin/bash
.DEFAULT_GOAL := help

help:
	@echo "make run | test | setup | build | bench | clean | stop"

node_modules: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

setup: node_modules
	bash hack/install-deps.sh

build: node_modules
	npx tsc -p tsconfig.json
	chmod +x dist/cli/main.js

run: setup build
	@eval "$$(bash hack/up.sh)" && echo "DOCKER_HOST=$$DOCKER_HOST OZWALD_REDIS_URL=$$OZWALD_REDIS_URL" && \
	  exec node dist/cli/main.js --manifests manifests run

test: setup build
	npx tsc -p tsconfig.test.json
	bash hack/test.sh

# Benchmarks (BENCHMARKS.md): full run, several minutes on the real engine.
bench: setup build
	@eval "$$(bash hack/up.sh --test)" && node hack/bench.mjs --out BENCHMARKS.md

stop:
	bash hack/stop.sh

clean:
	rm -rf dist .tap

.PHONY: help setup build run test bench stop clean
