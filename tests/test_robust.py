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


# ----------------------------------------------------------------------------- the evaluation's attacks
def _linear_problem(d: int = 4, n: int = 32):
    """A linear 2-class model z = w.x + b (logits [0, z]) and SYNTHETIC inputs with labels."""
    gen = torch.Generator().manual_seed(7)
    w, b = torch.randn(d, generator=gen), torch.randn(1, generator=gen)
    model = nn.Linear(d, 1)
    with torch.no_grad():
        model.weight.copy_(w[None])
        model.bias.copy_(b)

    def logits(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros(len(x), 1), model(x)], dim=1)

    x = torch.randn(n, d, generator=gen)
    y = torch.randint(0, 2, (n,), generator=gen)
    return logits, w, b, x, y


def test_fgsm_on_a_linear_model_equals_the_analytic_worst_case() -> None:
    import itertools

    from nb360.robust import InputThreat

    logits, w, b, x, y = _linear_problem()
    scale = torch.tensor([1.0, 0.5, 2.0, 0.0])  # per-input unit conversion; the last input may not move
    threat = InputThreat(0.3, "model", scale)
    sign = (2 * y - 1).float()  # +1: class 1 wants z large
    analytic = x - 0.3 * sign[:, None] * scale * torch.sign(w)  # argmin over the ball of the margin sign * z
    x_f = fgsm(logits, x, y, threat)
    assert torch.allclose(x_f, analytic, atol=1e-6)
    margin = sign * (x_f @ w + b)
    assert torch.allclose(margin, sign * (x @ w + b) - 0.3 * (scale * w.abs()).sum(), atol=1e-5)
    # no vertex of the box does better (brute force over the 2^4 corners)
    corners = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=4))) * 0.3 * scale
    brute = (sign[:, None] * ((x[:, None, :] + corners[None]) @ w + b)).min(1).values
    assert torch.allclose(margin, brute, atol=1e-5)
    # PGD reaches the same optimum on a linear model: exactly as strong, never weaker
    assert torch.allclose(pgd(logits, x, y, threat, steps=10, random_start=False), analytic, atol=1e-6)


def test_pgd_is_at_least_as_strong_as_fgsm_without_randomness(trained) -> None:
    model, _, x, y = trained
    threat = ThreatModel(8 / 255, "pixel", MEAN, STD)
    ce = nn.functional.cross_entropy
    x_f = fgsm(model, x, y, threat)
    x_p = pgd(model, x, y, threat, steps=10, random_start=False)  # the E2RNAS authors' PGD-10, step 2.5ε/10
    with torch.no_grad():
        acc_f = (model(x_f).argmax(1) == y).float().mean()
        acc_p = (model(x_p).argmax(1) == y).float().mean()
        assert acc_p <= acc_f and ce(model(x_p), y) >= ce(model(x_f), y)
        assert acc_f < (model(x).argmax(1) == y).float().mean()  # both attacks do something


def test_pgd_restarts_keep_the_worst_run_per_sample(trained) -> None:
    model, _, x, y = trained
    threat = ThreatModel(8 / 255, "pixel", MEAN, STD)

    def badness(x_adv: torch.Tensor) -> torch.Tensor:
        out = model(x_adv)
        return (out.argmax(1) != y).float() + nn.functional.cross_entropy(out, y, reduction="none").tanh()

    first = pgd(model, x, y, threat, steps=3, generator=torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(1)
    torch.rand(x.shape, generator=gen)  # the second restart starts from the generator's second draw
    second = pgd(model, x, y, threat, steps=3, generator=gen)
    both = pgd(model, x, y, threat, steps=3, restarts=2, score=badness, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = torch.where((badness(second) > badness(first)).view(-1, 1, 1, 1), second, first)
    assert torch.equal(both, expected) and not torch.equal(first, second)
    with pytest.raises(InputError, match="restarts"):
        pgd(model, x, y, threat, restarts=2, random_start=False, score=badness)


def test_the_evaluation_attacks_equal_torchattacks(trained) -> None:
    """nb360 evaluate's fgsm / pgd (the E2RNAS authors') equal torchattacks exactly; pgd-strong agrees with
    torchattacks' PGD with random start run as restarts (MultiAttack)."""
    torchattacks = _torchattacks()
    from nb360.evaluate.attacks import ATTACKS

    model, _, x, y = trained
    eps = 2 / 255
    threat = ThreatModel(eps, "pixel", MEAN, STD)
    surface = {"fgsm": "FGSM", "pgd": "PGD", "pgd-strong": "PGD"}  # the reference class of every evaluation attack
    for name, cls in surface.items():
        assert hasattr(torchattacks, cls), f"torchattacks lacks {cls}, the oracle of {name}"
    assert set(surface) == set(ATTACKS)
    f, p, s = ATTACKS["fgsm"], ATTACKS["pgd"], ATTACKS["pgd-strong"]
    ref = torchattacks.FGSM(model, eps=eps)
    ref.set_normalization_used(mean=MEAN, std=STD)
    ours = fgsm(model, x, y, threat, step_size=f.step * eps)
    assert (ours - ref(x, y)).abs().max() < 1e-5
    ref = torchattacks.PGD(model, eps=eps, alpha=p.step * eps, steps=p.steps, random_start=p.random_start)
    ref.set_normalization_used(mean=MEAN, std=STD)
    ours = pgd(model, x, y, threat, steps=p.steps, step_size=p.step * eps, random_start=p.random_start)
    assert (ours - ref(x, y)).abs().max() < 1e-5
    # the strong attack: eps 8/255 so that it matters on this small model; random draws differ, accuracies agree
    eps = 8 / 255
    threat = ThreatModel(eps, "pixel", MEAN, STD)
    torch.manual_seed(3)
    runs = []
    for _ in range(s.restarts):
        one = torchattacks.PGD(model, eps=eps, alpha=s.step * eps, steps=s.steps, random_start=True)
        one.set_normalization_used(mean=MEAN, std=STD)
        runs.append(one)
    multi = torchattacks.MultiAttack(runs)
    ref_acc = (model(multi(x, y)).argmax(1) == y).float().mean().item()

    def badness(x_adv: torch.Tensor) -> torch.Tensor:
        return (model(x_adv).argmax(1) != y).float()

    ours_adv = pgd(model, x, y, threat, steps=s.steps, step_size=s.step * eps, random_start=True,
                   restarts=s.restarts, score=badness, generator=torch.Generator().manual_seed(4))
    ours_acc = (model(ours_adv).argmax(1) == y).float().mean().item()
    weak_acc = (model(pgd(model, x, y, threat, steps=p.steps, step_size=p.step * eps, random_start=False))
                .argmax(1) == y).float().mean().item()
    assert abs(ours_acc - ref_acc) <= 0.04 and ours_acc <= weak_acc


def test_a_network_that_ignores_its_input_is_not_perturbed() -> None:
    """E.g. an NB201 cell whose every path to the output is `none`: no gradient, so no perturbation (no crash)."""
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 0, 1])
    constant = nn.Linear(1, 2)
    model = lambda inp: constant(torch.ones(len(inp), 1))  # noqa: E731
    threat = ThreatModel(0.1)
    assert torch.equal(fgsm(model, x, y, threat), x)
    assert torch.equal(pgd(model, x, y, threat, steps=2, random_start=False), x)
    zero = lambda inp: inp.sum() * 0 + torch.zeros(len(inp), 2)  # noqa: E731  (in the graph, gradient 0)
    assert torch.equal(fgsm(zero, x, y, threat), x)
