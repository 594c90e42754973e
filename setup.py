"""Packaging beyond pyproject.toml: the checkout's models/ folder ships inside the package as
sora_cli/models/, so a plain `pip install .` finds the default bundle from any folder (an
editable install finds models/ in the checkout itself)."""

from pathlib import Path

from setuptools import find_namespace_packages, setup

MODELS = Path(__file__).parent / "models"
bundles = sorted(f"sora_cli.models.{p.name}" for p in MODELS.glob("*")
                 if (p / "config.json").is_file())

setup(
    packages=find_namespace_packages(include=["sora_cli", "sora_cli.*"],
                                     exclude=["*.__pycache__"]) + bundles,
    package_dir={"sora_cli.models": "models"} if bundles else {},
)
