"""Tenancy: companies, their people and what they may see.

- ``accounts``: companies (tenants), users, memberships, API tokens.
- ``access``: the one access policy (which invoices, files and exports a member sees).
- ``audit``: the append-only trail of who did what.
- ``quotas``: per-company limits. A company's export archive and its erasure span every context:
  ``core.tenant_data``.
"""
