"""Transports only: Connect services, the REST API, health and metrics, and their wiring."""
