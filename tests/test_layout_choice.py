"""Best-of-N starting noises: candidates sampled as one batch, the one whose predicted clip
shows the prompt's subjects kept (sora_cli/layout_choice.py, sampling.sample's candidates)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sora_cli.layout_choice import JUDGED_LATENTS, layout_chooser, subject_presence
from sora_cli.sampling import sample, schedule
from sora_cli.world.parse import parse_prompt
from sora_cli.world.render import render_scene

from conftest import bundle_with_flow
from test_sampling import cond, tiny_dit

pytestmark = pytest.mark.usefixtures("one_thread")


def rendered(prompt, seed=1, frames=9):
    scene = parse_prompt(prompt)
    scene.seed = seed
    return render_scene(scene, (128, 128), frames, 8.0), scene


def test_presence_reads_the_subjects_in_their_colours():
    ball, one = rendered("a red ball resting on a grass field")
    assert subject_presence(ball, one) == pytest.approx(1.0)
    frames, scene = rendered("a red ball resting and a blue star resting on a grass field")
    both = subject_presence(frames, scene)
    assert 0.8 < both <= 1.0        # a star fills less of its extent than half its square
    empty, _ = rendered("a grass field")
    assert subject_presence(empty, scene) == 0.0
    assert subject_presence(ball, scene) == pytest.approx(0.5)     # the star is missing
    wrong, _ = rendered("a yellow ball resting on a grass field")
    assert subject_presence(wrong, one) == 0.0
    assert subject_presence(frames, parse_prompt("a grass field")) == 0.0


def test_presence_grows_with_the_part_of_the_subject_shown():
    frames, scene = rendered("a large red square resting on a grass field")
    half = frames.copy()
    ys, xs = np.nonzero((np.abs(frames[0].astype(int) - (220, 40, 40)).sum(-1) < 60))
    half[:, :, : int(np.percentile(xs, 80))] = frames[:, :, :1]   # all but a fifth painted over
    small = subject_presence(half, scene)
    assert 0 < small < subject_presence(frames, scene)


def test_the_chooser_keeps_the_candidate_whose_subjects_show():
    good, scene = rendered("a red ball resting on a grass field")
    bad, _ = rendered("a grass field")
    seen = []

    def decode(z):
        seen.append(z.shape)
        return good if float(z.mean()) > 0 else bad
    x0 = torch.stack([-torch.ones(2, 5, 2, 2), torch.ones(2, 5, 2, 2), -torch.ones(2, 5, 2, 2)])
    assert layout_chooser(decode, scene)(x0) == 1
    assert seen == [(1, 2, JUDGED_LATENTS, 2, 2)] * 3     # one candidate, its first latents
    assert layout_chooser(lambda z: bad, scene)(x0) == 0    # equals: the first


def test_candidates_run_as_a_batch_until_choose_t_and_the_chosen_one_finishes():
    dit = tiny_dit().eval()
    shape = (1, 4, 3, 4, 4)
    calls = []

    def pick_last(x0):
        calls.append(x0.clone())
        return x0.shape[0] - 1
    out = sample(dit, shape, cond(1), None, steps=8, guidance=1.0, shift=1.0,
                 generator=torch.Generator().manual_seed(5), candidates=3, choose=pick_last,
                 choose_t=0.5)
    assert out.shape == shape and len(calls) == 1 and calls[0].shape == (3,) + shape[1:]
    # the same three noises, each finished alone from its own start: the chosen one matches
    noise = torch.randn((3,) + shape[1:], generator=torch.Generator().manual_seed(5))
    ts = schedule(8, 1.0).tolist()
    for k in range(3):
        x = noise[k:k + 1]
        for t0, t1 in zip(ts[:-1], ts[1:]):
            v = dit(x, torch.full((1, 3), t0), *cond(1))
            if abs(t0 - 0.5) < 1e-6 and k == 2:                  # the step that chooses
                torch.testing.assert_close(x - t0 * v, calls[0][2:3], atol=1e-4, rtol=1e-4)
            x = x + (t1 - t0) * v
        if k == 2:
            torch.testing.assert_close(out, x, atol=1e-4, rtol=1e-4)
        else:
            assert not torch.allclose(out, x, atol=1e-3)
    # the first candidate is the noise a single sample draws: choosing it changes nothing
    single = sample(dit, shape, cond(1), None, steps=8, guidance=1.0, shift=1.0,
                    generator=torch.Generator().manual_seed(5))
    first = sample(dit, shape, cond(1), None, steps=8, guidance=1.0, shift=1.0,
                   generator=torch.Generator().manual_seed(5), candidates=3,
                   choose=lambda x0: 0, choose_t=0.5)
    torch.testing.assert_close(first, single, atol=1e-4, rtol=1e-4)


def test_candidates_are_refused_where_they_cannot_work():
    dit = tiny_dit().eval()
    with pytest.raises(ValueError, match="candidates must be 1 or more"):
        sample(dit, (1, 4, 2, 4, 4), cond(1), None, steps=2, candidates=0)
    with pytest.raises(ValueError, match="a batch of 1"):
        sample(dit, (2, 4, 2, 4, 4), cond(2), None, steps=2, candidates=2, choose=lambda x0: 0)
    with pytest.raises(ValueError, match="picked candidate 5 of 2"):
        sample(dit, (1, 4, 2, 4, 4), cond(1), None, steps=2, candidates=2, choose=lambda x0: 5,
               choose_t=1.0)


@pytest.fixture(scope="module")
def choosing_bundle(tiny_bundle, tmp_path_factory):
    return bundle_with_flow(tiny_bundle, tmp_path_factory.mktemp("choosing"), candidates=3,
                            choose_t=0.8)


def test_the_pipeline_chooses_for_world_prompts_with_subjects_unless_literal(choosing_bundle):
    from sora_cli.pipeline import VideoPipeline

    pipe = VideoPipeline.load(str(choosing_bundle), "cpu")
    assert pipe.settings.candidates == 3 and pipe.settings.choose_t == 0.8
    prompt = "a red ball bouncing on a beach"
    assert pipe.chooses_layout(prompt) is not None
    assert pipe.chooses_layout("a beach") is None                 # nothing to look for
    assert pipe.chooses_layout("a cinematic shot of a dog") is None
    chosen = np.concatenate(list(pipe.generate(prompt, 1.0, seed=4)))
    pipe.literal = True
    assert pipe.chooses_layout(prompt) is None
    literal = np.concatenate(list(pipe.generate(prompt, 1.0, seed=4)))
    assert chosen.shape == literal.shape

