"""Use cases and transactions. Imports domain and storage; knows no transport."""
