"""Storage: SQLAlchemy Core tables, the repository, filter → SQL, migrations. Knows no HTTP."""
