"""Shared pytest setup: fixtures of the real servers live in fixture_<name>.py beside this file."""
import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

for _name in ("fixture_dns", "fixture_mta", "fixture_nginx", "fixture_socks"):
    try:
        _mod = importlib.import_module(_name)
    except ModuleNotFoundError as e:
        if e.name != _name:
            raise
        continue
    globals().update({k: v for k, v in vars(_mod).items() if not k.startswith("_")})
