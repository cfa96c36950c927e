"""JSON Schemas (OpenAPI 3.1) of what the serializers of ``dashboard.api`` answer, by component name.

Each one mirrors a serializer (``serializers.py``, ``bank.py``, ``tokens.py``...): the API tests check
real answers against them, so a serializer that changes without its schema fails there.
"""

from __future__ import annotations

import enum
from typing import Any

from core.inbound.addresses import AddressState
from core.models import (
    Direction,
    DocType,
    DocumentStatus,
    InvoiceStatus,
    MatchState,
    MessageSource,
    MessageStatus,
    Role,
    TransactionStatus,
)
from dashboard.api.spec import Schema, ref

ID: Schema = {"type": "integer", "minimum": 1}
TEXT: Schema = {"type": ["string", "null"]}
MONEY: Schema = {"type": ["string", "null"], "pattern": r"^-?[0-9]+\.[0-9]{2}$",
                 "description": "A decimal amount as a string, two decimals."}
DATE: Schema = {"type": ["string", "null"], "format": "date"}
DATETIME: Schema = {"type": ["string", "null"], "format": "date-time"}
OPTIONAL_ID: Schema = {"type": ["integer", "null"], "minimum": 1}
IDS: Schema = {"type": "array", "items": ID}


def one_of(choices: type[enum.StrEnum]) -> Schema:
    return {"type": "string", "enum": [member.value for member in choices]}


def closed(properties: dict[str, Schema], description: str = "") -> Schema:
    """An object with exactly these keys, all present (what a serializer always writes)."""
    body: Schema = {"type": "object", "required": list(properties), "additionalProperties": False,
                    "properties": properties}
    if description:
        body["description"] = description
    return body


FIELDS: dict[str, Schema] = {
    "type": {"type": ["string", "null"], "enum": [*(t.value for t in DocType), None]},
    "number": TEXT, "title": TEXT, "issuer": TEXT,
    "amount": MONEY, "net_amount": MONEY, "tax_amount": MONEY,
    "currency": TEXT, "issue_date": DATE, "due_date": DATE,
}

# Reasons as data (core/reasons.py): ``reason`` is the sentence in the request's language (Accept-Language;
# English by default); the code and its values let a client show it in its own. Code and values are null
# on rows written before codes were stored.
REASON: Schema = {"type": ["string", "null"],
                  "description": "Why it stopped, in the request's language (Accept-Language), English by default."}
REASON_CODE: Schema = {"type": ["string", "null"],
                       "description": "The reason's catalogue template (gettext msgid), placeholders as {name}."}
NESTED_REASON: Schema = {"type": "object", "required": ["code"], "properties": {
    "code": {"type": "string"}, "params": {"type": ["object", "null"]}}}
REASON_PARAMS: Schema = {
    "type": ["object", "null"],
    "additionalProperties": {"oneOf": [{"type": "string"}, NESTED_REASON, {"type": "array", "items": NESTED_REASON}]},
    "description": "The values of the template's {name} placeholders: text, or a reason of its own "
                   "({code, params}), or a list of them (shown joined by \"; \").",
}

MESSAGE: dict[str, Schema] = {
    "id": ID, "status": one_of(MessageStatus), "reason": REASON, "reason_code": REASON_CODE,
    "reason_params": REASON_PARAMS, "sender": TEXT, "recipient": TEXT,
    "subject": TEXT, "received_at": DATETIME, "source": one_of(MessageSource),
    "to_retiring_address": {"type": "boolean"}, "documents": IDS,
}
CLIENT_BALANCE: dict[str, Schema] = {
    "id": ID, "name": {"type": "string"}, "currency": {"type": "string"}, "amount_due": MONEY,
    "overdue": MONEY, "open_invoices": {"type": "integer", "minimum": 0}, "available_credit": MONEY,
    "average_payment_delay_days": {"type": ["number", "null"]},
}

INVOICE: dict[str, Schema] = {
    "id": ID, **FIELDS, "client": TEXT, "client_id": OPTIONAL_ID, "direction": one_of(Direction),
    "status": one_of(InvoiceStatus),
    "amount_paid": MONEY, "paid_at": DATE, "matches": {"type": "array", "items": ref("InvoiceMatch")},
    "file_id": OPTIONAL_ID, "attachments": IDS, "document_id": OPTIONAL_ID, "created_at": DATETIME,
}

SCHEMAS: dict[str, Schema] = {
    "Error": {"type": "object", "required": ["error"], "additionalProperties": False, "properties": {
        "error": {"type": "string", "description": "What went wrong, for a person."},
        "fields": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "Field name -> its problem (422)."},
        "problems": {"type": "array", "items": {"type": "string"},
                     "description": "A refused template source: one message per problem (422)."},
    }},
    "Page": {"type": "object", "required": ["items", "page", "per_page", "total", "pages"], "properties": {
        "items": {"type": "array"}, "page": {"type": "integer", "minimum": 1},
        "per_page": {"type": "integer", "minimum": 1}, "total": {"type": "integer", "minimum": 0},
        "pages": {"type": "integer", "minimum": 0},
    }},
    "Tenant": closed({"id": ID, "name": {"type": "string"}, "inbound_address": TEXT, "legal_name": TEXT,
                      "country": TEXT, "siren": TEXT, "vat_number": TEXT, "iban": TEXT,
                      "approval_mode": {"type": "string", "enum": ["none", "one", "two_above"]},
                      "approval_threshold": MONEY,
                      "fiscal_year_end": {"type": "string", "pattern": "^[0-9]{2}-[0-9]{2}$"},
                      "datev_consultant_number": {"type": ["string", "null"], "pattern": "^[0-9]{4,7}$"},
                      "datev_client_number": {"type": ["string", "null"], "pattern": "^[0-9]{1,5}$"}}),
    "Message": closed(MESSAGE),
    "DuplicateChoice": closed({
        "error": {"type": "string", "description": "Why the document waits for a choice, for a person."},
        "choices": {"type": "array", "items": {"type": "string"},
                    "description": "The actions open now; post one to /documents/{id}/duplicate."},
        "duplicate_of": OPTIONAL_ID, "document": ref("Document"),
    }, "The typed number is an existing invoice's: link, replace or discard."),
    "AssignPair": closed({"file_id": ID, "invoice_id": ID}),
    "BulkResults": closed({
        "items": {"type": "array", "items": closed({
            "id": ID, "ok": {"type": "boolean"},
            "message": {"type": "string", "description": "The outcome, for a person."},
            "invoice_id": OPTIONAL_ID})},
        "done": {"type": "integer", "minimum": 0},
    }, "Each selected document's outcome (issue 17 item 6), in the order given."),
    "PostResults": closed({
        "items": {"type": "array", "items": closed({
            "id": ID, "posted": {"type": "boolean"},
            "reason": {"type": "string", "description": "Why it was not posted (empty when posted)."},
            "errors": {"type": "object", "additionalProperties": {"type": "string"},
                       "description": "The problems to fix, by field."}})},
        "posted": {"type": "integer", "minimum": 0},
    }, "Each selected entry's outcome (bulk posting), in the order given."),
    "AssignProposal": closed({
        "filename": TEXT, "file_id": OPTIONAL_ID, "error": TEXT,
        "found_in": TEXT, "invoices": {"type": "array", "items": closed({
            "id": ID, "number": TEXT, "type": {"type": "string"}})},
    }, "A stored file and the invoices it may belong to (by the number in its name or text)."),
    "Document": closed({
        "id": ID, "status": one_of(DocumentStatus), "reason": REASON, "reason_code": REASON_CODE,
        "reason_params": REASON_PARAMS, "filename": {"type": "string"}, **FIELDS,
        "client": TEXT, "direction": one_of(Direction), "extraction_source": TEXT,
        "field_info": {"type": "object", "description": "Per field: where its value was read, how sure."},
        "duplicate_of": OPTIONAL_ID, "invoice_id": OPTIONAL_ID, "message_id": OPTIONAL_ID,
        "source_id": OPTIONAL_ID,
        "source_pages": {"type": ["array", "null"], "items": {"type": "integer", "minimum": 0}},
        "created_at": DATETIME,
    }),
    "InvoiceMatch": closed({
        "id": ID, "transaction_id": ID, "state": one_of(MatchState), "amount": MONEY, "write_off": MONEY,
        "score": {"type": ["number", "null"]}, "booking_date": DATE,
    }, "A bank match as seen from its invoice."),
    "Invoice": closed(INVOICE),
    "MessageProgress": closed(MESSAGE | {
        "stage": {"type": "string"}, "in_progress": {"type": "boolean"},
        "documents": {"type": "array", "items": ref("Document")},
    }, "A message with its processing stage and its documents in full."),
    "ClientBalance": closed(CLIENT_BALANCE),
    "ClientDetail": closed(CLIENT_BALANCE | {
        "open_invoice_list": {"type": "array", "items": ref("Invoice"), "maxItems": 200}}),
    "Analytics": closed({
        "currency": {"type": "string"}, "today": DATE, "amount_due": MONEY, "overdue": MONEY,
        "dso_days": {"type": ["number", "null"]}, "dso_formula": {"type": "string"},
        "invoiced_last_window": MONEY,
        "ageing": {"type": "array", "items": closed({"bucket": {"type": "string"}, "amount": MONEY})},
        "expected_cash_in_overdue": MONEY,
        "expected_cash_in_weeks": {"type": "array", "items": closed(
            {"week_start": DATE, "week_end": DATE, "amount": MONEY})},
    }),
    "BankAccount": closed({
        "id": ID, "iban": {"type": "string"}, "name": TEXT, "currency": TEXT, "balance": MONEY,
        "balance_date": DATE, "csv_mapping": {"type": ["object", "null"]},
        "journal": {"type": ["string", "null"], "description": "Its bank journal (BQ1, BQ2...), given at its "
                    "first entry."},
        "ledger_account": {"type": ["string", "null"], "description": "Its general-ledger account (512001...)."},
    }),
    "Match": closed({
        "id": ID, "transaction_id": ID, "invoice_id": OPTIONAL_ID, "invoice_number": TEXT, "amount": MONEY,
        "write_off": MONEY, "score": {"type": ["number", "null"]}, "reasons": {"type": "array"},
        "state": one_of(MatchState), "created_by": {"type": ["string", "integer", "null"]},
        "created_at": DATETIME, "decided_at": DATETIME, "undone_at": DATETIME,
    }),
    "Transaction": closed({
        "id": ID, "account_id": ID, "booking_date": DATE, "value_date": DATE, "amount": MONEY,
        "currency": TEXT, "counterparty": TEXT, "iban": TEXT, "remittance": TEXT, "reference": TEXT,
        "pending": {"type": "boolean"}, "category": TEXT, "status": one_of(TransactionStatus),
        "matches": {"type": "array", "items": ref("Match")},
        "unverified": {"type": "boolean", "description": "From a mailed statement not proven to be the bank's: "
                       "never matched automatically, only suggested."},
    }),
    "MatchingRule": closed({
        "id": ID, "name": {"type": "string"}, "counterparty_pattern": TEXT, "text_pattern": TEXT,
        "min_amount": MONEY, "max_amount": MONEY, "category": TEXT,
        "account": {"type": ["string", "null"], "description": "The account its transactions are booked to."},
        "vat_rate": {"type": ["string", "null"], "description": "The VAT rate their amounts include (20, 5.5)."},
    }),
    "StatementImport": closed({
        "statements": {"type": "integer"}, "created": {"type": "integer"}, "duplicates": {"type": "integer"},
        "pending": {"type": "integer"}, "applied": {"type": "integer"}, "suggested": {"type": "integer"},
        "categorised": {"type": "integer"}, "accounts": IDS, "transactions": IDS,
    }),
    "Reconciliation": closed({"transactions": {"type": "integer"}, "applied": {"type": "integer"},
                              "suggested": {"type": "integer"}}),
    "Treasury": closed({
        "accounts": {"type": "array", "items": ref("BankAccount")},
        "positions": {"type": "array", "items": closed({
            "currency": {"type": "string"}, "balance": MONEY, "expected_in": MONEY, "expected_out": MONEY,
            "difference": MONEY, "projected": MONEY, "overdue": MONEY})},
        "movements": {"type": "array", "maxItems": 500, "items": closed({
            "invoice_id": ID, "number": TEXT, "date": DATE, "amount": MONEY, "currency": TEXT})},
        "source": {"type": "string"},
    }),
    "Entry": closed({
        "id": ID, "status": {"type": "string", "enum": ["to_process", "ready", "posted"]},
        "journal": {"type": "string"}, "number": {"type": ["integer", "null"], "description": "EcritureNum"},
        "fiscal_year": {"type": ["integer", "null"]}, "entry_date": DATE, "valid_date": DATE, "label": TEXT,
        "piece_ref": TEXT, "piece_date": DATE, "currency": TEXT, "exchange_rate": TEXT, "invoice_id": OPTIONAL_ID,
        "client_id": OPTIONAL_ID, "direction": TEXT, "reversal_of_id": OPTIONAL_ID,
        "issues": {"type": "array", "items": {"type": "string"}}, "edited": {"type": "boolean"},
        "debit": MONEY, "credit": MONEY,
        "lines": {"type": "array", "items": closed({
            "account": {"type": "string"}, "account_label": TEXT, "aux": TEXT, "aux_label": TEXT, "label": TEXT,
            "debit": MONEY, "credit": MONEY, "vat_rate": TEXT, "amount_currency": MONEY, "currency": TEXT,
            "letter": TEXT, "letter_date": DATE,
        })},
    }, "A journal entry (issue 18); amounts in the company's currency, amount_currency in the document's."),
    "LedgerAccount": closed({
        "id": ID, "number": {"type": "string"}, "label": {"type": "string"}, "is_vat": {"type": "boolean"},
        "vat_rate": TEXT, "active": {"type": "boolean"},
    }),
    "Token": closed({
        "id": ID, "prefix": {"type": "string"}, "label": TEXT, "user": {"type": "string", "format": "email"},
        "state": {"type": "string", "enum": ["active", "expired", "revoked"]}, "created_at": DATETIME,
        "last_used_at": DATETIME, "expires_at": DATETIME, "revoked_at": DATETIME,
    }),
    "Address": closed({
        "id": ID, "address": {"type": "string"}, "state": one_of(AddressState), "created_at": DATETIME,
        "retires_at": DATETIME, "guessable": {"type": "boolean"}, "messages_while_retiring": {"type": "integer"},
        "last_message_while_retiring_at": DATETIME,
    }),
    "Addresses": {"type": "object", "required": ["current", "items"], "properties": {
        "current": TEXT, "items": {"type": "array", "items": ref("Address")},
        "new": {"type": "string", "description": "The address just issued (rotation only)."},
    }},
    "ForwardingCode": closed({
        "id": ID, "provider": TEXT, "code": TEXT, "link": TEXT, "unverified_link": TEXT, "requester": TEXT,
        "sender": TEXT, "sent_at": DATETIME, "received_at": DATETIME, "authenticated": {"type": ["boolean", "null"]},
        "verified": {"type": "boolean"}, "auth_results": {"type": ["object", "string", "null"]},
        "message_id": OPTIONAL_ID,
    }),
    "Mailbox": closed({
        "id": ID, "name": {"type": "string"}, "host": {"type": "string"}, "port": {"type": "integer"},
        "security": {"type": "string"}, "username": {"type": "string"}, "auth": {"type": "string"},
        "has_secret": {"type": "boolean"}, "oauth_provider": TEXT, "oauth_client_id": TEXT,
        "has_refresh_token": {"type": "boolean"}, "folder": TEXT, "processed_folder": TEXT,
        "enabled": {"type": "boolean"}, "last_error": TEXT, "last_error_at": DATETIME,
        "last_success_at": DATETIME, "oauth_connected_at": DATETIME, "oauth_token_expires_at": DATETIME,
        "oauth_refresh_error": TEXT, "oauth_refresh_error_at": DATETIME,
    }, "An IMAP mailbox; secrets are never sent, only whether one is stored. The oauth_ fields: when it was "
       "connected through \"Connect Gmail\" / \"Connect Microsoft 365\", when its current access token expires, "
       "and the provider's last refusal to renew it (cleared by the next success)."),
    "DeadLetter": closed({
        "kind": {"type": "string", "enum": ["message", "document"]}, "id": ID, "message_id": OPTIONAL_ID,
        "label": TEXT, "reason": REASON, "reason_code": REASON_CODE, "reason_params": REASON_PARAMS,
        "failed_at": DATETIME, "attempts": {"type": ["integer", "null"]},
    }),
    "Retried": closed({"messages": IDS, "documents": IDS, "queued": {"type": ["integer", "boolean"]}}),
    "SourceGroups": {"type": "object", "required": ["id", "filename", "page_count", "groups", "boundaries"],
                     "properties": {
        "id": ID, "filename": {"type": "string"}, "page_count": {"type": ["integer", "null"]},
        "message_id": OPTIONAL_ID,
        "groups": {"type": "array", "items": closed({
            "pages": {"type": "array", "items": {"type": "integer", "minimum": 0}}, "document_id": ID,
            "status": one_of(DocumentStatus), "number": TEXT, "locked": {"type": "boolean"}})},
        "boundaries": {"type": "array"},
        "reading": {"type": "array", "items": ID, "description": "Documents read again (PUT only)."},
    }},
    "Template": {"type": "object", "additionalProperties": False,
                 "required": ["id", "name", "issuer", "enabled", "version", "created_by", "created_at",
                              "updated_at"], "properties": {
        "id": ID, "name": {"type": "string"}, "issuer": TEXT, "enabled": {"type": "boolean"},
        "version": {"type": "integer"}, "created_by": {"type": ["string", "integer", "null"]},
        "created_at": DATETIME, "updated_at": DATETIME,
        "source": {"type": "string", "description": "The YAML source (single template answers only)."},
    }},
    "TemplateTrial": {"type": "object", "required": ["document", "others", "matching_others"], "properties": {
        "document": {"oneOf": [ref("DocumentTrial"), {"type": "null"}]},
        "others": {"type": "array", "items": ref("DocumentTrial")},
        "matching_others": {"type": "integer", "minimum": 0},
    }},
    "DocumentTrial": closed({
        "document_id": ID, "filename": {"type": "string"}, "matched": {"type": "boolean"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}}, "error": TEXT,
    }),
    # Issue 17: people and companies.
    "Member": closed({
        "id": ID, "email": {"type": "string", "format": "email"}, "role": one_of(Role),
        "two_factor": {"type": "boolean", "description": "Whether the person logs in with a TOTP code."},
    }, "A person of the company (``id`` is the user's id)."),
    "Invitation": closed({
        "id": ID, "email": {"type": "string", "format": "email"},
        "role": {"type": "string", "enum": ["admin", "accountant", "member"]},
        "state": {"type": "string", "enum": ["pending", "accepted", "revoked", "expired"]},
        "invited_by": TEXT, "created_at": DATETIME, "expires_at": DATETIME,
        "mail": {"type": ["string", "null"], "enum": ["kept", "sent", "failed", None],
                 "description": "POST only: kept (no relay: in the outbox), sent, or failed (see the outbox)."},
    }, "An invitation; its link is only in the mail, never in an answer."),
    "Company": closed({
        "id": ID, "name": {"type": "string"}, "role": one_of(Role), "inbound_address": TEXT,
        "pending_documents": {"type": "integer", "minimum": 0},
        "overdue_invoices": {"type": "integer", "minimum": 0},
        "unmatched_transactions": {"type": "integer", "minimum": 0},
    }, "A company the token's user belongs to, with what waits in it (as that membership may see)."),
}

# Issue 18: suppliers, payables and payment runs (dashboard/api/payables.py).
SUPPLIER: dict[str, Schema] = {
    "id": ID, "name": {"type": "string"}, "iban": TEXT, "currency": {"type": "string"}, "amount_due": MONEY,
    "overdue": MONEY, "open_invoices": {"type": "integer", "minimum": 0},
    "average_payment_delay_days": {"type": ["number", "null"]},
    "iban_change_pending": {"type": "boolean", "description": "A new IBAN waits for an admin's confirmation."},
}
SCHEMAS |= {
    "Supplier": closed(SUPPLIER),
    "SupplierDetail": closed(SUPPLIER | {
        "vat_id": TEXT, "street": TEXT, "postcode": TEXT, "town": TEXT, "country": TEXT,
        "pending_iban": {"oneOf": [{"type": "null"}, closed({"new_iban": {"type": "string"}, "old_iban": TEXT,
                                                             "requested_by": TEXT, "requested_at": DATETIME})]},
        "invoices": {"type": "array", "items": ref("Invoice"), "maxItems": 200},
    }),
    "Payable": closed(INVOICE | {"approval": {
        "type": "string", "enum": ["awaiting_approval", "awaiting_second_approval", "approved"]}},
        "A supplier invoice (an Invoice with direction payable; client names the supplier) and its approval."),
    "PaymentRun": {"type": "object", "additionalProperties": False,
                   "required": ["id", "due_by", "execution_date", "currency", "debtor_iban", "total", "count",
                                "created_by", "created_at", "items"], "properties": {
        "id": ID, "due_by": DATE, "execution_date": DATE, "currency": {"type": "string"},
        "debtor_iban": {"type": "string"}, "total": MONEY, "count": {"type": "integer", "minimum": 1},
        "created_by": TEXT, "created_at": DATETIME,
        "items": {"type": "array", "items": closed({"invoice_id": ID, "supplier": {"type": "string"},
                                                    "iban": {"type": "string"}, "amount": MONEY,
                                                    "end_to_end_id": {"type": "string", "maxLength": 35}})},
        "skipped": {"type": "array", "description": "Invoices left out and why (creation only).",
                    "items": closed({"invoice_id": ID, "reason": {"type": "string"}})},
    }},
}

ROLES: list[str] = [role.value for role in Role]


def components() -> dict[str, Any]:
    return {
        "schemas": SCHEMAS,
        "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "An API token from Settings → API tokens (or `inbox token create`); valid in one "
                           f"company only. Roles: {', '.join(ROLES)} (support staff only read).",
        }},
    }
