"""The motion plan: the prompt's motion, by the world's own motion model, drawn into the clip
the sampler predicts part way through (sora_cli/motion_plan.py)."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from sora_cli.motion_plan import latent_times, moved_layout, scene_path, subject_cells
from sora_cli.sampling import sample, velocity
from sora_cli.world.motion import GROW_SCALE, PAN_X, TRAVEL_X, TRAVEL_Y
from sora_cli.world.parse import parse_prompt

from conftest import bundle_with_flow
from test_generate import FAST, env1  # noqa: F401 (fixture)
from test_sampling import Recorder, cond, tiny_dit

pytestmark = pytest.mark.usefixtures("one_thread")


def test_latent_times_are_the_middles_of_the_frames_each_latent_stands_for():
    # 8 fps, 4 frames a latent: latent 0 is frame 0 alone, latent 1 frames 1-4 (middle 2.5)
    assert latent_times(0, 3, 4, 8.0) == [0.0, 2.5 / 8, 6.5 / 8]
    assert latent_times(4, 2, 4, 8.0) == [14.5 / 8, 18.5 / 8]


def path_of(prompt, times=(0.0, 1.0, 2.0)):
    return scene_path(parse_prompt(prompt), list(times), 256, 256)


def test_the_path_follows_the_world_motion_model():
    left = path_of("a red ball moving left on a beach")
    assert [round(x - left[0][0], 3) for x, _, _ in left] == [0, -TRAVEL_X * 128, -TRAVEL_X * 256]
    assert {y for _, y, _ in left} == {left[0][1]} and {s for *_, s in left} == {left[0][2]}
    fast_up = path_of("a blue star quickly rising over the ocean")
    assert fast_up[1][1] - fast_up[0][1] == pytest.approx(-TRAVEL_Y * 256)   # twice as far
    grow = path_of("a green square growing in a desert")
    assert grow[2][2] / grow[0][2] == pytest.approx(GROW_SCALE)
    still = path_of("a red car resting on a city street")
    assert len(set(still)) == 1                                     # planned to stay put
    pan = path_of("a red car resting on a city street as the camera pans left")
    assert pan[2][0] - pan[0][0] == pytest.approx(PAN_X * 256, abs=1)   # whole pixels, the other way


def test_the_first_subject_that_moves_across_the_frame_leads():
    two = path_of("a white bird resting and a red ball moving right on a beach")
    assert two[2][0] - two[0][0] == pytest.approx(TRAVEL_X * 256)


@pytest.mark.parametrize("prompt", ["a red ball bouncing on a beach", "a red star spinning in space",
                                    "a beach", "a red ball bouncing and a blue star resting on a beach"])
def test_no_plan_where_the_dit_draws_the_motion_itself_or_nothing_moves(prompt):
    assert path_of(prompt) is None


def banded(T=4, C=3, h=8, w=8, seed=0):
    """Latents whose background is horizontal bands (each row one value per channel)."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.randn(1, C, 1, h, 1, generator=g)
    return rows.expand(1, C, T, h, w).clone()


def test_subject_cells_stand_out_from_their_row():
    x = banded()[0, :, 0]
    x[:, 3:5, 2:4] += 5.0
    mask, _dev, row = subject_cells(x)
    assert mask.sum() == 4 and mask[3:5, 2:4].all()
    torch.testing.assert_close(row, banded()[0, :, 0, :, 0])


def test_the_subject_of_the_clearest_frame_moves_along_the_path_over_its_background():
    x0 = banded()
    subject = torch.tensor([4.0, -3.0, 5.0])[:, None, None]
    x0[0, :, 1, 3:5, 2:4] += subject                       # frame 1 shows the subject most
    x0[0, :, 2, 6, 6] += 0.5                               # a faint other blob elsewhere
    path = [(16.0 * k, 0.0, 1.0) for k in range(4)]        # one 16-pixel cell a frame to the right
    out = moved_layout(x0, path, cell=16, grow=0)
    bg = banded()
    for k in range(4):
        want = bg[0, :, k].clone()
        dx = k - 1
        want[:, 3:5, 2 + dx:4 + dx] += subject
        torch.testing.assert_close(out[0, :, k], want)
    far = moved_layout(x0, [(16.0 * 5 * k, 0.0, 1.0) for k in range(4)], cell=16, grow=0)
    torch.testing.assert_close(far[0, :, 3], bg[0, :, 3])  # gone off the edge, not wrapped


def test_a_growing_path_scales_the_subject_about_its_centre():
    x0 = banded(T=2, h=12, w=12)
    x0[0, :, 0, 5:7, 5:7] += 4.0
    out = moved_layout(x0, [(96.0, 96.0, 1.0), (96.0, 96.0, 2.0)], cell=16, grow=0)
    cells = subject_cells(out[0, :, 1])[0]
    assert 12 <= int(cells.sum()) <= 20                   # 2x2 cells at twice the size: ~4x4
    ys, xs = torch.nonzero(cells, as_tuple=True)
    assert abs(float(ys.float().mean()) - 5.5) <= 0.5 and abs(float(xs.float().mean()) - 5.5) <= 0.5


def test_relayout_edits_the_prediction_at_the_steps_in_its_window_only():
    dit = tiny_dit().eval()
    shape = (1, 4, 3, 4, 4)
    seen = []

    def note(x0):
        seen.append(x0.clone())
        return x0
    kw = dict(steps=4, guidance=3.0, shift=1.0)            # steps start at 1, .75, .5, .25
    rec = Recorder(dit)
    plain = sample(rec, shape, cond(1), cond(1, seed=2), generator=torch.Generator().manual_seed(5), **kw)
    same = sample(dit, shape, cond(1), cond(1, seed=2), generator=torch.Generator().manual_seed(5),
                  relayout=note, relayout_t=0.8, relayout_min_t=0.5, **kw)
    assert len(seen) == 2                                  # at 0.75 and 0.5
    torch.testing.assert_close(same, plain, atol=1e-5, rtol=1e-5)  # no edit, no change
    # what it is given is the step's clean clip: x - t v, v the guided velocity at t = 0.75
    x = rec.calls[1][0][:1]
    t = torch.full((1, 3), 0.75)
    v = velocity(dit, x, t, cond(1), cond(1, seed=2), 3.0)
    torch.testing.assert_close(seen[0], x - 0.75 * v, atol=1e-5, rtol=1e-5)


def test_relayout_keeps_known_frames_and_its_edit_lasts():
    dit = tiny_dit().eval()
    shape = (1, 4, 3, 4, 4)
    known = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    mask = torch.tensor([[True, False, False]])
    given = []

    def flat(x0):
        given.append(x0.clone())
        return torch.full_like(x0, 0.7)
    out = sample(dit, shape, cond(1), None, known=known, known_mask=mask, steps=8, guidance=1.0,
                 generator=torch.Generator().manual_seed(5), relayout=flat, relayout_t=0.5,
                 relayout_min_t=0.0)
    assert torch.equal(out[:, :, 0], known[:, :, 0])
    assert all(torch.equal(g[:, :, 0], known[:, :, 0]) for g in given)   # held frames as given
    plain = sample(dit, shape, cond(1), None, known=known, known_mask=mask, steps=8, guidance=1.0,
                   generator=torch.Generator().manual_seed(5))
    # every step from 0.5 down lands on the edit's clean clip: the last one ends there
    torch.testing.assert_close(out[:, :, 1:], torch.full_like(out[:, :, 1:], 0.7), atol=1e-4, rtol=0)
    assert not torch.allclose(plain[:, :, 1:], out[:, :, 1:])
    with pytest.raises(ValueError, match="relayout times"):
        sample(dit, shape, cond(1), None, steps=2, relayout=flat, relayout_t=0.3, relayout_min_t=0.5)


@pytest.fixture(scope="module")
def planning_bundle(tiny_bundle, tmp_path_factory):
    # with candidate layouts too (sora_cli/layout_choice.py): the metadata test reads both
    return bundle_with_flow(tiny_bundle, tmp_path_factory.mktemp("planning"), motion_plan_t=0.8,
                            motion_plan_min_t=0.5, candidates=3, choose_t=0.8)


def test_the_pipeline_plans_world_prompts_unless_literal(planning_bundle):
    from sora_cli.pipeline import VideoPipeline

    pipe = VideoPipeline.load(str(planning_bundle), "cpu")
    assert pipe.settings.motion_plan_t == 0.8 and pipe.settings.motion_plan_min_t == 0.5
    prompt = "a red ball moving left on a beach"
    assert pipe.plans_motion(prompt) is not None
    assert pipe.plans_motion("a red ball bouncing on a beach") is None
    assert pipe.plans_motion("a cinematic shot of a dog") is None
    planned = np.concatenate(list(pipe.generate(prompt, 1.0, seed=4)))
    pipe.literal = True
    assert pipe.plans_motion(prompt) is None
    literal = np.concatenate(list(pipe.generate(prompt, 1.0, seed=4)))
    assert planned.shape == literal.shape and not np.array_equal(planned, literal)


def test_generate_records_the_motion_plan_and_the_candidates(sora, planning_bundle, tmp_path, env1):  # noqa: F811
    from sora_cli.video_io import probe

    out = tmp_path / "left.mp4"
    r = sora("generate", "a red ball moving left on a beach", "-o", out, "--model", planning_bundle,
             "--duration", "1", "--seed", "1", *FAST, env=env1)
    assert r.returncode == 0, r.stderr
    assert probe(out).sora["motion_plan"] is True and probe(out).sora["candidates"] == 3
    lit = tmp_path / "literal.mp4"
    r = sora("generate", "a red ball moving left on a beach", "-o", lit, "--model", planning_bundle,
             "--duration", "1", "--seed", "1", "--literal", *FAST, env=env1)
    assert r.returncode == 0, r.stderr
    assert "motion_plan" not in probe(lit).sora and "candidates" not in probe(lit).sora
