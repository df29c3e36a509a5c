"""Background work: Bulk Data export jobs, claimed through the database so that several workers on
several machines can share one PostgreSQL."""
