"""Inbound mail: everything between "a message arrived" and "its files are documents".

- ``intake``: storing a delivery durably before it is acknowledged (SMTP, IMAP, uploads share it).
- ``addresses``: each company's inbound addresses and their rotation.
- ``senders``: the allow-list and the quarantine; ``senderauth``: SPF / DKIM / DMARC verdicts and policy.
- ``forwarding``: Gmail / Outlook forwarding confirmation codes (``core.mail.verification`` recognises them).
- ``mailboxes``: IMAP mailboxes polled for a company, and what was imported from them.
- ``uploads``: files uploaded on the dashboard or the API; ``deadletter``: what failed, and retrying it.
- ``support``: the operator's read-only console over a company's imports (each read audited).

Parsing the bytes of a message (MIME, archives, TNEF, Authentication-Results) is ``core.mail``: pure functions.
"""
