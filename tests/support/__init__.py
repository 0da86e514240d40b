"""Test helpers: an SMTP sink and polling waits."""
