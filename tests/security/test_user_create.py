"""Finding 11 of issue #14: ``inbox user create`` on an existing e-mail silently reset its password."""

from __future__ import annotations

from flask import Flask
from sqlalchemy.orm import Session

from core.models import Membership
from core.tenancy import accounts
from dashboard.cli import user_create
from tests.conftest import PASSWORD, TenantFixture


def test_user_create_never_resets_an_existing_password_without_reset(
    app: Flask, session: Session, tenant: TenantFixture, other_tenant: TenantFixture
) -> None:
    runner = app.test_cli_runner()
    email = tenant.admin.email
    taken = runner.invoke(user_create, [email.upper(), "--tenant", other_tenant.address, "--password", "attacker-pw-1"])
    assert taken.exit_code == 1 and "already exists" in taken.output and "--reset" in taken.output
    session.expire_all()
    assert accounts.authenticate(session, email, PASSWORD) is not None
    assert accounts.authenticate(session, email, "attacker-pw-1") is None
    assert session.query(Membership).filter_by(user_id=tenant.admin.id, tenant_id=other_tenant.tenant.id).count() == 0

    # The current password adds the known user to another tenant, and changes nothing else.
    added = runner.invoke(user_create, [email, "--tenant", other_tenant.address, "--password", PASSWORD])
    assert added.exit_code == 0, added.output
    session.expire_all()
    assert session.query(Membership).filter_by(user_id=tenant.admin.id, tenant_id=other_tenant.tenant.id).count() == 1

    # --reset is the explicit way to set a new password.
    reset = runner.invoke(user_create, [email, "--tenant", tenant.address, "--role", "admin", "--reset",
                                        "--password", "a new password 2"])
    assert reset.exit_code == 0 and "password reset" in reset.output
    session.expire_all()
    assert accounts.authenticate(session, email, "a new password 2") is not None
    assert accounts.authenticate(session, email, PASSWORD) is None
