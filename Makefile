# The two commands of README.md, plus helpers.
.PHONY: run dev test lint bench

run:  ## run the whole suite (setup, migrations, first admin, services, gateway on :8000)
	./deploy/local/run.sh

dev:  ## the same suite as `run`, each process reloading when its code or mif_common changes
	./deploy/local/dev.sh

test:  ## lint, type-check and run every test
	./deploy/local/test.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy -p mif_common -p mif_auth -p mif_assets -p mif_interventions -p mif_planning -p mif_documents -p mif_notifications -p mif_inventory -p mif_reports -p mif_gateway

bench:  ## gateway overhead benchmark (not part of the tests)
	.venv/bin/python bench/gateway_overhead.py

.PHONY: demo
demo:  ## load a realistic demo data set through the gateway of a running suite (`make run`); DEMO_ARGS=--help
	.venv/bin/python deploy/local/demo.py $(DEMO_ARGS)

.PHONY: catalogue
catalogue:  ## regenerate docs/events/asyncapi.json and catalogue.md from the event models and handlers (check: --check)
	.venv/bin/python -m mif_common.events.catalogue

.PHONY: fuzz
fuzz:  ## schemathesis against every operation through the gateway, long variant (tests/reliability/test_fuzz_e2e.py)
	./deploy/local/fuzz.sh $(FUZZ_ARGS)

.PHONY: chaos
chaos:  ## the fault suite's long variant: more writers, longer load, more kill/disconnect rounds (tests/reliability/test_faults_e2e.py); CHAOS_ARGS=-x
	MIF_CHAOS=1 .venv/bin/pytest -p no:cacheprovider tests/reliability/test_faults_e2e.py $(CHAOS_ARGS)
