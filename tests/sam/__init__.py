"""Tests that run the built functions in the real Lambda runtime (SAM CLI + Docker)."""
