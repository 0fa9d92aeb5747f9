# picshelf — the commands. `make run` serves on the embedded default (disk
# storage, dev environment); `make test` is what CI runs.

SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run test test-steps lint test-tools unit api config clean-data lint-deploy \
	stack stack-down stack-checks stack-checks-both-ways e2e browser-test load-smoke loadtest bench up down \
	faults cluster cluster-down preview-up preview-down preview-list

## run: serve on http://127.0.0.1:8000 (dev environment, images under data/dev)
run:
	$(CARGO) run --bin picshelf

## test: everything CI checks: formatting, clippy, unit and API tests (disk + Garage),
##       the deployment linters, the retry policy, then on one local stack through
##       nginx: the e2e suite, the browser test, short JMeter and goose runs and
##       two previews; then the short fault run on the clustered stack.
##       Failed API and e2e tests are retried alone (scripts/nextest-retry); any
##       test that passed only on a retry is named FLAKY at the end and in
##       artifacts/flaky.txt.
test:
	@rm -f artifacts/flaky.txt
	@$(MAKE) --no-print-directory test-steps; status=$$?; scripts/flaky-summary; exit $$status

test-steps: lint test-tools
	scripts/rust-tests
	$(MAKE) lint-deploy
	scripts/test-retry-setup
	$(MAKE) stack-checks-both-ways
	scripts/faults --short

# Both ways stack-checks meets a stack: the e2e suite starts and stops its own,
# the rest run against one started beforehand (what `make stack` then
# `make e2e` does on a laptop), which is stopped afterwards whatever happens.
stack-checks-both-ways:
	scripts/stack-checks e2e
	scripts/stack up
	scripts/stack-checks browser jmeter goose preview; status=$$?; scripts/stack down; exit $$status

## lint: rustfmt and clippy (whole workspace), warnings are errors
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## test-tools: Garage, the boto3 auditor, Pillow and exiftool, cached under .cache/ (exiftool from Debian)
test-tools:
	scripts/install-test-tools >/dev/null

unit:
	$(CARGO) nextest run --workspace -E 'not binary_id(picshelf::api) & not binary_id(picshelf-e2e::e2e)'

api: test-tools
	$(CARGO) nextest run -p picshelf --test api

## config: print the effective settings of PICSHELF_ENV (secrets redacted)
config:
	$(CARGO) run -q --bin picshelf -- config

clean-data:
	rm -rf data/

## lint-deploy: compose (docker-compose v2 and v1, dclint), hadolint, nginx -t, nginx behaviour, shellcheck
lint-deploy:
	scripts/lint-deploy

## stack: the compose topology natively on loopback: Garage, prod/dev/test apps, nginx on :18080
stack:
	scripts/stack up

stack-down:
	scripts/stack down

## stack-checks: every check against the local stack (started and stopped unless it is up)
stack-checks:
	scripts/stack-checks

## e2e: the black-box suite through nginx on the local stack
e2e:
	scripts/stack-checks e2e

## browser-test: the page in headless Chromium against its own app (disk storage)
browser-test:
	scripts/browser-test

## load-smoke: short JMeter and goose runs through nginx on the local stack
load-smoke:
	scripts/stack-checks jmeter goose

## loadtest: goose, 100..800 users through nginx (stack in release, rate limit raised); artifacts/loadtest/
loadtest:
	scripts/loadtest

## preview-up / preview-down NAME=pr-42, preview-list: preview environments on the
##         running stack (scripts/preview; README, Preview environments)
preview-up:
	scripts/preview up "$(NAME)"

preview-down:
	scripts/preview down "$(NAME)"

preview-list:
	scripts/preview list

## faults: the clustered stack under load through four faults (node kill, node freeze,
##         replica kill, whole store down); a table per phase, every upload verified,
##         the bucket audited; artifacts/faults/<run>/ (~5 min)
faults:
	scripts/faults

## cluster: the clustered topology natively (3 Garage nodes behind an S3 balancer,
##          2 prod replicas); state in .cache/stack-cluster; stop with cluster-down
cluster:
	PICSHELF_STACK_DIR=$(CURDIR)/.cache/stack-cluster scripts/stack up --cluster

cluster-down:
	PICSHELF_STACK_DIR=$(CURDIR)/.cache/stack-cluster scripts/stack down

## bench: picshelf vs the original Flask service and Garage (S3 and disk, direct and through nginx),
##        memory during a 1 GiB upload, stripping and payload signing on/off, variants; artifacts/bench/bench.md
bench:
	scripts/bench

## up/down: the real deployment, on a host with a Docker engine (see README, Deployment)
up:
	docker compose up -d --build

down:
	docker compose down
