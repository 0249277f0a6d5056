"""The customer portal's invoice pages (server-rendered; paying pages live in payments/)."""
