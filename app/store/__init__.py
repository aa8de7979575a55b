"""CRUD SQL of configuration objects (rules, silences, channels, SLOs), one module each."""
