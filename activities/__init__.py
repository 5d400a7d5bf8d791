"""Activities: every side effect the workflows cause (database, gateway, e-mail), one module per kind."""
