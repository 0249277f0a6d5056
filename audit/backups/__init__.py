"""Encrypted, signed, restore-tested backups (docs/operations/backup-restore.md).

Governance sits on top of the apps: this package may read billing, payments and security
through their selectors and raise security alerts; the audit log itself (``audit.record``,
the chain) never imports it.

- ``services.create_backup``: pg_dump (custom format) and the media files, each streamed
  through GnuPG to the backup recipients, with a manifest (SHA-256 of every file, row
  counts per table, a sample of documents' hashes, the audit chain's head) signed with
  the audit checkpoint key.
- ``services.restore_backup``: checks the signature and every checksum, then decrypts
  into a given database (refused over a non-empty one without ``replace``).
- ``services.run_restore_test``: restores the newest backup into a scratch database and
  checks it with the restored keys in a separate process (``verify_restored_backup``).
- ``services.export_keys``: the key material, to other recipients.
- ``services.apply_retention``: daily/weekly/monthly, never the newest good backup.
"""
