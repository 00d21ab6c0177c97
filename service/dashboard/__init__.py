"""The dashboard's static files (HTML, CSS, JavaScript): read-only views of the public API."""
