# The two commands of the README's quick start.
.PHONY: start test lint

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
