# The two commands of the README. Each bootstraps first (idempotent).
.PHONY: demo test bootstrap

bootstrap:
	./scripts/bootstrap.sh

demo: bootstrap
	.venv/bin/edgeloop demo

test: bootstrap
	.venv/bin/python -m pytest
