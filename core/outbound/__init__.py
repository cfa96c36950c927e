"""Mail the application sends (invitations, password resets): ``mail.send`` through the relay of
``MAIL_RELAY_URL``, or kept in the outbox table when none is configured."""
