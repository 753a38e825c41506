"""Audio data sources: a sound folder (with broken files), espeak speech, and the audio evaluation command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

from unimodal.config import compose
from unimodal.data.sources import data_fingerprint, load_samples


def _tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_audio_folder_resamples_cuts_and_skips_bad_files(tmp_path, capsys):
    lines = []
    for index in range(4):
        soundfile.write(tmp_path / f"tone{index}.wav", _tone(0.5, 22050, 300 + 100 * index), 22050)
        lines.append({"file_name": f"tone{index}.wav", "text": f"tone {index}"})
    stereo = np.stack([_tone(2.5, 8000), _tone(2.5, 8000)], axis=1)
    soundfile.write(tmp_path / "long.flac", stereo, 8000)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really a wav file")
    lines += [{"file_name": name, "text": name} for name in ("long.flac", "empty.wav", "broken.wav")]
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    overrides = ["data=folder", f"data.path={tmp_path}", "data.audio_seconds=1.0"]
    splits = load_samples(compose(overrides).data, ("train", "val", "test"))
    log = capsys.readouterr().out
    assert "skipped 2 unreadable files" in log and "empty.wav (empty)" in log and "broken.wav (unreadable" in log
    names = [name for split in splits.values() for name in split.names]
    assert sorted(n for n in names if n.startswith("long")) == ["long.flac#0", "long.flac#1", "long.flac#2"]
    assert len(names) == 4 + 3
    everything = {name: split for split in splits.values() for name in split.names}
    tone = everything["tone0.wav"]
    wave = tone.waves[tone.names.index("tone0.wav")]
    assert abs(len(wave) - 8000) <= 2   # 0.5 s at 22,050 Hz resampled to 16 kHz
    assert tone.media("audio", 0, len(tone)).shape == (len(tone), 16000)
    assert data_fingerprint(compose(overrides).data) != data_fingerprint(compose(overrides[:2]).data)


def test_speech_is_split_by_sentence_and_voice_and_cached(tmp_path, monkeypatch):
    pytest.importorskip("espeakng_loader")
    from unimodal.data import speech

    overrides = ["data=speech", "data.num_train=8", "data.num_val=2", "data.num_test=2", "data.audio_seconds=2.0",
                 f"paths.cache_dir={tmp_path}"]
    cfg = compose(overrides).data
    splits = load_samples(cfg, ("train", "val", "test"))
    assert len(splits["train"]) == 8 and splits["train"].media("audio", 0, 3).shape == (3, 32000)
    plans = {name: [json.loads(line) for line in (speech.speech_folder(cfg, name) / "metadata.jsonl").read_text()
                    .splitlines()] for name in ("train", "val", "test")}
    train_texts = {item["text"] for item in plans["train"]}
    train_voices = {item["voice"] for item in plans["train"]}
    for held in ("val", "test"):
        assert not train_texts & {item["text"] for item in plans[held]}
        assert not train_voices & {item["voice"] for item in plans[held]}
    assert all(float(np.abs(w).max()) > 0.5 for w in splits["train"].waves)   # speech, normalised to the peak
    monkeypatch.setattr(speech, "Espeak", None)   # a second load reads the cached WAVs, synthesises nothing
    again = load_samples(compose(overrides).data, ("train",))["train"]
    assert again.captions == splits["train"].captions


def test_evaluate_command_measures_an_audio_codec(tmp_path, one_thread, capsys):
    from tests.test_audio_tokenizer import trained_tiny
    from unimodal.commands.evaluate import evaluate_tokenizer
    from unimodal.eval.tokenizers.card import save_tokenizer

    save_tokenizer(trained_tiny(steps=1), tmp_path / "codec", {"data": "synthetic"})
    metrics = evaluate_tokenizer(["task=tokenizer", f"tokenizer={tmp_path / 'codec'}", "num_images=2",
                                  "num_codebooks=1", "data.num_test=3", "progress=false"])
    assert metrics["eval_clips"] == 2 and metrics["num_codebooks_used"] == 1
    assert {"stoi", "si_snr", "codebook_usage_per_level", "bitrate"} <= set(metrics)
    assert (tmp_path / "codec" / "spectrograms.png").is_file() and "stoi" in capsys.readouterr().out
