"""What a user asks for: one validation path for the form, the query string and the REST API."""
