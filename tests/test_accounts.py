from core.models import Role
from core.tenancy import accounts
from tests.conftest import INBOUND_DOMAIN


def test_tenant_address_is_matched_case_insensitively_with_tag(session, tenant):
    local, domain = tenant.address.split("@")
    assert accounts.ADDRESS_RE.fullmatch(local) and domain == INBOUND_DOMAIN  # inbox-<13 base32>, issue #8
    for variant in (tenant.address, tenant.address.upper(), f"{local}+factures@{domain}", f"<{tenant.address}>"):
        found = accounts.resolve_recipient(session, variant, INBOUND_DOMAIN)
        assert found is not None and found.id == tenant.tenant.id, variant
    assert accounts.resolve_recipient(session, f"{local}@other.example", INBOUND_DOMAIN) is None
    assert accounts.resolve_recipient(session, f"zzz-zzz@{domain}", INBOUND_DOMAIN) is None


def test_token_identifies_user_and_tenant_and_is_stored_hashed(session, tenant):
    identity = accounts.identify_token(session, tenant.token)
    assert identity is not None
    assert identity.tenant.id == tenant.tenant.id and identity.role is Role.ADMIN
    assert accounts.identify_token(session, tenant.token + "x") is None
    from core.models import ApiToken

    stored = session.query(ApiToken).one()
    assert tenant.token not in (stored.token_hash, stored.prefix)


def test_password_is_hashed_with_argon2(session, tenant):
    assert tenant.admin.password_hash.startswith("$argon2")
    assert accounts.authenticate(session, "ADMIN@acme.example", tenant.password) is not None
    assert accounts.authenticate(session, "admin@acme.example", "wrong password") is None
