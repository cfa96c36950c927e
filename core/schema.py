"""Every module that declares tables, imported together so that the metadata (and Alembic's
autogenerate) sees the whole schema. An area that adds tables adds its module here."""

import core.accounting.models  # noqa: F401  (issue 18: chart of accounts, journals, entries, rules)
import core.models  # noqa: F401
import core.models_profiles  # noqa: F401  (issue 13: issuer profiles learned from validations)
import core.models_summaries  # noqa: F401
import core.models_templates  # noqa: F401  (issue 4: per-tenant extraction templates)
import core.outbound.models  # noqa: F401  (issue 17: the outbox)
import core.payables.models  # noqa: F401  (issue 18: approvals, IBAN changes, payment runs)
import core.tenancy.people_models  # noqa: F401  (issue 17: invitations, resets, second factors)

# PostgreSQL-only trigram indexes on expressions (migrations list_search_trgm, search_fold; core/textsearch.py):
# SQLite has no pg_trgm, so the models cannot declare them; autogenerate and the schema test leave them alone.
PG_ONLY_INDEX_SUFFIX = "_trgm"


def include_in_autogenerate(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return not (type_ == "index" and reflected and compare_to is None and (name or "").endswith(PG_ONLY_INDEX_SUFFIX))
