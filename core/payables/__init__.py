"""Supplier invoices to payment (issue 18, items 1 and 6).

This package owns what happens to a *payable* (an invoice the tenant received from a supplier) after
validation: the suppliers themselves (``suppliers``: list, page, amounts due to them, payment delay,
their IBAN and its audited changes), the approval step (``approval``: none, one approver, a second
approver above an amount), payment runs that produce a SEPA credit-transfer file (``runs``:
pain.001.001.09 through sepaxml, validated against its XSD) and payments marked by hand
(``payments``). Journal entries and accounting exports are ``core.accounting``'s, not this package's.
"""
