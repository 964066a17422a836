"""Local development and test tooling (never deployed: Chalice packages only app.py and chalicelib/)."""
