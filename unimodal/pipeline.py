"""``unimodal.load(run_dir)``: a trained run as a generation pipeline."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unimodal.errors import UnimodalError, VocabularyMismatch
from unimodal.model.generate import MEDIA, SamplingConfig, generate_ids
from unimodal.sequence import Segment, SequenceCodec
from unimodal.tokenizers.base import ModalityTokenizer, TokenizerLoadError, load_tokenizer
from unimodal.vocab import Vocabulary

RUN_FILE = "run.json"


@dataclass
class Generation:
    """One generated answer: its segments, raw ids, and decoded media."""

    ids: np.ndarray
    segments: list[Segment]
    text: str = ""
    images: list[np.ndarray] = field(default_factory=list)   # uint8 [H, W, 3]
    audio: list[np.ndarray] = field(default_factory=list)    # float32 waveforms
    videos: list[np.ndarray] = field(default_factory=list)   # uint8 [T, H, W, 3] clips, played at video_fps
    video_fps: float = 0.0
    truncated: bool = False


class Pipeline:
    def __init__(self, run_dir: Path, model: torch.nn.Module, vocab: Vocabulary, codec: SequenceCodec,
                 tokenizers: dict[str, ModalityTokenizer], info: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.model = model
        self.vocab = vocab
        self.codec = codec
        self.tokenizers = tokenizers
        self.info = info

    @property
    def context_length(self) -> int:
        return int(self.model.config.max_position_embeddings)

    @property
    def sample_rate(self) -> int:
        audio = self.tokenizers.get("audio")
        return int(audio.sample_rate) if audio is not None else 16000

    @classmethod
    def load(cls, run_dir: str | Path, device: str | None = None) -> Pipeline:
        from transformers.utils import logging as hf_logging

        from unimodal.model.lm import load_lm

        hf_logging.disable_progress_bar()

        run_dir = Path(run_dir)
        info_path = run_dir / RUN_FILE
        if not run_dir.is_dir():
            raise UnimodalError(f"run directory {run_dir} does not exist (train one with scripts/train.py)")
        if not info_path.is_file():
            raise UnimodalError(f"{run_dir} is not a training run: {RUN_FILE} is missing")
        info = json.loads(info_path.read_text())
        tokenizers: dict[str, ModalityTokenizer] = {}
        for modality in ["text", *info["media"]]:
            try:
                tokenizers[modality] = load_tokenizer(run_dir / "tokenizers" / modality)
            except TokenizerLoadError as err:
                raise UnimodalError(str(err)) from None
            expected = info["tokenizers"][modality]["fingerprint"]
            if tokenizers[modality].fingerprint != expected:
                raise VocabularyMismatch(
                    f"{run_dir / 'tokenizers' / modality}: {modality} tokenizer has fingerprint "
                    f"{tokenizers[modality].fingerprint} but the checkpoint was built with {expected}")
        from unimodal.training.run import build_vocab
        vocab = build_vocab(tokenizers)
        lm_dir = run_dir / "lm"
        if not (lm_dir / "vocab.json").is_file():
            raise UnimodalError(f"{lm_dir}: no trained language model here (did training finish?)")
        vocab.check_same(Vocabulary.load(lm_dir / "vocab.json"), f"checkpoint {lm_dir}")
        model = load_lm(lm_dir, vocab)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model.to(device).eval()
        codec = SequenceCodec(vocab, image_grid=info.get("image_grid"), audio_frames=info.get("audio_frames"),
                              audio_layout=info.get("audio_layout", "flat"), video_grid=info.get("video_grid"))
        return cls(run_dir, model, vocab, codec, tokenizers, info)

    # --- prompts -------------------------------------------------------------------------
    def segments_from(self, prompt: Any) -> list[Segment]:
        """str -> text; ``[H, W, 3]`` uint8 array -> image; 1-D float array -> audio; or a list of those /
        of ready :class:`Segment` objects."""
        if prompt is None:
            return []
        if isinstance(prompt, Segment):
            return [prompt]
        if isinstance(prompt, (list, tuple)):
            return [seg for part in prompt for seg in self.segments_from(part)]
        if isinstance(prompt, str):
            return [Segment("text", self.tokenizers["text"].encode(prompt)[0])]
        array = np.asarray(prompt)
        if array.ndim == 4 and "video" in self.tokenizers:  # a clip [T, H, W, 3]
            from unimodal.video_io import video_segment
            return [video_segment(self._tokenizer("video"), array)]
        if array.ndim == 3 and "image" in self.tokenizers:
            from unimodal.data.images import to_channels
            from unimodal.data.tokens import images_to_tensor
            array = fit_image(array, int(self.tokenizers["image"].image_size))
            array = to_channels(array[None], int(getattr(self.tokenizers["image"], "channels", 3)))[0]  # grey data
            codes = self._tokenizer("image").encode(images_to_tensor([array]).to(self._device("image")))
            return [Segment("image", codes[0].cpu().numpy())]
        if array.ndim == 1 and "audio" in self.tokenizers:
            wave = torch.from_numpy(array.astype(np.float32))[None].to(self._device("audio"))
            return [Segment("audio", self._tokenizer("audio").encode(wave)[0].cpu().numpy())]
        raise UnimodalError(f"cannot use a prompt of type {type(prompt).__name__} with shape {array.shape} "
                            f"in a run with modalities {sorted(self.tokenizers)}")

    def _tokenizer(self, modality: str) -> Any:
        return self.tokenizers[modality].eval()

    def _device(self, modality: str) -> torch.device:
        return next(self.tokenizers[modality].parameters()).device

    # --- generation ----------------------------------------------------------------------
    def generate(self, prompt: Any, output: str | list[str] = "image", num_samples: int = 1, seed: int = 0,
                 sampling: SamplingConfig | None = None, chat: bool = False) -> list[Generation]:
        """``chat=True``: the prompt is one user turn and the answer is the assistant's, ending at the end of
        its turn (a run tuned with stage=instruct): ``generate([image, "how many circles are there?"],
        output="text", chat=True)``."""
        outputs = [output] if isinstance(output, str) else list(output)
        for name in outputs:
            if name != "text" and name not in self.tokenizers:
                raise UnimodalError(f"output {name!r} is not a modality of this run "
                                    f"(it has {sorted(self.tokenizers)})")
        sampling = sampling or SamplingConfig()
        segments = self.segments_from(prompt)
        if chat:
            from unimodal.data.chat import chat_prompt
            prompt_ids = chat_prompt(self.codec, segments)
        else:
            prompt_ids = self.codec.encode(segments, add_eos=False).ids
        spans = sum(len(self.codec.span_plan(m)) + 2 for m in outputs if m in MEDIA)
        room = self.context_length - len(prompt_ids)
        if len(prompt_ids) + spans + 1 > self.context_length:
            raise UnimodalError(f"prompt is {len(prompt_ids)} tokens; with the requested {outputs} output "
                                f"({spans + 1} tokens) it exceeds the model context of {self.context_length}")
        sampling.max_new_tokens = min(sampling.max_new_tokens, room)
        new_ids = generate_ids(self.model, self.codec, [prompt_ids] * num_samples, outputs, sampling, seed=seed)
        return [self._decode(ids) for ids in new_ids]

    @torch.no_grad()
    def _decode(self, ids: np.ndarray) -> Generation:
        segments = self.codec.decode(ids)
        result = Generation(ids=ids, segments=segments, truncated=any(s.truncated for s in segments))
        texts = []
        for segment in segments:
            if segment.modality == "text":
                texts.append(self.tokenizers["text"].decode(list(segment.payload)))
            elif segment.modality == "image":
                from unimodal.data.tokens import tensor_to_images
                codes = torch.as_tensor(segment.payload)[None].to(self._device("image"))
                result.images.extend(tensor_to_images(self._tokenizer("image").decode(codes)))
            elif segment.modality == "audio":
                codes = torch.as_tensor(segment.payload)[None].to(self._device("audio"))
                result.audio.append(self._tokenizer("audio").decode(codes)[0].float().cpu().numpy())
            elif segment.modality == "video":
                from unimodal.video_io import decode_video_segment
                result.videos.append(decode_video_segment(self._tokenizer("video"), segment))
                result.video_fps = float(self.tokenizers["video"].frame_rate)
        result.text = " ".join(t.strip() for t in texts)
        return result


def fit_image(image: np.ndarray, size: int) -> np.ndarray:
    """Any RGB image -> ``size`` x ``size`` (box filter when shrinking), what the image tokenizer takes."""
    if image.shape[:2] == (size, size):
        return image
    from PIL import Image

    resized = Image.fromarray(np.asarray(image, dtype=np.uint8)).resize((size, size), Image.BOX)
    return np.asarray(resized.convert("RGB"))


def load(run_dir: str | Path, device: str | None = None) -> Pipeline:
    return Pipeline.load(run_dir, device)
