"""``unimodal.load(run_dir)``: a trained run (or its export) as a generation pipeline.

A run that reads images as features (``model.vision_input=features``) takes a prompt image as pixels: its crops go
through the encoder's own image processor and fill the image's feature slots; generated images are tokens as
always."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unimodal.errors import UnimodalError, VocabularyMismatch
from unimodal.feature_spans import FeatureImage
from unimodal.media import (
    fit_clip,
    tensor_to_images,
    tensor_to_videos,
    videos_to_tensor,
)
from unimodal.model.generate import MEDIA, SamplingConfig, collect_ids, iter_generate
from unimodal.model.vision_input import vision_of
from unimodal.pipeline.images import codec_for, feature_payload, prompt_image_codes
from unimodal.pipeline.rerank import rerank_ids
from unimodal.run_folder import (
    VOCAB_FILE,
    build_vocab,
    lm_folder,
    load_run_tokenizers,
    make_codec,
    read_run_info,
)
from unimodal.sequence import Encoded, Segment, SequenceCodec
from unimodal.tokenizers.anyres import AnyResImage, decode_anyres
from unimodal.tokenizers.base import ModalityTokenizer
from unimodal.vocab import CLOSERS, OPENERS, Vocabulary

# Called after every generated step with (steps done, most steps the answer can take): a progress bar.
Progress = Callable[[int, int], None]


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
        self.image_size: tuple[int, int] | None = None   # (height, width) of every generated image; None: the model's

    @property
    def context_length(self) -> int:
        return int(self.model.config.max_position_embeddings)

    @property
    def reads_features(self) -> bool:
        """Whether input images are read as features (encoder + projector) rather than as tokens."""
        return self.codec.feature_slots is not None

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
        lm_dir = lm_folder(run_dir)
        if not (lm_dir / VOCAB_FILE).is_file():
            raise UnimodalError(f"{lm_dir}: no trained language model here (did training finish?)")
        vocab.check_same(Vocabulary.load(lm_dir / VOCAB_FILE), f"checkpoint {lm_dir}")
        model = load_lm(lm_dir, vocab)
        vision, expected = vision_of(model), info.get("vision")
        if bool(vision) != bool(expected) or (vision and vision.slots != expected["slots_per_crop"]):
            raise VocabularyMismatch(f"{lm_dir}: the model reads images {'as features' if vision else 'as tokens'} "
                                     f"but {run_dir / 'run.json'} says {'features' if expected else 'tokens'} (or "
                                     f"another span layout); load the model with the run it was trained in")
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
            if self.reads_features:  # its images, read again, are read as features of their decoded pixels
                return [Segment(p.modality, self.feature_payload(p.value, p.codes) if p.modality == "image"
                                else p.codes) for p in prompt.parts]
            return [Segment(s.modality, s.payload) for s in prompt.segments]
        if isinstance(prompt, (list, tuple)):
            return [seg for part in prompt for seg in self.segments_from(part)]
        if isinstance(prompt, str):
            return [Segment("text", self.tokenizers["text"].encode(prompt)[0])]
        array = np.asarray(prompt)
        if array.ndim == 4 and "video" in self.tokenizers:  # a clip [T, H, W, 3]
            tokenizer = self._tokenizer("video")
            clip = fit_clip(array, int(tokenizer.num_frames), int(tokenizer.image_size))
            codes = tokenizer.encode(videos_to_tensor([clip]).to(self._device("video")))
            return [Segment("video", codes[0].cpu().numpy())]
        if array.ndim == 3 and "image" in self.tokenizers and self.reads_features:  # no resize: the encoder's own
            return [Segment("image", self.feature_payload(array))]
        if array.ndim == 3 and "image" in self.tokenizers:
            return [Segment("image", self.prompt_image_codes(array))]
        if array.ndim == 1 and "audio" in self.tokenizers:
            wave = torch.from_numpy(array.astype(np.float32))[None].to(self._device("audio"))
            return [Segment("audio", self._tokenizer("audio").encode(wave)[0].cpu().numpy())]
        raise UnimodalError(f"cannot use a prompt of type {type(prompt).__name__} with shape {array.shape} "
                            f"in a run with modalities {sorted(self.tokenizers)}")

    def prompt_image_codes(self, image: np.ndarray) -> np.ndarray | AnyResImage:
        """A prompt image's codes, aspect ratio kept (:func:`~unimodal.pipeline.images.prompt_image_codes`)."""
        return prompt_image_codes(self._tokenizer("image"), self.codec.anyres_settings, image, self._device("image"))

    def at_image_size(self, size: tuple[int, int] | None) -> Pipeline:
        """A view of this pipeline whose generated images are all ``size`` = (height, width): with AnyRes, the
        tile grid that size asks for, which the constrained decoder holds to, decoded at exactly that size."""
        view = copy.copy(self)
        view.codec = codec_for(self.codec, self.tokenizers, size)
        view.image_size = None if size is None else (int(size[0]), int(size[1]))
        return view

    def feature_payload(self, image: np.ndarray, codes: Any = None) -> FeatureImage:
        """One image as the crops this run's encoder reads (:func:`~unimodal.pipeline.images.feature_payload`)."""
        return feature_payload(vision_of(self.model), image, codes)

    def pixel_values(self, prompts: list[Encoded]) -> torch.Tensor | None:
        """The processed pixels of every image ``prompts`` read as features, in order (None when there are none)."""
        crops = [crop for encoded in prompts for image in encoded.images for crop in image.crops]
        return vision_of(self.model).encoder.pixel_values(crops) if crops else None

    def _tokenizer(self, modality: str) -> Any:
        return self.tokenizers[modality].eval()

    def _device(self, modality: str) -> torch.device:
        return next(self.tokenizers[modality].parameters()).device

    # --- generation ----------------------------------------------------------------------
    def generate(self, prompt: Any, output: str | list[str] = "image", num_samples: int = 1, seed: int = 0,
                 sampling: SamplingConfig | None = None, chat: bool = False,
                 progress: Progress | None = None,
                 image_size: tuple[int, int] | None = None, rerank: int = 1) -> list[Generation]:
        """``num_samples`` answers to one prompt (a string, an image, a waveform, or a list of them).

        ``output`` is one modality or an ordered list for interleaved answers (``["text", "image"]``).
        ``chat=True``: the prompt is one user turn and the answer is the assistant's, ending at the end of
        its turn (a run tuned with stage=instruct): ``generate([image, "how many circles are there?"],
        output="text", chat=True)``; :meth:`chat` takes whole conversations. ``progress(done, total)`` is
        called after every step (``total`` is exact for media-only answers, the token budget with text).
        ``image_size`` = (height, width) makes every generated image that size (see :meth:`at_image_size`).
        ``rerank=n``: each answer is the best of ``n`` candidates by the inverse direction's likelihood of the
        prompt (:mod:`unimodal.pipeline.rerank`; one output modality, a one-segment prompt)."""
        return self.generate_batch([prompt], output, num_samples, seed, sampling, chat, progress, image_size, rerank)

    def generate_batch(self, prompts: list[Any], output: str | list[str] = "image", num_samples: int = 1,
                       seed: int = 0, sampling: SamplingConfig | None = None, chat: bool = False,
                       progress: Progress | None = None,
                       image_size: tuple[int, int] | None = None, rerank: int = 1) -> list[Generation]:
        """Several prompts decoded together in one batch; ``num_samples`` answers each, prompt by prompt."""
        pipe = self if image_size is None else self.at_image_size(image_size)
        encoded = [pipe.prompt(prompt, chat) for prompt in prompts]
        rows = [row for row in encoded for _ in range(num_samples)]
        if rerank == 1:
            return pipe._run(rows, output, seed, sampling, progress)
        outputs, sampling = pipe._prepare([p.ids for p in rows], output, sampling)
        if len(outputs) != 1:
            raise UnimodalError(f"rerank={rerank} ranks answers of one modality; output={outputs} asks for "
                                f"{len(outputs)}: ask for one, or use rerank=1")
        return [pipe.decode(ids) for ids in rerank_ids(pipe, rows, outputs[0], sampling, rerank, seed)]

    def chat(self, messages: list[Any], output: str | list[str] = "text", seed: int = 0,
             sampling: SamplingConfig | None = None, progress: Progress | None = None) -> Generation:
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
        return self._run([encode_chat(self.codec, turns, add_generation_prompt=True)], output, seed, sampling,
                         progress)[0]

    def stream(self, prompt: Any, output: str | list[str] = "audio", seed: int = 0,
               sampling: SamplingConfig | None = None, chat: bool = False, chunk_frames: int = 4,
               context_frames: int = 8, progress: Progress | None = None) -> Iterator[np.ndarray]:
        """Yield the generated sound as float32 waveform chunks while the model is still emitting its frames
        (every audio span of the answer, in order). With the same seed and settings the chunks join into
        ``generate(...)[0].audio`` (see :mod:`unimodal.model.streaming` for the context each chunk is decoded with)."""
        from unimodal.model.streaming import AudioStream

        if "audio" not in self.tokenizers:
            raise UnimodalError(f"stream() yields audio, and this run has no audio (it has {sorted(self.tokenizers)})")
        prompts = [self.prompt(prompt, chat)]
        outputs, sampling = self._prepare([p.ids for p in prompts], output, sampling)
        audio = AudioStream(self.codec, self._tokenizer("audio"), chunk_frames, context_frames)
        # Read the drawn ids back at least once a chunk's worth of ids: chunks leave while the LM still runs.
        every = chunk_frames * max(1, int(self.codec.num_audio_codebooks or 1))
        for step in self._steps(prompts, outputs, sampling, seed, progress, read_every=every):
            if step[0] is not None:
                yield from audio.push(step[0])

    def prompt(self, prompt: Any, chat: bool = False) -> Encoded:
        """A prompt (what :meth:`generate` takes, or a list of segments) encoded for generation: ids and the images
        it reads as features; ``chat``: as one user turn of the chat template, then ``<assistant>``."""
        segments = self.segments_from(prompt)
        if chat:
            from unimodal.data.chat import Turn, encode_chat
            return encode_chat(self.codec, [Turn("user", segments)], add_generation_prompt=True)
        return self.codec.encode(segments, add_eos=False)

    def generate_ids(self, prompts: list[Encoded | np.ndarray], outputs: list[str], sampling: SamplingConfig,
                     seed: int = 0) -> list[np.ndarray]:
        """New ids after each encoded prompt (:meth:`prompt`, or plain ids of prompts without feature images),
        in one batch: the loop the evaluation runs."""
        prompts = [p if isinstance(p, Encoded) else Encoded(np.asarray(p), np.zeros(len(p), bool)) for p in prompts]
        return collect_ids(self._steps(prompts, outputs, sampling, seed), len(prompts))

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
                                f"({spans + 1} tokens) it exceeds the model context of {self.context_length}: "
                                f"shorten the prompt or ask for fewer outputs")
        budget = min(sampling.max_new_tokens, self.context_length - longest)
        return outputs, replace(sampling, max_new_tokens=budget)

    def _run(self, prompts: list[Encoded], output: str | list[str], seed: int,
             sampling: SamplingConfig | None, progress: Progress | None = None) -> list[Generation]:
        outputs, sampling = self._prepare([p.ids for p in prompts], output, sampling)
        new_ids = collect_ids(self._steps(prompts, outputs, sampling, seed, progress), len(prompts))
        return [self.decode(ids) for ids in new_ids]

    def _steps(self, prompts: list[Encoded], outputs: list[str], sampling: SamplingConfig,
               seed: int, progress: Progress | None = None,
               read_every: int | None = None) -> Iterator[list[int | None]]:
        """The one place the pipeline runs the generation loop (and so would pick a faster decoder)."""
        steps = iter_generate(self.model, self.codec, [p.ids for p in prompts], outputs, sampling, seed=seed,
                              read_every=read_every, images=self.pixel_values(prompts))
        if progress is None:
            return steps
        total = sampling.max_new_tokens
        if "text" not in outputs:  # media spans have known lengths: each span, its opener and closer, then <eos>
            total = min(total, sum(len(self.codec.span_plan(m)) + 2 for m in outputs) + 1)
        return _reporting(steps, total, progress)

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
            if isinstance(segment.payload, AnyResImage):
                picture = decode_anyres(self._tokenizer("image"), segment.payload, self.image_size)
                return tensor_to_images(picture[None])[0]
            codes = torch.as_tensor(segment.payload)[None].to(self._device("image"))
            return tensor_to_images(self._tokenizer("image").decode(codes))[0]
        if segment.modality == "audio":
            codes = torch.as_tensor(segment.payload)[None].to(self._device("audio"))
            return self._tokenizer("audio").decode(codes)[0].float().cpu().numpy()
        if segment.modality == "video":  # uint8 [T, H, W, 3]
            codes = torch.as_tensor(segment.payload)[None].to(self._device("video"))
            return tensor_to_videos(self._tokenizer("video").decode(codes))[0]
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


def _reporting(steps: Iterator[list[int | None]], total: int, progress: Progress) -> Iterator[list[int | None]]:
    for done, step in enumerate(steps, start=1):
        progress(done, total)
        yield step


def load(run_dir: str | Path, device: str | None = None) -> Pipeline:
    return Pipeline.load(run_dir, device)
