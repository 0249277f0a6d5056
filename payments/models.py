"""Payments, the vault and fraud detection arrive with their issues."""
