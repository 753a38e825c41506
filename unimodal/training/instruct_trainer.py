"""stage=instruct: tune the pretrained language model on conversations, loss on the answers only: synthetic ones
with computed answers (``data=synthetic``), or a user's LLaVA-format file (``data=chat``).

Runs after pretraining (``fit_lm``) in the same run folder, or on an earlier run's model (``init_from``). The
pretrained model is kept in ``<run>/lm-pretrain``; the tuned model (LoRA merged) replaces ``<run>/lm``, where
``unimodal.load`` and ``scripts/generate.py`` find it. Checkpoints and logs go to ``<run>/instruct/``, made as in
pretraining (the same loggers, the same safetensors + JSON checkpoint with RNG and data position); a stopped run
resumes there.
"""

from __future__ import annotations

import json
import shutil
import time
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from unimodal.data.instruct import ChatDataset, Edit, make_edits, make_swaps
from unimodal.errors import ConfigError, DataError
from unimodal.model.lm import load_lm, save_lm
from unimodal.model.tuning import add_lora, freeze, trainable_count
from unimodal.run_folder import LM_DIR, PRETRAINED_DIR, VOCAB_FILE, make_codec
from unimodal.training import distributed
from unimodal.training.accelerator import quiet_lightning
from unimodal.training.buckets import LengthBuckets
from unimodal.training.checkpoint_io import SafetensorsCheckpointIO
from unimodal.training.lm_data import ResumableLoader, collate, in_order
from unimodal.training.lm_module import LMModule
from unimodal.training.loggers import build_loggers
from unimodal.training.resume import RngState, prepare_resume, write_run_metrics
from unimodal.training.strategies import global_batch_line, lm_trainer_kwargs, whole_model
from unimodal.training.tokenizer_module import clock_cap
from unimodal.vocab import Vocabulary


def _say(message: str) -> None:
    distributed.say(message)   # rank 0 only


def pretrained_for_instruct(run_dir: Path) -> bool:
    """True once instruction tuning has started here: its pretrained model is kept, pretraining is done."""
    return (run_dir / PRETRAINED_DIR / "config.json").is_file()


def training_edits(cfg: DictConfig, tokens: Any, image_tokenizer: Any, kind: str = "edit") -> dict[int, Edit]:
    """Edited twins (``kind="edit"``) of the first ``instruct.num_edits`` training scenes, or colour-swapped twins
    (``"swap"``) of every training scene that has one (only two-object scenes do: cheap to make them all),
    re-drawn from the data config."""
    from unimodal.data.sources import make_world

    count = min(int(cfg.instruct.num_edits) if kind == "edit" else len(tokens), len(tokens))
    if count <= 0 or cfg.instruct.mix[kind] <= 0:
        return {}
    world = make_world(cfg.data)
    # The train split is world.dataset(num_train, seed): its first `count` scenes are dataset(count, seed).
    scenes = world.dataset(count, seed=int(cfg.data.seed), split="train")
    if [world.caption(s) for s in scenes] != list(tokens.captions[:count]):
        raise DataError("the token cache's captions differ from the scenes of data.seed; delete the cache "
                        f"under {cfg.paths.cache_dir} and rerun")
    started = time.perf_counter()
    if kind == "swap":
        edits = make_swaps(world, scenes, image_tokenizer, held_out=world.held_out)
    else:
        edits = make_edits(world, scenes, image_tokenizer, seed=int(cfg.seed), held_out=world.held_out)
    what = "colour-swapped" if kind == "swap" else "edited"
    _say(f"[instruct] {len(edits)} {what} scenes rendered and encoded in {time.perf_counter() - started:.0f}s")
    return edits


def synthetic_chat_sets(cfg: DictConfig, codec: Any, sets: dict[str, Any],
                        tokenizers: dict[str, Any]) -> tuple[ChatDataset, ChatDataset]:
    """Conversations about the synthetic scenes of the token shards, with computed answers."""
    icfg = cfg.instruct
    text = tokenizers["text"]

    def encode_text(value: str) -> list[int]:
        return text.encode(value)[0]

    edits = training_edits(cfg, sets["train"], tokenizers["image"]) if "image" in tokenizers else {}
    swaps = training_edits(cfg, sets["train"], tokenizers["image"], "swap") if "image" in tokenizers else {}
    mix = OmegaConf.to_container(icfg.mix)
    context, batch = int(cfg.model.context_length), int(icfg.batch_size)
    tasks = list(cfg.modality.tasks)
    train_set = ChatDataset(sets["train"], codec, encode_text, mix, int(icfg.max_turns), context, edits, tasks,
                            float(icfg.cond_drop_prob), seed=int(cfg.seed),
                            length=max(len(sets["train"]), int(icfg.max_steps) * batch), swaps=swaps)
    val_set = ChatDataset(sets["val"], codec, encode_text, mix, int(icfg.max_turns), context, None, tasks,
                          0.0, seed=int(cfg.seed) + 1)
    return train_set, val_set


def user_chat_sets(cfg: DictConfig, codec: Any, tokenizers: dict[str, Any]) -> tuple[Any, Any]:
    """``data=chat``: the user's LLaVA-format conversations; skipped records are named, one per line."""
    from unimodal.data.llava import check_chat_data, read_conversations
    from unimodal.data.user_chat import encode_conversations, split_conversations

    image = tokenizers.get("image")
    size = int(getattr(image, "image_size", cfg.data.image_size))
    conversations, skipped = read_conversations(check_chat_data(cfg.data), size, cfg.data.get("limit"))
    items, origin, too_long = encode_conversations(conversations, codec, tokenizers["text"], image,
                                                   int(cfg.model.context_length))
    skipped += too_long
    for line in skipped:
        _say(f"[data] skipped {line}")
    if not items:
        raise DataError(f"data.path={cfg.data.path}: no conversation fits model.context_length="
                        f"{cfg.model.context_length}")
    train_set, val_set = split_conversations(items, origin)
    _say(f"[data] {len(items)} conversations from {cfg.data.path} ({len(skipped)} skipped): {len(train_set)} train, "
         f"{len(val_set) if val_set is not None else 0} validation")
    return train_set, val_set


def fit_instruct(cfg: DictConfig, vocab: Vocabulary, shapes: dict[str, Any], sets: dict[str, Any],
                 run_dir: Path, tokenizers: dict[str, Any]) -> Path:
    if cfg.data.name not in ("synthetic", "chat"):
        raise ConfigError(f"stage=instruct tunes on synthetic scenes (questions with exact answers) or on your "
                          f"conversations (data=chat); data={cfg.data.name} has neither: use data=synthetic or "
                          f"data=chat data.path=<file.json>")
    icfg = cfg.instruct
    distributed.init_group(float(cfg.trainer.get("timeout_minutes", 60)))   # the ranks' process group, if any
    lm_dir, base_dir = run_dir / LM_DIR, run_dir / PRETRAINED_DIR
    ranks = distributed.current()
    with distributed.rank_zero_first():   # rank 0 keeps the pretrained model; the others then read it
        if ranks.is_zero and not pretrained_for_instruct(run_dir):
            shutil.copytree(lm_dir, base_dir.with_name(PRETRAINED_DIR + ".partial"), dirs_exist_ok=True)
            base_dir.with_name(PRETRAINED_DIR + ".partial").rename(base_dir)

    def tuned() -> tuple[Any, Any, list[str]]:
        """The model to tune, the function that merges its LoRA adapters (None without), the frozen names."""
        torch.manual_seed(int(cfg.seed))   # LoRA's initial weights: the same on every rank
        loaded = load_lm(base_dir, vocab)
        names = freeze(loaded, list(icfg.freeze))
        lora = partial(add_lora, lora_cfg=icfg.lora) if icfg.lora.enabled else None
        if shapes.get("vision"):  # images read as features: projector + LM tune, LoRA on the LM only
            from unimodal.training.vision_stage import tune_vision
            return (*tune_vision(cfg, loaded, lora), names)
        return (*lora(loaded), names) if lora is not None else (loaded, None, names)

    model, merged, frozen = tuned()
    trainable, total = trainable_count(model)
    _say(f"[instruct] tuning {'LoRA r=' + str(icfg.lora.r) if icfg.lora.enabled else 'all weights'}: "
         f"{trainable / 1e6:.2f}M of {total / 1e6:.2f}M parameters train" +
         (f", {len(frozen)} frozen by instruct.freeze" if frozen else ""))

    codec = make_codec({**shapes, "audio_layout": cfg.tokenizer.audio.layout}, vocab)
    if cfg.data.name == "chat":
        train_set, val_set = user_chat_sets(cfg, codec, tokenizers)
    else:
        train_set, val_set = synthetic_chat_sets(cfg, codec, sets, tokenizers)
    batch = min(int(icfg.batch_size), len(train_set))  # a small conversations file: batches of all of it
    pad = partial(collate, pad_id=vocab.pad_id)
    if shapes.get("vision"):  # batches carry the pixels of the images they read as features
        from unimodal.model.vision_input import vision_of
        from unimodal.training.vision_stage import feature_collate
        pad = partial(feature_collate, pad_id=vocab.pad_id, encoder=vision_of(model).encoder)
    train_loader = ResumableLoader(train_set, collate_fn=pad, batch_sampler=LengthBuckets(
        train_set.length_of, len(train_set), batch, seed=int(cfg.seed), num_replicas=ranks.world_size,
        rank=ranks.rank))
    val_loader = (DataLoader(val_set, collate_fn=pad, batch_sampler=in_order(len(val_set), min(batch, len(val_set)),
                                                                              ranks.world_size, ranks.rank))
                  if val_set is not None else None)
    if ranks.world_size > 1:
        torch.manual_seed(int(cfg.seed) + ranks.rank)   # dropout and other draws during training: per rank

    quiet_lightning()
    out_dir = run_dir / "instruct"
    ckpt_dir = out_dir / "checkpoints"
    steps = int(icfg.max_steps)
    # Our own Trainer rather than fit_lm's: other data, another checkpoint folder, and a model that is
    # loaded, frozen or wrapped in LoRA instead of built fresh.
    log_every = int(cfg.lm.log_every_steps)
    resume = prepare_resume(out_dir, bool(cfg.resume), stage="instruct")  # before the CSV logger starts
    accumulate = int(cfg.lm.get("accumulate_grad_batches", 1))
    trainer = L.Trainer(max_steps=steps, max_time=clock_cap(icfg.max_minutes),
                        val_check_interval=min(int(icfg.val_every_steps), steps) * accumulate,  # in batches
                        check_val_every_n_epoch=None,
                        limit_val_batches=8 if val_loader is not None else 0, num_sanity_val_steps=0,
                        callbacks=[RngState(), ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0,
                                                               enable_version_counter=False,
                                                               every_n_train_steps=int(icfg.checkpoint_every_steps))],
                        plugins=[SafetensorsCheckpointIO()],
                        logger=build_loggers(list(cfg.loggers), out_dir, log_every, cfg.wandb,
                                             run_name=f"{run_dir.resolve().name}-instruct"),
                        log_every_n_steps=log_every,
                        enable_progress_bar=bool(cfg.progress), enable_model_summary=False,
                        **lm_trainer_kwargs(cfg, model))
    cap = icfg.max_minutes
    _say(f"[instruct] kinds {train_set.kinds}, {steps} steps" + (f" (clock cap {cap} min)" if cap is not None else "")
         + f"; {global_batch_line(cfg, batch, 'conversations')}")
    started = time.perf_counter()
    trainer.fit(LMModule(model, icfg), train_loader, val_loader, ckpt_path=str(resume) if resume else None)
    trainer.save_checkpoint(ckpt_dir / "last.ckpt")
    seconds = time.perf_counter() - started

    rebuilt: list[Any] = []   # under FSDP: a whole copy on rank 0, with its own merge

    def build() -> Any:
        copy, merge, _ = tuned()
        rebuilt.append(merge)
        return copy

    whole = whole_model(trainer, model, build)   # FSDP: gathered from every rank's shards (all ranks take part)
    if not ranks.is_zero:
        return lm_dir
    merged = rebuilt[-1] if rebuilt else merged
    final = merged() if merged is not None else whole
    partial_dir = run_dir / "lm.partial"
    shutil.rmtree(partial_dir, ignore_errors=True)
    save_lm(final, partial_dir)
    vocab.save(partial_dir / VOCAB_FILE)
    shutil.rmtree(lm_dir, ignore_errors=True)
    partial_dir.rename(lm_dir)   # never a half-written lm/ that looks whole
    summary = {"steps": int(trainer.global_step), "train_seconds": round(seconds, 1),
               "trainable_parameters": trainable, "lora": bool(icfg.lora.enabled), "frozen": frozen,
               **{k: float(v) for k, v in trainer.callback_metrics.items()}}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    write_run_metrics(out_dir)
    _say(f"[instruct] {summary['steps']} steps in {seconds:.0f}s; " +
         ", ".join(f"{k}={v:.3f}" for k, v in summary.items() if "loss" in k) + f"; tuned model -> {lm_dir}")
    _say(f'  ask:  python scripts/generate.py run={run_dir} image=<png> question="how many objects are there?" '
         f"output=text")
    _say(f"  score: python benchmarks/instruct_accuracy.py run={run_dir}")
    return lm_dir
