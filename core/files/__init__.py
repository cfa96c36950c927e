"""Durable file storage: a local directory (``storage``) or an S3-compatible object store (``storage_s3``),
behind one interface; keys are per tenant and content-addressed."""
