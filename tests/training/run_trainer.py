"""Run a trainer in this process and SIGKILL it at a chosen moment (the resume tests' subject).

    python run_trainer.py {encoder,transfer} CONFIG.json [--kill save|step --at STEP]

``--kill save``: while checkpoint ``step-AT`` is written, its weights file gets half its bytes and the
process kills itself (what a power cut or the OOM killer leaves). ``--kill step``: inside training step
AT, after its loss was computed and before the optimizer moved, the process kills itself. Without
``--kill`` the run goes to the end (or resumes from the newest complete checkpoint).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

WEIGHTS = {"encoder.safetensors", "lora.safetensors"}


def die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def kill_in_save(at: int) -> None:
    import safetensors.torch as st

    real = st.save_file
    folder = f"step-{at:07d}"

    def save_file(tensors: dict[str, Any], filename: str, metadata: dict[str, str] | None = None) -> None:
        path = Path(filename)
        if path.parent.name == folder and path.name in WEIGHTS:
            data = st.save(tensors, metadata=metadata)
            path.write_bytes(data[: len(data) // 2])
            die()
        real(tensors, filename, metadata=metadata)

    st.save_file = save_file  # the trainers import it at call time


def kill_in_encoder_step(at: int) -> None:
    from megastyle.encode.train import SSCLTrainer

    real = SSCLTrainer.train_step

    def train_step(self: SSCLTrainer, pixels: Any, labels: Any) -> Any:
        if self.step + 1 == at:
            loss_forward = self.loss_fn.forward

            def forward(*args: Any, **kwargs: Any) -> Any:
                loss_forward(*args, **kwargs)
                die()

            self.loss_fn.forward = forward  # type: ignore[method-assign]
        return real(self, pixels, labels)

    SSCLTrainer.train_step = train_step  # type: ignore[method-assign]


def kill_in_transfer_step(at: int) -> None:
    import megastyle.transfer.train as train

    real = train.flow_matching_loss
    calls = 0

    def flow_matching_loss(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        loss = real(*args, **kwargs)
        if calls == at:  # a killed run starts from step 0: call n is step n
            die()
        return loss

    train.flow_matching_loss = flow_matching_loss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("trainer", choices=["encoder", "transfer"])
    parser.add_argument("config", type=Path)
    parser.add_argument("--kill", choices=["save", "step"])
    parser.add_argument("--at", type=int, default=0)
    args = parser.parse_args()
    fields = json.loads(args.config.read_text())
    if args.kill == "save":
        kill_in_save(args.at)
    elif args.kill == "step":
        (kill_in_encoder_step if args.trainer == "encoder" else kill_in_transfer_step)(args.at)
    if args.trainer == "encoder":
        from megastyle.encode.train import train_encoder
        from megastyle.encode.train_config import TrainEncoderConfig

        result = train_encoder(TrainEncoderConfig(**fields))
    else:
        from megastyle.transfer.train import train_transfer
        from megastyle.transfer.train_config import TrainTransferConfig

        result = train_transfer(TrainTransferConfig(**fields))
    import torch.distributed as dist

    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    print(json.dumps({"steps": result.steps, "world": world}), flush=True)


if __name__ == "__main__":
    main()
