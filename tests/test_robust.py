"""nb360.robust: FGSM / PGD against torchattacks (when importable) and an independent plain implementation."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from nb360.errors import InputError  # noqa: E402
from nb360.robust import ThreatModel, attack, evaluate_robustness, fgsm, pgd  # noqa: E402

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)



def _torchattacks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # torchattacks 3.5.1 declares torchvision, which cannot be installed beside this torch; it imports without it
        return pytest.importorskip("torchattacks")


class SmallNet(nn.Module):
    def __init__(self, channels: int = 3, classes: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 6, 3, padding=1)
        self.head = nn.Linear(6 * 8 * 8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).flatten(1))


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A small classifier fitted to SYNTHETIC labelled images; returns (model, pixels, normalised inputs, labels)."""
    gen = torch.Generator().manual_seed(0)
    pixels = torch.rand(192, 3, 8, 8, generator=gen)
    labels = (pixels[:, 0, :4].mean((1, 2)) > pixels[:, 1, 4:].mean((1, 2))).long() + 2 * (
        pixels[:, 2].mean((1, 2)) > 0.5).long()
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    x = (pixels - mean) / std
    torch.manual_seed(0)
    model = SmallNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), labels).backward()
        opt.step()
    return model.eval(), pixels, x, labels


def test_fgsm_equals_torchattacks(trained) -> None:
    torchattacks = _torchattacks()
    model, _, x, y = trained
    threat = ThreatModel(8 / 255, "pixel", MEAN, STD)
    atk = torchattacks.FGSM(model, eps=8 / 255)
    atk.set_normalization_used(mean=MEAN, std=STD)  # inputs normalised, attack in [0, 1] pixels
    ref = atk(x, y)
    ours = fgsm(model, x, y, threat)
    assert (ours - ref).abs().max() < 1e-5


def test_pgd_equals_torchattacks_without_random_start_and_agrees_with_it(trained) -> None:
    torchattacks = _torchattacks()
    model, _, x, y = trained
    threat = ThreatModel(8 / 255, "pixel", MEAN, STD)
    atk = torchattacks.PGD(model, eps=8 / 255, alpha=2 / 255, steps=7, random_start=False)
    atk.set_normalization_used(mean=MEAN, std=STD)
    assert (pgd(model, x, y, threat, steps=7, step_size=2 / 255, random_start=False) - atk(x, y)).abs().max() < 1e-5
    # with random starts the draws differ: robust accuracy agrees within tolerance
    torch.manual_seed(1)
    atk = torchattacks.PGD(model, eps=8 / 255, alpha=2 / 255, steps=10, random_start=True)
    atk.set_normalization_used(mean=MEAN, std=STD)
    ref_acc = (model(atk(x, y)).argmax(1) == y).float().mean().item()
    ours_acc = (model(pgd(model, x, y, threat, steps=10, step_size=2 / 255,
                          generator=torch.Generator().manual_seed(2))).argmax(1) == y).float().mean().item()
    clean_acc = (model(x).argmax(1) == y).float().mean().item()
    assert clean_acc > 0.6 and ours_acc < clean_acc - 0.1  # the attack does something
    assert abs(ours_acc - ref_acc) <= 0.06


def plain_pgd_pixels(model: nn.Module, pixels: torch.Tensor, y: torch.Tensor, eps: float, alpha: float,
                     steps: int, start: torch.Tensor) -> torch.Tensor:
    """An independent textbook PGD on [0, 1] pixels with the normalisation inside the model (Madry et al.)."""
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    adv = (pixels + start).clamp(0, 1)
    for _ in range(steps):
        adv = adv.clone().requires_grad_(True)
        loss = nn.functional.cross_entropy(model((adv - mean) / std), y)
        (grad,) = torch.autograd.grad(loss, adv)
        adv = adv.detach() + alpha * grad.sign()
        adv = (pixels + (adv - pixels).clamp(-eps, eps)).clamp(0, 1)
    return adv


def test_pgd_equals_an_independent_implementation_with_the_same_start(trained) -> None:
    model, pixels, x, y = trained
    eps, alpha = 4 / 255, 1 / 255
    gen = torch.Generator().manual_seed(5)
    ours = pgd(model, x, y, ThreatModel(eps, "pixel", MEAN, STD), steps=5, step_size=alpha, generator=gen)
    start = (2 * torch.rand(x.shape, generator=torch.Generator().manual_seed(5)) - 1) * eps  # the same draw
    ref = plain_pgd_pixels(model, pixels, y, eps, alpha, 5, start)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    assert (ours * std + mean - ref).abs().max() < 1e-5


def test_normalised_space_ball_and_box(trained) -> None:
    model, _, x, y = trained
    threat = ThreatModel(0.1)  # normalised units, no box
    x_f = fgsm(model, x, y, threat)
    assert ((x_f - x).abs() - 0.1).abs().max() < 1e-6  # every coordinate moved by exactly ε
    x_rs = fgsm(model, x, y, threat, random_start=True, generator=torch.Generator().manual_seed(0))
    assert (x_rs - x).abs().max() <= 0.1 + 1e-6
    x_p = pgd(model, x, y, threat, steps=3)
    assert (x_p - x).abs().max() <= 0.1 + 1e-6
    boxed = ThreatModel(0.5, clamp=(-0.2, 0.2))
    x_b = pgd(model, x.clamp(-0.2, 0.2), y, boxed, steps=2)
    assert x_b.min() >= -0.2 - 1e-7 and x_b.max() <= 0.2 + 1e-7
    pixel = ThreatModel(8 / 255, "pixel", MEAN, STD)
    delta = fgsm(model, x, y, pixel) - x
    std = torch.tensor(STD).view(1, 3, 1, 1)
    assert ((delta * std).abs() <= 8 / 255 + 1e-6).all()  # ε/std per channel in normalised units
    assert torch.equal(attack("fgsm", model, x, y, pixel), fgsm(model, x, y, pixel))


def test_fgsm_rs_gradient_is_taken_at_the_random_start(trained) -> None:
    model, _, x, y = trained
    threat = ThreatModel(0.05)
    gen_a, gen_b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    ours = fgsm(model, x, y, threat, random_start=True, generator=gen_a)
    start = x + (2 * torch.rand(x.shape, generator=gen_b) - 1) * 0.05
    s = start.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(nn.functional.cross_entropy(model(s), y), s)
    expected = x + (start + 1.25 * 0.05 * grad.sign() - x).clamp(-0.05, 0.05)  # Wong et al.'s fast FGSM
    assert (ours - expected).abs().max() < 1e-6


def test_evaluate_robustness(trained) -> None:
    model, _, x, y = trained
    batches = [(x[:100], y[:100]), (x[100:], y[100:])]
    report = evaluate_robustness(model, batches, ThreatModel(8 / 255, "pixel", MEAN, STD), pgd_steps=5)
    assert report["samples"] == 192
    assert 0 <= report["pgd_accuracy"] <= report["fgsm_accuracy"] + 15 and report["pgd_accuracy"] < report[
        "clean_accuracy"]
    zero = evaluate_robustness(model, batches, ThreatModel(0.0), pgd_steps=2)
    assert zero["fgsm_accuracy"] == zero["clean_accuracy"] == zero["pgd_accuracy"]
    assert model.training is False


def test_threat_model_errors() -> None:
    with pytest.raises(InputError, match="mean and std"):
        ThreatModel(0.1, "pixel")
    with pytest.raises(InputError, match="eps"):
        ThreatModel(-1.0)
    with pytest.raises(InputError, match="space"):
        ThreatModel(0.1, "linf")
    with pytest.raises(InputError, match="channels"):
        ThreatModel(0.1, "pixel", MEAN, STD).scale(torch.zeros(2, 1, 4, 4), 0.1)
    with pytest.raises(InputError, match="attack"):
        attack("cw", nn.Identity(), torch.zeros(1, 3), torch.zeros(1), ThreatModel(0.1))
    with pytest.raises(InputError, match="step"):
        pgd(nn.Identity(), torch.zeros(1, 3), torch.zeros(1), ThreatModel(0.1), steps=0)
