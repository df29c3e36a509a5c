"""Domain operations. Each takes a SQLAlchemy Session and a Principal, raises gateway.errors, and never
imports Flask: the native API, the FHIR API and the CLI call the same services."""
