# picshelf — the commands. `make run` serves on the embedded default (disk
# storage, dev environment); `make test` is what CI runs.

SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run test lint test-tools unit api config clean-data \
	lint-deploy stack stack-down e2e up down

## run: serve on http://127.0.0.1:8000 (dev environment, images under data/dev)
run:
	$(CARGO) run --bin picshelf

## test: everything CI checks: formatting, clippy, unit and API tests (fs + Garage),
##       the deployment files' linters, and the e2e suite through nginx on the local stack
test: lint test-tools
	$(CARGO) test -p picshelf
	$(MAKE) lint-deploy
	$(MAKE) e2e

## lint: rustfmt and clippy (whole workspace), warnings are errors
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

## lint-deploy: compose (docker-compose v2 and v1, dclint), hadolint, nginx -t, shellcheck, nginx behaviour
lint-deploy:
	scripts/lint-deploy

## stack: the compose topology natively on loopback: Garage, prod/dev/test apps, nginx on :18080
stack:
	scripts/stack up

stack-down:
	scripts/stack down

## e2e: the black-box suite through nginx (starts and stops the stack unless it is up)
e2e:
	scripts/e2e

## up/down: the real deployment, on a host with a Docker engine (see README, Deployment)
up:
	docker compose up -d --build

down:
	docker compose down
