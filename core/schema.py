"""Every module that declares tables, imported together so that the metadata (and Alembic's
autogenerate) sees the whole schema. An area that adds tables adds its module here."""

import core.models  # noqa: F401
import core.models_profiles  # noqa: F401  (issue 13: issuer profiles learned from validations)
import core.models_templates  # noqa: F401  (issue 4: per-tenant extraction templates)
import core.payables.models  # noqa: F401  (issue 18: approvals, IBAN changes, payment runs)
import core.receivables.summary_models  # noqa: F401
