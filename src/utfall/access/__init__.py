"""Access control, pseudonymisation and the audit log."""
