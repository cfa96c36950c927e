"""Mail in: the SMTP gateway (``mailgate.smtp``) and the sweep that queues stored-but-unqueued messages
(``worker.sweep``). IMAP polling will live here too."""
