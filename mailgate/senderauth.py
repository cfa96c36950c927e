"""The gateway's side of sender authentication: evaluate before answering DATA, and only when it matters.

Refusing (``550 5.7.1``) has to happen before the reply to DATA, so the check runs there, but only for a
delivery whose every recipient company chose ``refuse`` (``core.inbound.senderauth``): everybody else's
mail is answered without waiting for DNS, and the worker evaluates it. Which companies refuse is read in
one query and kept ``refresh`` seconds, so a delivery costs no database round trip for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.inbound import senderauth
from core.mail.senderauth import Lookup, budget_seconds
from core.models import MessageSource, Tenant

log = logging.getLogger(__name__)


class SenderScreen:
    def __init__(
        self, session_factory: sessionmaker[Session], *, refresh: float = 30.0, lookup: Lookup | None = None
    ) -> None:
        self.session_factory = session_factory
        self.refresh = refresh
        self.lookup = lookup  # None: core.mail.senderauth.default_lookup() (tests inject theirs)
        self._refusing: frozenset[int] = frozenset()
        self._loaded_at = float("-inf")
        self._lock: asyncio.Lock | None = None
        # Its own threads: a slow DNS server must never hold up storing other messages.
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="smtp-auth")

    def _load(self) -> frozenset[int]:
        with session_scope(self.session_factory) as session:
            ids = session.scalars(select(Tenant.id).where(Tenant.dmarc_action == senderauth.REFUSE))
            return frozenset(ids)

    async def refusing(self) -> frozenset[int]:
        """The companies that refuse mail failing DMARC (at most ``refresh`` seconds old)."""
        if time.monotonic() - self._loaded_at < self.refresh:
            return self._refusing
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if time.monotonic() - self._loaded_at >= self.refresh:
                try:
                    self._refusing = await asyncio.get_running_loop().run_in_executor(self._pool, self._load)
                    self._loaded_at = time.monotonic()
                except Exception as exc:  # the database is down: storing will answer 451 anyway
                    log.warning("could not read the DMARC choices (%s); keeping the last ones", type(exc).__name__)
        return self._refusing

    async def check(
        self, raw: bytes, tenant_ids: list[int], *, peer: str | None, mail_from: str, helo: str | None
    ) -> tuple[str | None, dict[str, Any] | None]:
        """(the SMTP refusal or None, the verdicts to store or None when not evaluated here)."""
        refusing = await self.refusing()
        if not tenant_ids or not all(tenant_id in refusing for tenant_id in tenant_ids):
            return None, None
        budget = budget_seconds()
        try:
            verdicts = await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(self._pool, self._evaluate, raw, peer, mail_from, helo),
                timeout=budget * 2 + 1,  # DNS is bounded by the budget; this bounds DKIM on a huge body too
            )
        except Exception as exc:  # accept: the worker evaluates again, and quarantines at worst
            log.warning("sender authentication at DATA failed (%s): accepted, left to the worker",
                        type(exc).__name__)
            return None, None
        actions = dict.fromkeys(tenant_ids, senderauth.REFUSE)
        refusal = senderauth.gateway_decision(verdicts, actions)
        if refusal is not None and verdicts is not None:
            log.info("refused: failed DMARC for %s (policy %s): peer=%s from=%r spf=%s dkim=%s",
                     verdicts.from_domain, verdicts.dmarc_policy, peer, mail_from, verdicts.spf, verdicts.dkim)
        return refusal, verdicts.as_json() if verdicts is not None else None

    def _evaluate(self, raw: bytes, peer: str | None, mail_from: str, helo: str | None) -> Any:
        return senderauth.verdicts_for(
            raw, source=MessageSource.SMTP.value, peer=peer, mail_from=mail_from, helo=helo, lookup=self.lookup
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
