"""One module per resource; each route validates, authorizes, then calls the application services."""
