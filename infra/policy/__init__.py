"""Pulumi policy pack for tinyllm: the least-privilege and safety rules, shared with the unit tests."""
