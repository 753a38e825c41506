"""Stage 1: fit the language model with Lightning, checkpoint, resume, and export to ``<run>/lm``."""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from unimodal.data.mixture import task_weights
from unimodal.model.lm import build_lm, count_parameters, save_lm
from unimodal.run_folder import LM_DIR, VOCAB_FILE, make_codec
from unimodal.training import distributed
from unimodal.training.accelerator import quiet_lightning
from unimodal.training.checkpoint_io import SafetensorsCheckpointIO
from unimodal.training.distributed import say
from unimodal.training.lm_data import ResumableLoader, TaskBatches, TaskDataset, collate, length_groups
from unimodal.training.lm_module import LMModule
from unimodal.training.loggers import build_loggers
from unimodal.training.resume import RngState, prepare_resume, write_run_metrics
from unimodal.training.strategies import global_batch_line, lm_trainer_kwargs, whole_model
from unimodal.training.tokenizer_module import clock_cap
from unimodal.vocab import Vocabulary


def fit_lm(cfg: DictConfig, vocab: Vocabulary, shapes: dict[str, Any], sets: dict[str, Any],
           run_dir: Path) -> Path:
    distributed.init_group(float(cfg.trainer.get("timeout_minutes", 60)))   # the ranks' process group, if any
    codec = make_codec({**shapes, "audio_layout": cfg.tokenizer.audio.layout}, vocab)
    from unimodal.model.extend import ALIGN_STAGE, build_aligned_lm, merge_new_rows
    aligning = cfg.stage.name == ALIGN_STAGE  # a pretrained LM, frozen but for the rows of our new tokens
    features = bool(shapes.get("vision"))     # images read as features (training/vision_stage.py)
    tasks = list(cfg.modality.tasks)
    if aligning and features:  # only the projector trains: only tasks that read an image reach it
        from unimodal.training.vision_stage import align_tasks
        tasks = align_tasks(tasks)
    context = int(cfg.model.context_length)
    weights = task_weights(cfg.modality)  # modality.weights x modality.modality_weights
    if weights and len(weights) != len(tasks):  # align with features keeps some tasks
        weights = [w for t, w in zip(cfg.modality.tasks, weights, strict=True) if t in tasks]
    train_set = TaskDataset(sets["train"], codec, tasks, context, float(cfg.lm.cond_drop_prob), int(cfg.seed))
    val_set = TaskDataset(sets["val"], codec, tasks, context, 0.0, int(cfg.seed))
    train_set.check_fits()
    batch = int(cfg.lm.batch_size)   # per device: every global batch is dealt across the ranks
    ranks = distributed.current()
    deal = {"num_replicas": ranks.world_size, "rank": ranks.rank}

    def build() -> torch.nn.Module:
        # Initial weights from the seed alone (not from how many draws stage 0 made): the same on every rank.
        torch.manual_seed(int(cfg.seed))
        if aligning and features:  # encoder and LM frozen, a fresh projector the only thing that trains
            from unimodal.training.vision_stage import aligned_feature_lm
            return aligned_feature_lm(cfg, vocab, int(cfg.seed))
        return build_aligned_lm(cfg.model, vocab, int(cfg.seed)) if aligning else build_lm(cfg.model, vocab)

    model = build()
    pad = partial(collate, pad_id=vocab.pad_id)
    if features:  # a projector on the LM; batches carry the pixels of the images they read
        from unimodal.training.vision_stage import attach_vision
        pad = attach_vision(cfg, model, run_dir, vocab.pad_id, aligning)
    train_loader = ResumableLoader(train_set, collate_fn=pad, batch_sampler=TaskBatches(
        len(sets["train"]), len(tasks), batch, weights, seed=int(cfg.seed), groups=length_groups(tasks), **deal))
    if cfg.lm.packing:  # several documents per row instead (validation stays padded: comparable losses)
        from unimodal.training.packing import packed_loader
        train_loader = packed_loader(train_set, batch, weights, int(cfg.seed), **deal)
    val_loader = DataLoader(val_set, collate_fn=pad, batch_sampler=TaskBatches(
        len(sets["val"]), len(tasks), batch, shuffle=False, **deal))
    if ranks.world_size > 1:
        torch.manual_seed(int(cfg.seed) + ranks.rank)   # dropout and other draws during training: per rank
    say(f"[stage 1] language model: {count_parameters(model) / 1e6:.2f}M parameters, vocabulary "
        f"{vocab.size} ids, tasks {tasks}")
    say(f"[stage 1] {global_batch_line(cfg, batch, 'rows' if cfg.lm.packing else 'sequences')}")
    module = LMModule(model, cfg.lm, compile=bool(cfg.trainer.compile))
    quiet_lightning()
    ckpt_dir = run_dir / "checkpoints"
    # No version counter: a resumed run keeps writing last.ckpt, never last-v1.ckpt beside a stale one.
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0, enable_version_counter=False,
                                 every_n_train_steps=int(cfg.lm.checkpoint_every_steps))
    resume = prepare_resume(run_dir, bool(cfg.resume))
    steps = int(cfg.lm.max_steps)
    accumulate = int(cfg.lm.get("accumulate_grad_batches", 1))
    trainer = L.Trainer(max_steps=steps, max_time=clock_cap(cfg.lm.max_minutes),
                        val_check_interval=min(int(cfg.lm.val_every_steps), steps) * accumulate,  # in batches
                        check_val_every_n_epoch=None, limit_val_batches=8, num_sanity_val_steps=0,
                        callbacks=[RngState(), checkpoint], plugins=[SafetensorsCheckpointIO()],
                        logger=build_loggers(list(cfg.loggers), run_dir, int(cfg.lm.log_every_steps), cfg.wandb),
                        log_every_n_steps=int(cfg.lm.log_every_steps),
                        enable_progress_bar=bool(cfg.progress), enable_model_summary=False,
                        **lm_trainer_kwargs(cfg, model))
    started = time.perf_counter()
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(resume) if resume else None)
    trainer.save_checkpoint(ckpt_dir / "last.ckpt")
    seconds = time.perf_counter() - started
    out = run_dir / LM_DIR
    whole = whole_model(trainer, model, build)   # FSDP: gathered from every rank's shards (all ranks take part)
    if ranks.is_zero:
        save_lm(merge_new_rows(whole), out)  # align: the new rows merged back into one plain HF model
        vocab.save(out / VOCAB_FILE)  # the checkpoint names the vocabulary it was trained on
        summary_file = run_dir / "train_summary.json"
        # A resumed run that had already reached max_steps trains nothing and logs nothing: keep its last metrics.
        previous = json.loads(summary_file.read_text()) if resume and summary_file.is_file() else {}
        summary = {**previous, "steps": int(trainer.global_step), "train_seconds": round(seconds, 1),
                   **{k: float(v) for k, v in trainer.callback_metrics.items()}}
        summary_file.write_text(json.dumps(summary, indent=2))
        write_run_metrics(run_dir)
        if trainer.global_step < steps:  # only an opt-in lm.max_minutes stops training early
            say(f"[stage 1] lm.max_minutes={cfg.lm.max_minutes} stopped training at {trainer.global_step} of "
                f"{steps} steps: this model depends on the machine's speed (lm.max_minutes=null trains every step)")
        say(f"[stage 1] {summary['steps']} steps in {seconds:.0f}s; " +
            ", ".join(f"{k}={v:.3f}" for k, v in summary.items() if "loss" in k))
    distributed.barrier()   # the export is complete before any rank goes on (instruct reads it)
    return out
