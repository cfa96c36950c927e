"""Redis loses its data with messages queued and jobs running: every message is final within seconds.

Bounded here (``RECOVERY_MESSAGES``, default 30, the gateway sweeping every 2 s); ``bench/faults.py``
measures the same scenario at the production sweep interval (docs/reliability.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.db import make_engine, make_session_factory, session_scope
from core.tenancy import accounts
from tests.conftest import _base_settings
from tests.reliability.recovery import run_redis_loss
from tests.services import RedisProcess

MESSAGES = int(os.environ.get("RECOVERY_MESSAGES", "30"))
BOUND_SECONDS = 60  # the sweep every 2 s finds the lost jobs; the rest is the workers' processing time

pytestmark = pytest.mark.timeout(600)


@pytest.mark.parametrize("fault", ["flushall", "restart"])
def test_every_message_is_final_soon_after_redis_lost_its_data(db_url: str, tmp_path: Path, fault: str) -> None:
    redis_proc = RedisProcess(tmp_path / "redis")
    redis_proc.start()
    settings = _base_settings(tmp_path / "var", db_url, redis_proc.url)
    settings.storage_dir.mkdir(parents=True)
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        tenant, address = accounts.create_tenant(session, "Rapide SA")
        session.flush()
        tenant_id, recipient = tenant.id, accounts.address_of(address, settings.inbound_domain)
    engine.dispose()
    logs = tmp_path / "logs"
    logs.mkdir()
    try:
        run = run_redis_loss(settings, redis_proc, tenant_id, recipient, logs, messages=MESSAGES,
                             sweep_interval=2, fault=fault, timeout=300)
    finally:
        redis_proc.stop()
    print(f"\n[recovery/{fault}] {run.summary()}")
    assert run.accepted == MESSAGES
    assert run.waiting_at_loss > 0, "the fault met no queued message: nothing was tested"
    assert run.recovery_seconds is not None and run.recovery_seconds < BOUND_SECONDS, run.summary()
    assert not run.lost and not run.doubled and not run.failed, run.summary()
