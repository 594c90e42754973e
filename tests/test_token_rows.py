"""Token tables stored as their trained rows: a bundle keeps only the rows training changed,
the loader regenerates the rest from the seeded draw, and a table that is not that draw is
stored whole."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from sora_cli.bundle import BundleConfig, export_bundle, load_bundle
from sora_cli.errors import SoraError
from sora_cli.nn.text import TextEncoder
from sora_cli.token_rows import base_table, compact, expand, reset_token_tables

from test_bundle import tiny_parts

pytestmark = pytest.mark.usefixtures("one_thread")

TRAINED = [0, 7, 320, 49406, 49407]   # padding, a few words, start and end of text


def trained_like(clip, decay_steps: int = 200):
    """A CLIP whose token table went through what training does to it: every row decayed step
    by step in fp32 (AdamW's decoupled weight decay), a few rows moved by gradients."""
    reset_token_tables(clip)
    w = clip.token_embedding.weight
    with torch.no_grad():
        for _ in range(decay_steps):
            w.mul_(1 - 5e-4 * 0.01)
        w[TRAINED] += torch.randn(len(TRAINED), w.shape[1]) * 0.05
    return clip


def export(folder, clip):
    vae, _, dit = tiny_parts()
    cfg = BundleConfig(name="tok", fps=8.0, frame_size=(32, 64), clip_frames=9)
    return export_bundle(folder, vae, TextEncoder(clip), dit, cfg)


def test_base_table_is_its_own_seeded_draw():
    torch.manual_seed(123)
    a = base_table((50, 8))
    torch.manual_seed(456)                          # the global random state does not move it
    assert torch.equal(a, base_table((50, 8)))
    assert not torch.equal(a, base_table((50, 8), seed=1))
    assert torch.equal(base_table((50, 8), scale=0.5), a * 0.5)
    assert a.std().item() == pytest.approx(0.02, rel=0.2)


def test_bundle_keeps_only_trained_rows_and_loads_them_back(tmp_path):
    _, clip, _ = tiny_parts()
    clip = trained_like(clip)
    table = clip.token_embedding.weight.detach().clone()
    folder = export(tmp_path / "tok", clip)
    stored = load_file(str(folder / "text.safetensors"))
    assert "token_embedding.weight" not in stored
    assert stored["token_embedding.weight.rows"].tolist() == TRAINED
    assert stored["token_embedding.weight.values"].shape == (len(TRAINED), table.shape[1])
    assert stored["token_embedding.weight.base_scale"].item() == pytest.approx((1 - 5e-6) ** 200, rel=1e-4)
    whole = export(tmp_path / "whole", tiny_parts()[1])     # open_clip's own init: stored whole
    assert "token_embedding.weight" in load_file(str(whole / "text.safetensors"))
    assert (folder / "text.safetensors").stat().st_size < (whole / "text.safetensors").stat().st_size / 2

    loaded = load_bundle(folder).text.clip.token_embedding.weight
    want = table.to(torch.bfloat16).float()
    assert torch.equal(loaded[TRAINED], want[TRAINED])        # trained rows: exact
    rest = [i for i in range(table.shape[0]) if i not in TRAINED]
    step = want[rest].abs() * 2.0 ** -7 + 1e-12                # the others: within one bf16 step
    assert bool(((loaded[rest] - want[rest]).abs() <= step).all())
    other = load_bundle(whole).text.clip.token_embedding.weight
    assert torch.equal(other, tiny_parts()[1].token_embedding.weight.detach().to(torch.bfloat16).float())


def test_compact_refuses_tables_that_are_not_the_draw():
    assert compact(torch.randn(100, 16).to(torch.bfloat16)) is None
    table = (base_table((100, 16)) * 0.9).to(torch.bfloat16)
    table[:40] = 1.0                                       # 40% changed: still worth it
    parts = compact(table)
    assert parts["rows"].tolist() == list(range(40))
    back = expand(parts, (100, 16), torch.bfloat16).float()
    assert torch.equal(back[:40], table[:40].float())
    assert bool(((back - table.float()).abs() <= table.float().abs() * 2.0 ** -7).all())
    table[:60] = 1.0                                       # most rows changed: store it whole
    assert compact(table) is None


@pytest.mark.parametrize("damage,message", [
    (lambda s: s.pop("token_embedding.weight.base_scale"), "lacks 'token_embedding.weight.base_scale'"),
    (lambda s: s.__setitem__("token_embedding.weight.rows", torch.tensor([0, 1, 2, 3, 10 ** 6])),
     "row ids outside"),
    (lambda s: s.__setitem__("token_embedding.weight.values", torch.zeros(2, 3, dtype=torch.bfloat16)),
     "5 rows but values of shape [2, 3]"),
])
def test_damaged_compact_table_fails_in_one_line(tmp_path, damage, message):
    folder = export(tmp_path / "tok", trained_like(tiny_parts()[1]))
    state = load_file(str(folder / "text.safetensors"))
    damage(state)
    save_file(state, str(folder / "text.safetensors"))
    with pytest.raises(SoraError) as err:
        load_bundle(folder)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_trained_bundle_stores_the_rows_its_captions_use(tiny_bundle):
    """The CLIP trainer starts from the draw, so a real bundle stores only its words' rows."""
    stored = load_file(str(tiny_bundle / "text.safetensors"))
    rows = stored["token_embedding.weight.rows"]
    b = load_bundle(tiny_bundle)
    ids = b.text.clip.tokenizer(["a red ball bouncing on a beach"])[0]
    used = set(ids[ids != 0].tolist())
    assert 20 < rows.numel() < 2000                       # of 49408
    assert used <= set(rows.tolist())                     # world words were trained
