# The two commands of the README's quick start.
.PHONY: start test lint reliability

# Set up and start everything on the embedded defaults (SQLite, a private redis-server, ./var).
start:
	@scripts/bootstrap.sh
	@.venv/bin/inbox start

# Set up and run the whole test suite (SQLite and PostgreSQL, real Redis, SMTP, browser).
test:
	@scripts/bootstrap.sh --test
	@.venv/bin/ruff check .
	@TEST_DATABASE_URL=$$(scripts/test-services.sh) .venv/bin/python -m pytest $(PYTEST_ARGS)

lint:
	@.venv/bin/ruff check .

# The fault-injection suite at full size (docs/reliability.md); CI runs it bounded inside `make test`.
reliability:
	@scripts/bootstrap.sh --test
	@RELIABILITY_MESSAGES=$${RELIABILITY_MESSAGES:-1000} RELIABILITY_SEND_SECONDS=$${RELIABILITY_SEND_SECONDS:-120} \
	  MULTIHOST_MESSAGES=$${MULTIHOST_MESSAGES:-1000} \
	  TEST_DATABASE_URL=$$(scripts/test-services.sh) .venv/bin/python -m pytest -q -s tests/reliability
