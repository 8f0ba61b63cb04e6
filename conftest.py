"""Test-wide setup. `tailor` is importable because `make venv` installs `shared/` (editable); the
repo root (`tests`, `infra`, `bench`) because pytest puts this file's folder on the path."""


