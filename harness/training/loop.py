"""The one training loop, for text and image models alike.

``fit(model, blocks, hyper, ...)`` trains ``model`` with AdamW and honours every
field of ``rules.contract.Hyperparameters`` that concerns training:

- ``learning_rate`` with linear warm-up over ``warmup_ratio`` of the steps, then linear decay to 0;
- ``discriminative_lr_decay``: block i (bottom first, ``n`` blocks) trains at lr / decay**(n - i);
  parameters below the first block (token embeddings) one step lower still; the head at lr;
- ``weight_decay`` (decoupled; not on biases, norms, embeddings of tokens and positions);
- ``unfreeze: gradual`` (ULMFiT): epoch e trains the head and the top e blocks, never below ``floor``;
- ``max_grad_norm`` (0: no clipping), ``l2_sp`` (squared distance to the starting weights of the
  blocks, Li et al. 2018; 0: off);
- ``epochs`` and ``early_stopping_patience`` on validation macro-F1 (0: every epoch runs); the
  weights of the best validation epoch are restored at the end.

Batches come from the caller (``batches(epoch)`` yields whatever ``loss_of`` takes), so
text (length-bucketed token ids) and images (tensors, augmented) share the loop.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Optional

NO_DECAY = ("bias", "LayerNorm", "layer_norm", "norm.", "cls_token", "pos_embed", "position_embeddings",
            "relative_position", "token")


def param_groups(model, blocks: list[list], below: list, lr: float, decay: float, weight_decay: float) -> list:
    """AdamW groups: block i of n at lr / decay**(n - i), ``below`` at lr / decay**(n + 1), the rest
    (the head, adapters outside the blocks) at lr; no weight decay on 1-d parameters and embeddings."""
    n = len(blocks)
    depth = {id(p): n - i for i, b in enumerate(blocks) for p in b}
    depth.update({id(p): n + 1 for p in below})
    groups: dict = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        d = depth.get(id(p), 0)
        plr = lr / (decay ** d) if decay > 1 else lr
        wd = 0.0 if (p.ndim <= 1 or any(k in name for k in NO_DECAY)) else weight_decay
        groups.setdefault((plr, wd), []).append(p)
    return [{"params": ps, "lr": plr, "weight_decay": wd, "initial_lr": plr} for (plr, wd), ps in groups.items()]


def _keep_frozen_norms_still(model) -> None:
    """Batch-norm layers whose weights are frozen keep their running statistics too (eval mode)."""
    from torch.nn.modules.batchnorm import _BatchNorm

    for m in model.modules():
        if isinstance(m, _BatchNorm) and not any(p.requires_grad for p in m.parameters(recurse=False)):
            m.eval()


def fit(model, blocks: list[list], hyper: dict, *, steps_per_epoch: int,
        batches: Callable[[int], Iterable], loss_of: Callable[[object], object],
        validate: Optional[Callable[[], float]] = None, below: list = (), floor: int = 0,
        gradual: bool = False, progress: Optional[Callable[[str], None]] = None, label: str = "") -> list[dict]:
    """Train ``model`` in place; returns the per-epoch curves.

    ``blocks``: the model's layer groups, bottom first, as lists of parameters (what gradual
    unfreezing opens and discriminative rates scale); ``floor``: blocks below it never train;
    ``steps_per_epoch``: the number of batches ``batches(epoch)`` yields; ``validate()``: validation
    macro-F1 of the model as it is now (None: no validation, no early stopping, last weights kept)."""
    import torch

    lr = float(hyper["learning_rate"])
    decay = float(hyper["discriminative_lr_decay"])
    wd = float(hyper["weight_decay"])
    epochs = int(hyper["epochs"])
    patience = int(hyper["early_stopping_patience"])
    max_norm = float(hyper["max_grad_norm"])
    l2_sp = float(hyper["l2_sp"])
    total_steps = max(1, steps_per_epoch * epochs)
    warm = int(float(hyper["warmup_ratio"]) * total_steps)

    def schedule(step):
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total_steps - step) / max(1, total_steps - warm))

    anchors = ([(p, p.detach().clone()) for b in blocks for p in b] + [(p, p.detach().clone()) for p in below]
               if l2_sp > 0 else [])
    n = len(blocks)
    best, best_state, bad, curves, step = -math.inf, None, 0, [], 0
    opt = sched = None
    for epoch in range(epochs):
        if opt is None or gradual:
            if gradual:  # ULMFiT: epoch e trains the head and the top e blocks (never below the floor)
                open_from = max(floor, n - epoch)
                for i, b in enumerate(blocks):
                    for p in b:
                        p.requires_grad_(i >= open_from)
            opt = torch.optim.AdamW(param_groups(model, blocks, list(below), lr, decay, wd))
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s, o=step: schedule(s + o))
        model.train()
        _keep_frozen_norms_still(model)
        trainable = [p for g in opt.param_groups for p in g["params"]]
        total, seen, diverged = 0.0, 0, False
        for batch in batches(epoch):
            opt.zero_grad()
            loss, size = loss_of(batch)
            if anchors:
                loss = loss + l2_sp * sum(((p - a) ** 2).sum() for p, a in anchors if p.requires_grad)
            if not math.isfinite(loss.item()):
                diverged = True
                break
            loss.backward()
            if max_norm > 0:
                torch.nn.utils.clip_grad_norm_(trainable, max_norm)
            opt.step()
            sched.step()
            step += 1
            total += loss.item() * size
            seen += size
        rec = {"epoch": epoch + 1, "train_loss": (total / seen) if seen else float("nan")}
        if diverged:
            rec["diverged"] = True
            curves.append(rec)
            break
        if validate is not None:
            f1v = validate()
            rec["val_macro_f1"] = f1v
            if progress:
                progress(f"{label} epoch {epoch + 1}/{epochs}: val macro-F1 {f1v:.3f}")
            if f1v > best + 1e-6:
                best, bad = f1v, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                bad += 1
        curves.append(rec)
        if validate is not None and patience and bad >= patience:
            rec["early_stopped"] = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return curves
