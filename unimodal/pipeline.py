"""``unimodal.load(run_dir)``: a trained run as a generation pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unimodal.anyres import AnyResImage
from unimodal.errors import UnimodalError
from unimodal.model.generate import MEDIA, SamplingConfig, collect_ids, iter_generate
from unimodal.run_folder import LM_DIR, VOCAB_FILE, build_vocab, load_run_tokenizers, make_codec, read_run_info
from unimodal.sequence import Segment, SequenceCodec
from unimodal.tokenizers.base import ModalityTokenizer
from unimodal.vocab import CLOSERS, OPENERS, Vocabulary


@dataclass
class Part:
    """One piece of an answer, in order: ``value`` is text (str), an image (uint8 ``[H, W, C]``) or a waveform
    (float32); ``ids`` its global ids (a media span with its opener and closer); ``codes`` its local codes."""

    modality: str
    ids: np.ndarray
    value: Any
    codes: Any
    truncated: bool = False


@dataclass
class Generation:
    """One generated answer: raw ids, segments, the parts in order, and the text and media by kind."""

    ids: np.ndarray
    segments: list[Segment]
    parts: list[Part] = field(default_factory=list)
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
        info = read_run_info(run_dir)
        tokenizers = load_run_tokenizers(run_dir, info)
        vocab = build_vocab(tokenizers)
        lm_dir = run_dir / LM_DIR
        if not (lm_dir / VOCAB_FILE).is_file():
            raise UnimodalError(f"{lm_dir}: no trained language model here (did training finish?)")
        vocab.check_same(Vocabulary.load(lm_dir / VOCAB_FILE), f"checkpoint {lm_dir}")
        model = load_lm(lm_dir, vocab)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model.to(device).eval()
        return cls(run_dir, model, vocab, make_codec(info, vocab), tokenizers, info)

    # --- prompts -------------------------------------------------------------------------
    def segments_from(self, prompt: Any) -> list[Segment]:
        """str -> text; ``[H, W, 3]`` uint8 array -> image; 1-D float array -> audio; a :class:`Generation`
        -> its segments; or a list of those / of ready :class:`Segment` objects."""
        if prompt is None:
            return []
        if isinstance(prompt, Segment):
            return [prompt]
        if isinstance(prompt, Generation):  # an earlier answer, e.g. the assistant's turn of a chat
            return [Segment(s.modality, s.payload) for s in prompt.segments]
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
        """``num_samples`` answers to one prompt (a string, an image, a waveform, or a list of them).

        ``output`` is one modality or an ordered list for interleaved answers (``["text", "image"]``).
        ``chat=True``: the prompt is one user turn and the answer is the assistant's, ending at the end of
        its turn (a run tuned with stage=instruct): ``generate([image, "how many circles are there?"],
        output="text", chat=True)``; :meth:`chat` takes whole conversations."""
        return self.generate_batch([prompt], output, num_samples, seed, sampling, chat)

    def generate_batch(self, prompts: list[Any], output: str | list[str] = "image", num_samples: int = 1,
                       seed: int = 0, sampling: SamplingConfig | None = None,
                       chat: bool = False) -> list[Generation]:
        """Several prompts decoded together in one batch; ``num_samples`` answers each, prompt by prompt."""
        ids = [self._prompt_ids(prompt, chat) for prompt in prompts]
        return self._run([row for row in ids for _ in range(num_samples)], output, seed, sampling)

    def chat(self, messages: list[Any], output: str | list[str] = "text", seed: int = 0,
             sampling: SamplingConfig | None = None) -> Generation:
        """The assistant's next turn in a conversation (a run tuned with stage=instruct).

        ``messages``: ``{"role": "system" | "user" | "assistant", "content": ...}`` dicts (or
        :class:`~unimodal.data.chat.Turn`) in order, the last one the user's. ``content`` is what
        :meth:`generate` takes as a prompt, or an earlier :class:`Generation` (to continue after it)::

            reply = pipe.chat([{"role": "user", "content": [image, "describe this image, then draw it "
                                                            "with the colours swapped"]}], output=["text", "image"])
            reply.parts  # [Part("text", ...), Part("image", ...)]
        """
        from unimodal.data.chat import Turn, encode_chat

        turns = []
        for index, message in enumerate(messages):
            if isinstance(message, Turn):
                turns.append(message)
                continue
            if not isinstance(message, dict) or "role" not in message or "content" not in message:
                raise UnimodalError(f"chat message {index} must be a dict with 'role' and 'content', got {message!r}")
            try:
                turns.append(Turn(message["role"], self.segments_from(message["content"])))
            except ValueError as err:
                raise UnimodalError(f"chat message {index}: {err}") from None
        if not turns or turns[-1].role == "assistant":
            raise UnimodalError("chat messages must end with a user turn (the assistant answers it)")
        prompt_ids = encode_chat(self.codec, turns, add_generation_prompt=True).ids
        return self._run([prompt_ids], output, seed, sampling)[0]

    def stream(self, prompt: Any, output: str | list[str] = "audio", seed: int = 0,
               sampling: SamplingConfig | None = None, chat: bool = False, chunk_frames: int = 4,
               context_frames: int = 8) -> Iterator[np.ndarray]:
        """Yield the generated sound as float32 waveform chunks while the model is still emitting its frames
        (every audio span of the answer, in order). With the same seed and settings the chunks join into
        ``generate(...)[0].audio`` (see :mod:`unimodal.streaming` for the context each chunk is decoded with)."""
        from unimodal.streaming import AudioStream

        if "audio" not in self.tokenizers:
            raise UnimodalError(f"stream() yields audio, and this run has no audio (it has {sorted(self.tokenizers)})")
        prompt_ids = [self._prompt_ids(prompt, chat)]
        outputs, sampling = self._prepare(prompt_ids, output, sampling)
        audio = AudioStream(self.codec, self._tokenizer("audio"), chunk_frames, context_frames)
        for step in self._steps(prompt_ids, outputs, sampling, seed):
            if step[0] is not None:
                yield from audio.push(step[0])

    def _prompt_ids(self, prompt: Any, chat: bool) -> np.ndarray:
        segments = self.segments_from(prompt)
        if chat:
            from unimodal.data.chat import chat_prompt
            return chat_prompt(self.codec, segments)
        return self.codec.encode(segments, add_eos=False).ids

    def _prepare(self, prompt_ids: list[np.ndarray], output: str | list[str], sampling: SamplingConfig | None
                 ) -> tuple[list[str], SamplingConfig]:
        """Checked outputs, and the sampling settings with a budget that fits the context."""
        outputs = [output] if isinstance(output, str) else list(output)
        for name in outputs:
            if name != "text" and name not in self.tokenizers:
                raise UnimodalError(f"output {name!r} is not a modality of this run "
                                    f"(it has {sorted(self.tokenizers)})")
        if not outputs:
            raise UnimodalError("output is empty: ask for text, image or audio, or a list of them")
        sampling = sampling or SamplingConfig()
        longest = max(len(ids) for ids in prompt_ids)
        spans = sum(len(self.codec.span_plan(m)) + 2 for m in outputs if m in MEDIA)
        if longest + spans + 1 > self.context_length:
            raise UnimodalError(f"prompt is {longest} tokens; with the requested {outputs} output "
                                f"({spans + 1} tokens) it exceeds the model context of {self.context_length}")
        budget = min(sampling.max_new_tokens, self.context_length - longest)
        return outputs, replace(sampling, max_new_tokens=budget)

    def _run(self, prompt_ids: list[np.ndarray], output: str | list[str], seed: int,
             sampling: SamplingConfig | None) -> list[Generation]:
        outputs, sampling = self._prepare(prompt_ids, output, sampling)
        new_ids = collect_ids(self._steps(prompt_ids, outputs, sampling, seed), len(prompt_ids))
        return [self.decode(ids) for ids in new_ids]

    def _steps(self, prompt_ids: list[np.ndarray], outputs: list[str], sampling: SamplingConfig,
               seed: int) -> Iterator[list[int | None]]:
        """The one place the pipeline runs the generation loop (and so would pick a faster decoder)."""
        return iter_generate(self.model, self.codec, prompt_ids, outputs, sampling, seed=seed)

    # --- decoding ------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, ids: np.ndarray) -> Generation:
        """Generated ids -> a :class:`Generation`: its parts in order (text, images, sounds, each with its
        ids), the text joined, the media decoded. A media kind decodes through :meth:`decode_media`."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        parts: list[Part] = []
        segments: list[Segment] = []
        for start, end in self._spans(ids):
            for segment in self.codec.decode(ids[start:end]):
                segments.append(segment)
                value = (self.tokenizers["text"].decode(list(segment.payload)) if segment.modality == "text"
                         else self.decode_media(segment))
                parts.append(Part(segment.modality, ids[start:end], value, segment.payload, segment.truncated))
        result = Generation(ids=ids, segments=segments, parts=parts, truncated=any(p.truncated for p in parts))
        result.text = " ".join(p.value.strip() for p in parts if p.modality == "text")
        result.images = [p.value for p in parts if p.modality == "image"]
        result.audio = [p.value for p in parts if p.modality == "audio"]
        result.videos = [p.value for p in parts if p.modality == "video"]
        if result.videos:
            result.video_fps = float(self.tokenizers["video"].frame_rate)
        return result

    def decode_media(self, segment: Segment) -> np.ndarray:
        """One media segment -> an image (uint8 ``[H, W, C]``), a waveform (float32) or a clip (``[T, H, W, C]``)."""
        if segment.modality == "image":
            from unimodal.data.tokens import tensor_to_images
            if isinstance(segment.payload, AnyResImage):
                from unimodal.anyres import decode_anyres
                return tensor_to_images(decode_anyres(self._tokenizer("image"), segment.payload)[None])[0]
            codes = torch.as_tensor(segment.payload)[None].to(self._device("image"))
            return tensor_to_images(self._tokenizer("image").decode(codes))[0]
        if segment.modality == "audio":
            codes = torch.as_tensor(segment.payload)[None].to(self._device("audio"))
            return self._tokenizer("audio").decode(codes)[0].float().cpu().numpy()
        if segment.modality == "video":  # uint8 [T, H, W, 3]
            from unimodal.video_io import decode_video_segment
            return decode_video_segment(self._tokenizer("video"), segment)
        raise UnimodalError(f"no decoder for {segment.modality} segments in this pipeline")

    def _spans(self, ids: np.ndarray) -> list[tuple[int, int]]:
        """``[start, end)`` of each text run and each media span (opener to closer) up to ``<eos>``."""
        openers = {self.vocab.special(OPENERS[m]): self.vocab.special(CLOSERS[m]) for m in self.vocab.media}
        spans, text_start, i = [], None, 0
        while i < len(ids) and ids[i] != self.vocab.eos_id:
            token = int(ids[i])
            if token < self.vocab.text_size:
                text_start = i if text_start is None else text_start
                i += 1
                continue
            if text_start is not None:
                spans.append((text_start, i))
                text_start = None
            if token in openers:
                closer = np.flatnonzero(ids[i + 1:] == openers[token])
                end = i + 2 + int(closer[0]) if len(closer) else len(ids)
                spans.append((i, end))
                i = end
            else:
                i += 1
        if text_start is not None:
            spans.append((text_start, i))
        return spans


def fit_image(image: np.ndarray, size: int) -> np.ndarray:
    """Any RGB image -> ``size`` x ``size`` (box filter when shrinking), what the image tokenizer takes."""
    if image.shape[:2] == (size, size):
        return image
    from PIL import Image

    resized = Image.fromarray(np.asarray(image, dtype=np.uint8)).resize((size, size), Image.BOX)
    return np.asarray(resized.convert("RGB"))


def load(run_dir: str | Path, device: str | None = None) -> Pipeline:
    return Pipeline.load(run_dir, device)
