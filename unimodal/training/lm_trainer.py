"""Stage 1: fit the language model with Lightning, checkpoint, resume, and export to ``<run>/lm``."""

from __future__ import annotations

import csv
import json
import time
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from unimodal.model.lm import build_lm, count_parameters, save_lm
from unimodal.sequence import SequenceCodec
from unimodal.training.lm_data import TaskBatches, TaskDataset, collate, length_groups
from unimodal.training.lm_module import LMModule
from unimodal.training.tokenizer_module import quiet_lightning
from unimodal.vocab import Vocabulary


def make_codec(vocab: Vocabulary, shapes: dict[str, Any], audio_layout: str) -> SequenceCodec:
    return SequenceCodec(vocab, image_grid=shapes.get("image_grid"), audio_frames=shapes.get("audio_frames"),
                         audio_layout=audio_layout)


def fit_lm(cfg: DictConfig, vocab: Vocabulary, shapes: dict[str, Any], sets: dict[str, Any],
           run_dir: Path) -> Path:
    from unimodal.training.run import trainer_kwargs

    codec = make_codec(vocab, shapes, cfg.tokenizer.audio.layout)
    tasks = list(cfg.modality.tasks)
    context = int(cfg.model.context_length)
    weights = list(cfg.modality.weights) or None
    train_set = TaskDataset(sets["train"], codec, tasks, context, float(cfg.lm.cond_drop_prob), int(cfg.seed))
    val_set = TaskDataset(sets["val"], codec, tasks, context, 0.0, int(cfg.seed))
    pad = partial(collate, pad_id=vocab.pad_id)
    batch = int(cfg.lm.batch_size)
    train_loader = DataLoader(train_set, collate_fn=pad, batch_sampler=TaskBatches(
        len(sets["train"]), len(tasks), batch, weights, seed=int(cfg.seed), groups=length_groups(tasks)))
    if cfg.lm.packing:  # several documents per row instead (validation stays padded: comparable losses)
        from unimodal.training.packing import packed_loader
        train_loader = packed_loader(train_set, batch, weights, int(cfg.seed))
    val_loader = DataLoader(val_set, collate_fn=pad, batch_sampler=TaskBatches(
        len(sets["val"]), len(tasks), batch, shuffle=False))
    from unimodal.model.extend import ALIGN_STAGE, build_aligned_lm, merge_new_rows
    aligning = cfg.stage.name == ALIGN_STAGE  # a pretrained LM, frozen but for the rows of our new tokens
    model = build_aligned_lm(cfg.model, vocab, int(cfg.seed)) if aligning else build_lm(cfg.model, vocab)
    print(f"[stage 1] language model: {count_parameters(model) / 1e6:.2f}M parameters, vocabulary "
          f"{vocab.size} ids, tasks {tasks}", flush=True)
    module = LMModule(model, cfg.lm)
    quiet_lightning()
    ckpt_dir = run_dir / "checkpoints"
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0,
                                 every_n_train_steps=int(cfg.lm.checkpoint_every_steps))
    steps = int(cfg.lm.max_steps)
    trainer = L.Trainer(max_steps=steps, max_time={"minutes": float(cfg.lm.max_minutes)},
                        val_check_interval=min(int(cfg.lm.val_every_steps), steps),
                        check_val_every_n_epoch=None, limit_val_batches=8, num_sanity_val_steps=0,
                        callbacks=[checkpoint],
                        logger=CSVLogger(run_dir, name="logs", version=""), log_every_n_steps=10,
                        enable_progress_bar=bool(cfg.progress), enable_model_summary=False,
                        **trainer_kwargs(cfg.trainer, lm=True))
    last = ckpt_dir / "last.ckpt"
    resume = str(last) if cfg.resume and last.is_file() else None
    if resume:
        print(f"[stage 1] resuming from {last}", flush=True)
    started = time.perf_counter()
    trainer.fit(module, train_loader, val_loader, ckpt_path=resume)
    trainer.save_checkpoint(last)
    seconds = time.perf_counter() - started
    out = run_dir / "lm"
    save_lm(merge_new_rows(model), out)  # align: the new rows merged back into one plain HF model
    vocab.save(out / "vocab.json")  # the checkpoint names the vocabulary it was trained on
    summary = {"steps": int(trainer.global_step), "train_seconds": round(seconds, 1),
               **{k: float(v) for k, v in trainer.callback_metrics.items()}}
    (run_dir / "train_summary.json").write_text(json.dumps(summary, indent=2))
    _copy_metrics(run_dir)
    print(f"[stage 1] {summary['steps']} steps in {seconds:.0f}s; " +
          ", ".join(f"{k}={v:.3f}" for k, v in summary.items() if "loss" in k), flush=True)
    return out


def _copy_metrics(run_dir: Path) -> None:
    source = run_dir / "logs" / "metrics.csv"
    if source.is_file():
        rows = list(csv.reader(source.open()))
        with (run_dir / "metrics.csv").open("w", newline="") as handle:
            csv.writer(handle).writerows(rows)
