"""Shared domain of invoice-inbox: configuration, models, storage and services.

Imported by the three processes (mailgate, worker, dashboard); knows no transport.
"""
