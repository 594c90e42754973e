"""The built-in world (docs/WORLD.md): scenes, renderer, caption grammar, prompt parser and
datasets. The main functions are importable from here; modules load on first use."""

from sora_cli.world.scene import (CAMERAS, COLORS, MOTIONS, SETTINGS, SHAPES, SIZES, SPEEDS,
                                  WEATHERS, Scene, Subject)

_LAZY = {"render_scene": "render", "sample_scene": "sampler", "make_caption": "captions",
         "parse_prompt": "parse", "PromptNotUnderstood": "parse", "WorldClips": "dataset",
         "VideoFolder": "dataset"}

__all__ = ["Scene", "Subject", "SETTINGS", "SHAPES", "COLORS", "SIZES", "MOTIONS", "SPEEDS",
           "WEATHERS", "CAMERAS", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"sora_cli.world.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'sora_cli.world' has no attribute {name!r}")
