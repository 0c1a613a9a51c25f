"""The Dramatiq bus: broker factory, publishing, middleware, dead letters."""
