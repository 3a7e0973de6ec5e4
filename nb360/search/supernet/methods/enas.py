"""ENAS (Pham et al., ICML 2018) on the NB201 supernet, as AutoDL's NATS-algos search-cell.py runs it.

An LSTM controller (`generic_model.Controller`: 2 layers of 32 units, tanh constant 2.5,
temperature 5; its input, layer-0 weights, embedding and output weights drawn from U(-0.1, 0.1))
samples the six ops edge by edge. The weight step trains the sampled path (controller in eval
mode, no gradient). After each epoch the controller is trained on the validation split
(`train_controller`): 50 updates, each averaging 20 samples; reward = score + 1e-4·entropy
(score: top-1 accuracy in [0, 1] for classification, `paths.batch_score`), baseline = the
sample's score in the first epoch, else b - 0.01·(b - reward) with b the previous epoch's mean
baseline; loss = -log p(arch)·(reward - baseline) / 20 (the entropy term keeps its gradient, as
there), gradients clipped to norm 5, Adam (NAS-Bench-360's algo.sh: lr 1e-3, wd 0, eps 1e-3,
betas (0.5, 0.999)). The genotype: 100 controller samples, each scored on one validation batch,
the best kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ....space import nb201
from ..losses import to_device
from .paths import PathMethod, batch_score, path_of, seeded

if TYPE_CHECKING:
    from ..engine import SupernetSearch

AGGREGATE = 20  # controller_num_aggregate
BASELINE_DECAY = 0.99  # controller_bl_dec
ENTROPY_WEIGHT = 1e-4  # controller_entropy_weight
CONTROLLER_CLIP = 5.0


class Controller(nn.Module):
    """The ENAS LSTM controller over the six NB201 edges."""

    def __init__(self, lstm_size: int = 32, layers: int = 2, tanh_constant: float = 2.5,
                 temperature: float = 5.0) -> None:
        super().__init__()
        self.tanh_constant, self.temperature = tanh_constant, temperature
        self.input_vars = nn.Parameter(torch.empty(1, 1, lstm_size))
        self.w_lstm = nn.LSTM(input_size=lstm_size, hidden_size=lstm_size, num_layers=layers)
        self.w_embd = nn.Embedding(nb201.NUM_OPS, lstm_size)
        self.w_pred = nn.Linear(lstm_size, nb201.NUM_OPS)
        for p in (self.input_vars, self.w_lstm.weight_hh_l0, self.w_lstm.weight_ih_l0, self.w_embd.weight,
                  self.w_pred.weight):
            nn.init.uniform_(p, -0.1, 0.1)

    def forward(self, generator: torch.Generator | None = None, greedy: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, list[int], torch.Tensor]:
        """(Σ log p, Σ entropy, op ids, (6, 5) op probabilities per step) of one sampled (or greedy) architecture."""
        inputs, hidden = self.input_vars, None
        log_probs, entropies, ops, probs_all = [], [], [], []
        for _edge in range(nb201.NUM_EDGES):
            outputs, hidden = self.w_lstm(inputs, hidden)
            logits = self.tanh_constant * torch.tanh(self.w_pred(outputs) / self.temperature)
            log_p = torch.log_softmax(logits.view(-1), dim=-1)
            probs = log_p.exp()
            if greedy:
                op = int(probs.argmax())
            else:
                op = int(torch.multinomial(probs.detach().cpu(), 1, generator=generator))
            ops.append(op)
            log_probs.append(log_p[op])
            entropies.append(-(probs * log_p).sum())
            probs_all.append(probs)
            inputs = self.w_embd(torch.tensor([[op]], device=logits.device))
        return torch.stack(log_probs).sum(), torch.stack(entropies).sum(), ops, torch.stack(probs_all)


class EnasMethod(PathMethod):
    """ENAS: controller-sampled paths for the weights, REINFORCE for the controller after each epoch."""

    name = "enas"

    def __init__(self, engine: SupernetSearch) -> None:
        super().__init__(engine)
        cfg = engine.config
        self.controller = Controller().to(engine.device)
        self.a_opt = torch.optim.Adam(self.controller.parameters(), lr=cfg.arch_lr, betas=cfg.arch_betas,
                                      weight_decay=cfg.arch_weight_decay, eps=cfg.arch_eps)
        self.baseline: float | None = None

    def sample_ops(self, generator: torch.Generator) -> list[int]:
        """One architecture from the controller (eval mode, no gradient)."""
        was = self.controller.training
        self.controller.eval()
        with torch.no_grad():
            ops = self.controller(generator)[2]
        self.controller.train(was)
        return ops

    def train_mix(self) -> Any:
        """The weight step trains a controller-sampled path."""
        return path_of(self.sample_ops(self.generator), self.engine.device)

    def arch_step(self, train_batch: tuple[Any, ...], arch_batch: tuple[Any, ...], lr: float,
                  generator: torch.Generator) -> dict[str, Any]:
        """Nothing per batch: the controller learns after the epoch (`end_epoch`)."""
        return {"objectives": {}, "lambda": {}, "grad_norm": {}}

    def end_epoch(self, epoch: int) -> dict[str, Any]:
        """search-cell.py's `train_controller` on the validation split; the new baseline is the mean baseline."""
        engine, cfg = self.engine, self.engine.config
        generator = seeded(cfg.seed, epoch, 9)  # the controller's samples
        batches = self._validation_batches(seeded(cfg.seed, epoch, 8))
        was = engine.net.training
        engine.net.eval()
        self.controller.train()
        self.a_opt.zero_grad(set_to_none=True)
        prev = self.baseline
        rewards, baselines, losses, scores = [], [], [], []
        try:
            for step in range(cfg.controller_steps * AGGREGATE):
                log_prob, entropy, ops, _ = self.controller(generator)
                batch = to_device(next(batches), engine.device)
                score = torch.tensor(batch_score(engine, path_of(ops, engine.device), batch), device=engine.device)
                reward = score + ENTROPY_WEIGHT * entropy
                baseline = score if prev is None else prev - (1 - BASELINE_DECAY) * (prev - reward)
                loss = -log_prob * (reward - baseline)
                (loss / AGGREGATE).backward()
                rewards.append(float(reward.detach()))
                baselines.append(float(baseline.detach()) if isinstance(baseline, torch.Tensor) else float(baseline))
                losses.append(float(loss.detach()))
                scores.append(float(score))
                if (step + 1) % AGGREGATE == 0:
                    torch.nn.utils.clip_grad_norm_(self.controller.parameters(), CONTROLLER_CLIP)
                    self.a_opt.step()
                    self.a_opt.zero_grad(set_to_none=True)
        finally:
            engine.net.train(was)
        self.baseline = float(np.mean(baselines))
        return {"controller": {"loss": float(np.mean(losses)), "reward": float(np.mean(rewards)),
                               "score": float(np.mean(scores)), "baseline": self.baseline,
                               "updates": cfg.controller_steps}}

    def candidates(self, generator: torch.Generator) -> list[tuple[int, ...]]:
        """eval_candidates architectures sampled from the controller."""
        return [tuple(self.sample_ops(generator)) for _ in range(self.engine.config.eval_candidates)]

    def arch_weights(self) -> Any:
        """The controller's op probabilities along its most likely path (a (6, 5) summary for logs)."""
        with torch.no_grad():
            return self.controller(greedy=True)[3]

    def state_dict(self) -> dict[str, Any]:
        """The controller, its Adam state and the baseline."""
        return {"controller": {k: v.detach().cpu() for k, v in self.controller.state_dict().items()},
                "a_opt": self.a_opt.state_dict(), "baseline": self.baseline}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the controller, Adam and the baseline."""
        self.controller.load_state_dict(state["controller"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.baseline = state["baseline"]
