"""Documents: a stored file becomes a reviewed, validated invoice or credit note.

- ``processing``: the worker's steps (a message becomes documents; a document gets its fields extracted).
- ``review``: the review queue, validation into an invoice, and duplicate detection and its choices.
- ``splitting``: several invoices in one PDF; ``assignment``: attaching PDFs to existing invoices.
- ``templates``: each company's invoice2data templates; ``issuer_profiles``: what validations taught.
- ``invoice_edits``: corrections to a validated invoice, with their audit trail.

How fields are read from a file is ``core.extraction`` (text, layout, OCR) and ``core.einvoice`` (XML).
"""
