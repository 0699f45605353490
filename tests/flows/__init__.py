"""Tests of the Prefect flows (daily close, retry, operator actions) under a temporary Prefect server."""
