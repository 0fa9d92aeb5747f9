# picshelf — the commands. `make run` serves on the embedded default (disk
# storage, dev environment); `make test` is what CI runs.

SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run test lint test-tools unit api config clean-data

## run: serve on http://127.0.0.1:8000 (dev environment, images under data/dev)
run:
	$(CARGO) run --bin picshelf

## test: everything CI checks: formatting, clippy, unit and API tests (fs + Garage)
test: lint test-tools
	$(CARGO) test --workspace

## lint: rustfmt and clippy, warnings are errors
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## test-tools: Garage and the boto3 auditor, cached under .cache/
test-tools:
	scripts/install-test-tools >/dev/null

unit:
	$(CARGO) test --lib

api: test-tools
	$(CARGO) test --test api

## config: print the effective settings of PICSHELF_ENV (secrets redacted)
config:
	$(CARGO) run -q --bin picshelf -- config

clean-data:
	rm -rf data/
