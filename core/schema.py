"""Every module that declares tables, imported together so that the metadata (and Alembic's
autogenerate) sees the whole schema. An area that adds tables adds its module here."""

import core.models  # noqa: F401
