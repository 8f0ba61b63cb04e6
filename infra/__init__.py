"""Developer tooling around Tailor: the local stack, data generators, importers, deploy config."""
