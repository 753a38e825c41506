"""The config schema: the YAML tree under ``conf/`` is merged onto these dataclasses (:func:`unimodal.config.validate`),
so a mistyped key or a value of the wrong type fails at start with a message naming the key. Quantizer and codec
options stay open dicts: their meaning depends on the ``kind`` selected."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import II

from unimodal.config.vision import EncoderConfig, ProjectorConfig

KNOWN_MEDIA = ("image", "audio", "video")
STRATEGIES = ("auto", "ddp", "fsdp")   # trainer.strategy (unimodal/training/strategies.py)


@dataclass
class AdversarialConfig:
    """Optional PatchGAN loss for image tokenizers (unimodal/tokenizers/losses.py); weight 0 = off."""
    weight: float = 0.0
    start_step: int = 200      # no generator GAN term (and no discriminator update) before this step
    ramp_steps: int = 0        # then the generator term grows linearly to `weight` over this many steps
    channels: int = 32
    layers: int = 2


@dataclass
class TrainBudget:
    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    max_minutes: float | None = None   # opt-in wall-clock cap; None: the step budget alone
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)


@dataclass
class ModalityConfig:
    name: str = "image+audio"
    media: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)   # per task, same order; empty = uniform
    modality_weights: dict[str, float] | None = None   # per modality, times task weights (data/mixture.py)


@dataclass
class TextTokenizerConfig:
    kind: str = "bpe"
    vocab_size: int = 512
    min_frequency: int = 2
    lowercase: bool = True
    path: str | None = None      # hf (tokenizer/text=pretrained): tokenizer folder or hub id
    pad_to: int = 0              # hf: text ids padded to this many (a model's embedding rows); 0 = its own size


@dataclass
class AnyResConfig:
    """tokenizer.image.anyres: images of any aspect ratio as tiles plus a thumbnail (tokenizers/anyres.py)."""
    max_tiles: int | None = None         # null: off (every image one square grid)
    grids: list[list[int]] | None = None  # the [rows, cols] allowed; null: every grid of at most max_tiles tiles


@dataclass
class ImageTokenizerConfig:
    kind: str = "grid2d"
    image_size: int = 32
    channels: int = II("data.channels")   # what the data holds (1 grey, 3 RGB), unless a config sets it
    block_channels: list[int] = field(default_factory=lambda: [16, 32, 32])
    layers_per_block: int = 1
    latent_dim: int = 3
    norm_groups: int = 8
    mid_attention: bool = False
    # Empty: OmegaConf merges a config's dict into the default's keys (fsq `levels` would reach vq).
    quantizer: dict[str, Any] = field(default_factory=dict)
    l1_weight: float = 1.0
    l2_weight: float = 1.0
    # Keys of one kind only (each kind takes those its constructor names: tokenizers.base.constructor_options).
    num_queries: int = 64        # qformer-1d: tokens per image
    query_width: int = 32        # qformer-1d: transformer width
    query_layers: int = 1        # qformer-1d: layers reading patches into queries (and writing back)
    query_heads: int = 2         # qformer-1d
    path: str | None = None      # pretrained: diffusers VQModel folder or hub id
    subfolder: str | None = None  # pretrained
    layout: str = "flat"          # the K residual levels of each cell (rvq) in the LM: flat | delay | coarse_first
    anyres: AnyResConfig = field(default_factory=AnyResConfig)
    train: TrainBudget = field(default_factory=TrainBudget)


@dataclass
class AudioTokenizerConfig:
    kind: str = "encodec"
    sample_rate: int = 16000
    filters: int = 16
    ratios: list[int] = field(default_factory=lambda: [8, 5, 4, 2])
    dimension: int = 64
    n_residual_layers: int = 0
    lstm: int = 0
    num_codebooks: int = 2
    codebook_size: int = 256
    l1_weight: float = 0.1
    mel_weight: float = 1.0
    commitment_weight: float = 1.0
    quantizer_dropout: bool = False
    dead_code_fraction: float | None = None   # re-seed codes used < this x the mean (None: encodec's count < 2)
    causal: bool = False         # SEANet convs padded on the past side only (the pretrained 24 kHz model's)
    norm: str = "weight_norm"    # SEANet's norm: weight_norm | time_group_norm | none ...
    path: str | None = None      # encodec_pretrained: an EnCodec checkpoint file (.th or .safetensors)
    layout: str = "flat"
    train: TrainBudget = field(default_factory=TrainBudget)


@dataclass
class VideoTokenizerConfig:
    """conf/tokenizer/video/*.yaml (unimodal/tokenizers/video.py); each kind takes the keys it names."""
    kind: str = "causal3d"
    num_frames: int = II("data.video_frames")
    fps: float = II("data.video_fps")
    image_size: int = II("data.image_size")
    channels: int = II("data.channels")
    block_channels: list[int] = field(default_factory=lambda: [16, 32, 32])   # causal3d
    layers_per_block: int = 1                  # causal3d
    temporal_downsample: int = 2               # causal3d: 2 ** this in time (4x)
    latent_dim: int = 3                        # causal3d
    norm_groups: int = 8                       # causal3d
    quantizer: dict[str, Any] = field(default_factory=dict)   # causal3d: fsq, lfq, ...
    l1_weight: float = 1.0                     # causal3d
    l2_weight: float = 1.0                     # causal3d
    inflate_init: bool = True                  # causal3d: convs start per-frame (past time taps 0)
    sample_frames: int = 3                     # framewise: frames sampled uniformly from a clip
    image: Any = None                          # framewise: the image tokenizer config (${tokenizer.image})
    train: TrainBudget = field(default_factory=TrainBudget)


@dataclass
class TokenizerGroup:
    text: TextTokenizerConfig = field(default_factory=TextTokenizerConfig)
    image: ImageTokenizerConfig = field(default_factory=ImageTokenizerConfig)
    audio: AudioTokenizerConfig = field(default_factory=AudioTokenizerConfig)
    video: VideoTokenizerConfig = field(default_factory=VideoTokenizerConfig)


@dataclass
class ModelConfig:
    name: str = "small"
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 704
    context_length: int = 256
    dropout: float = 0.0
    media_positions: bool = True  # learned index-in-media-span embedding (unimodal/model/lm.py)
    pretrained: str | None = None  # model=from_pretrained: HF causal LM folder or hub id (stage=align)
    gradient_checkpointing: bool = False  # recompute each decoder layer's activations in the backward pass
    vision_input: str = "tokens"   # how the LM reads an input image: tokens | features (encoder + projector)


@dataclass
class StageConfig:
    name: str = "all"
    train_tokenizers: bool = True
    train_lm: bool = True
    train_instruct: bool = False   # stage=instruct: instruction tuning after pretraining


@dataclass
class StageTraining:
    """What every LM training stage is given (``lm.*`` pretraining, ``instruct.*`` tuning): its budget, the
    optimizer (AdamW; unimodal/training/lm_module.py) and its warm-up and cosine schedule, how often it validates
    and checkpoints, and how often it drops the condition (classifier-free guidance)."""
    max_steps: int = 2500
    max_minutes: float | None = None   # opt-in wall-clock cap; None: the step budget alone
    batch_size: int = 16
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    cond_drop_prob: float = 0.1
    loss_weights: dict[str, float] | None = None   # per target modality (text, image, audio, ...); unlisted: 1
    val_every_steps: int = 500
    checkpoint_every_steps: int = 250


@dataclass
class LMTrainConfig(StageTraining):
    packing: bool = False      # several documents per row, attention kept inside each (training/packing.py)
    log_every_steps: int = 10
    accumulate_grad_batches: int = 1   # batches per optimizer step (LM and instruct stages); steps count updates


@dataclass
class WandbConfig:
    project: str = "unimodal"
    offline: bool = True       # write under <run>/wandb without network; `wandb sync` uploads later


@dataclass
class InstructMix:
    """Weights of the instruction kinds (unimodal/data/instruct.py); kinds a run cannot ask are skipped."""
    count: float = 1.0
    colour: float = 1.0
    shape: float = 1.5
    describe: float = 1.0
    edit: float = 0.1
    sound: float = 1.0
    compare: float = 0.1
    paired: float = 0.2
    swap: float = 0.3          # "describe this image, then draw it with the colours swapped": text, then image


@dataclass
class LoraSettings:
    enabled: bool = False
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                                                "gate_proj", "up_proj", "down_proj"])


@dataclass
class InstructConfig(StageTraining):
    """stage=instruct: tuning on synthetic conversations (unimodal/training/instruct_trainer.py); its
    ``cond_drop_prob`` applies to the mixed-in paired samples."""
    max_steps: int = 600         # the defaults that differ from pretraining's
    batch_size: int = 16
    warmup_steps: int = 20
    val_every_steps: int = 120
    max_turns: int = 4           # question/answer turns per conversation (1..max_turns)
    num_edits: int = 1000        # training scenes given an edited twin (rendered and encoded up front)
    mix: InstructMix = field(default_factory=InstructMix)
    freeze: list[str] = field(default_factory=list)   # parameter-name patterns (fnmatch) kept frozen
    lora: LoraSettings = field(default_factory=LoraSettings)


@dataclass
class DataConfig:
    """Every source's keys (conf/data/*.yaml); a source ignores the keys of the others."""
    name: str = "synthetic"
    num_train: int = 6000       # caps on each split (a source may hold fewer)
    num_val: int = 200
    num_test: int = 500
    seed: int = 0
    image_size: int = 32
    channels: int = 3           # 1 = grey, 3 = RGB; images are converted to it and the image tokenizer takes it
    anyres: Any = II("tokenizer.image.anyres")   # follows it: when on, image sources keep each aspect ratio
    # synthetic world
    sample_rate: int = 16000
    audio_seconds: float = 0.8
    max_objects: int = 3
    single_object_prob: float = 0.5
    held_out: list[list[str]] = field(default_factory=list)
    # video (modality=video sets video_frames): clips of this many frames, objects moving, captions saying how
    video_frames: int = 0
    video_fps: float = 8.0
    scenes_with_clips: bool = False   # synthetic + clips: each sample also holds a still scene (modality=all)
    # real images
    root: str | None = None     # fashion_mnist, clipart: the installed package's folder
    path: str | None = None     # folder: the image folder with metadata.jsonl
    urls: str | None = None     # webdataset: tar shards, e.g. "<dir>/{00000..00099}.tar" (data/webdataset_source.py)
    limit: int | None = None    # clipart, folder: read at most this many files
    cache_dir: str | None = None   # clipart: where the renders are cached
    # speech (espeak-ng; unimodal/data/speech.py)
    voices: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)
    held_out_voices: int = 8
    rate_range: list[int] = field(default_factory=lambda: [130, 210])
    pitch_range: list[int] = field(default_factory=lambda: [25, 75])
    peak: float = 0.7


@dataclass
class TrainerConfig:
    accelerator: str = "auto"
    devices: int = 1           # per node; -1: every GPU of the node
    precision: str = "bf16-mixed"        # the language model's (and instruction tuning's); auto: by machine
    tokenizer_precision: str = "32-true"  # the media tokenizers' (stage 0); auto: by machine
    num_threads: int | None = None
    compile: bool = False
    strategy: str = "auto"     # auto | ddp | fsdp (training/strategies.py); auto is ddp with several devices
    num_nodes: int = 1
    timeout_minutes: float = 60.0   # process-group timeout: the other ranks wait this long for stage 0 on rank 0


@dataclass
class PathsConfig:
    tokenizers_dir: str = "tokenizers"
    runs_dir: str = "runs"
    cache_dir: str = ".cache/unimodal"
    shards_dir: str | None = None   # token shards; default <cache_dir>/shards/<hash of data + tokenizers>
    shards_format: str = "memmap"   # memmap | litdata (streaming: shards_dir may be an object-store URL)


@dataclass
class Config:
    modality: ModalityConfig = field(default_factory=ModalityConfig)
    tokenizer: TokenizerGroup = field(default_factory=TokenizerGroup)
    model: ModelConfig = field(default_factory=ModelConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    stage: StageConfig = field(default_factory=StageConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    lm: LMTrainConfig = field(default_factory=LMTrainConfig)
    instruct: InstructConfig = field(default_factory=InstructConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    loggers: list[str] = field(default_factory=lambda: ["csv", "tensorboard"])
    wandb: WandbConfig = field(default_factory=WandbConfig)
    seed: int = 0
    run_dir: str | None = None
    init_from: str | None = None   # stage=instruct: start from this run's model and tokenizers (training/init_from.py)
    resume: bool = True
    progress: bool = True
