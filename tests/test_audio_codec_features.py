"""Codec features on tiny models: bitrates from one quantizer-dropout model, the STFT discriminator, encodec
checkpoints, and the audio metrics report."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from tests.test_audio_tokenizer import TINY, tones, trained_tiny
from unimodal.errors import ConfigError


def test_fewer_codebooks_are_the_first_levels(one_thread):
    tok = trained_tiny(steps=2, quantizer_dropout=True, num_codebooks=3)
    books = [layer._codebook for layer in tok.quantizer.vq.layers]
    assert all(bool(book.inited) for book in books)   # every level k-means-initialised on the first batch
    waves = tones(2, 800, seed=3)
    full = tok.encode(waves)
    for k in (1, 2):
        assert torch.equal(tok.encode(waves, num_codebooks=k), full[:, :k])
        assert tok.decode(full[:, :k]).shape == (2, 800)
    with pytest.raises(ValueError):
        tok.encode(waves, num_codebooks=4)


def test_stft_discriminator_trains_and_is_not_saved(one_thread, tmp_path):
    from unimodal.tokenizers.audio import EncodecTokenizer
    from unimodal.training.tokenizer_module import fit_tokenizer

    torch.manual_seed(0)
    tok = EncodecTokenizer(**TINY)
    budget = OmegaConf.create({"steps": 2, "batch_size": 2, "lr": 1e-3, "max_minutes": 1.0,
                               "adversarial": {"weight": 1.0, "start_step": 0, "ramp_steps": 0, "channels": 4,
                                               "layers": 1}})
    metrics = fit_tokenizer(tok, tones(4, 1600), tones(2, 1600, seed=1), budget, {"accelerator": "cpu"},
                            progress=False)
    assert metrics["train_steps"] == 2
    assert not any("discriminator" in key for key in tok.state_dict())
    budget.adversarial.channels = 0
    with pytest.raises(ConfigError, match="adversarial.channels"):
        fit_tokenizer(tok, tones(4, 1600), tones(2, 1600), budget, {"accelerator": "cpu"}, progress=False)


def _encodec_model(n_q: int = 3):
    """encodec's own EncodecModel at a tiny size, with random codebooks (as if trained)."""
    from encodec.model import EncodecModel
    from encodec.modules import SEANetDecoder, SEANetEncoder
    from encodec.quantization import ResidualVectorQuantizer

    torch.manual_seed(0)
    arch = dict(channels=1, dimension=8, n_filters=4, n_residual_layers=1, ratios=[4, 2], lstm=1, causal=True,
                norm="weight_norm")
    model = EncodecModel(SEANetEncoder(**arch), SEANetDecoder(**arch),
                         ResidualVectorQuantizer(dimension=8, n_q=n_q, bins=16), target_bandwidths=[1.0],
                         sample_rate=16000, channels=1)
    for layer in model.quantizer.vq.layers:
        layer._codebook.embed.normal_()
        layer._codebook.inited.fill_(1.0)
    return model.eval()


def test_encodec_checkpoint_loads_and_encodes_the_same(one_thread, tmp_path):
    from unimodal.tokenizers.base import load_tokenizer
    from unimodal.tokenizers.encodec_checkpoint import from_encodec_checkpoint

    model = _encodec_model()
    path = tmp_path / "encodec_tiny.th"
    torch.save(model.state_dict(), path)
    arch = dict(sample_rate=16000, filters=4, ratios=[4, 2], n_residual_layers=1, lstm=1)
    tok = from_encodec_checkpoint(path, **arch)
    assert (tok.num_codebooks, tok.codebook_size) == (3, 16)
    waves = tones(2, 800, seed=5)
    with torch.no_grad():
        emb = model.encoder(waves[:, None])
        theirs = model.quantizer.encode(emb, 2000, bandwidth=None).transpose(0, 1)
        assert torch.equal(tok.encode(waves), theirs)
        assert torch.allclose(tok.decode(theirs), model.decoder(model.quantizer.decode(theirs.transpose(0, 1)))[:, 0],
                              atol=1e-6)
    low = from_encodec_checkpoint(path, num_codebooks=2, **arch)
    assert torch.equal(low.encode(waves), theirs[:, :2])
    low.save(tmp_path / "saved")
    assert torch.equal(load_tokenizer(tmp_path / "saved").encode(waves), theirs[:, :2])
    with pytest.raises(ConfigError, match="does not match the architecture"):
        from_encodec_checkpoint(path, **{**arch, "filters": 8})
    (tmp_path / "junk.th").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a torch state dict"):
        from_encodec_checkpoint(tmp_path / "junk.th")


def test_audio_report_files_and_metrics(one_thread, tmp_path):
    from unimodal.eval.tokenizers.card import write_card
    from unimodal.eval.tokenizers.measure import evaluate_audio_tokenizer

    tok = trained_tiny(steps=1, quantizer_dropout=True)
    waves = tones(3, 12000, seed=2)   # STOI needs about 0.4 s of sound
    evaluation = evaluate_audio_tokenizer(tok, waves, num_codebooks=1, batch_size=2, keep=2, progress=False)
    metrics = evaluation.metrics
    assert metrics["num_codebooks_used"] == 1 and len(metrics["codebook_usage_per_level"]) == 1
    assert metrics["bitrate"] == 2000 * 4 and 0 < metrics["codebook_usage"] <= 1
    assert {"si_snr", "mel_distance", "stoi", "pesq"} <= set(metrics)   # pystoi and pesq are installed here
    write_card(tok, tmp_path, metrics, evaluation)
    assert (tmp_path / "spectrograms.png").is_file() and (tmp_path / "samples" / "01_reconstruction.wav").is_file()
    assert "spectrograms.png" in (tmp_path / "card.md").read_text()
    assert json.loads((tmp_path / "metrics.json").read_text())["num_codebooks_used"] == 1


def test_relative_dead_code_bar_reseeds_only_rare_codes(one_thread):
    from unimodal.tokenizers.audio import EncodecTokenizer

    for fraction, expected in ((None, 16), (0.1, 2)):
        tok = EncodecTokenizer(**{**TINY, "num_codebooks": 1, "dead_code_fraction": fraction})
        book = tok.quantizer.vq.layers[0]._codebook
        book.inited.fill_(1.0)
        book.cluster_size.fill_(0.5)          # 16 codes, mean count 0.5: below encodec's absolute bar of 2
        book.cluster_size[:2] = 0.01          # two codes hardly ever used
        before = book.embed.clone()
        with torch.no_grad():
            tok._revive_dead_codes(tok.encoder(tok.prepare(tones(1, 80))), 1)
        assert int((book.embed != before).any(dim=1).sum()) == expected
    assert torch.allclose(book.cluster_size[:2], torch.full((2,), (14 * 0.5 + 2 * 0.01) / 16))   # the mean count


def test_encodec_pretrained_by_config_is_measured_not_trained(one_thread, tmp_path):
    from unimodal.config import compose
    from unimodal.tokenizers.base import load_tokenizer
    from unimodal.training.run import build_tokenizer, prepare_tokenizers

    model = _encodec_model()
    path = tmp_path / "encodec_tiny.th"
    torch.save(model.state_dict(), path)
    arch = ["data.sample_rate=16000", "tokenizer.audio.filters=4", "tokenizer.audio.ratios=[4,2]",
            "tokenizer.audio.lstm=1", "tokenizer.audio.num_codebooks=2"]
    cfg = compose([f"paths.tokenizers_dir={tmp_path / 'tokenizers'}", "modality=audio", "data.num_train=8",
                   "data.num_val=4", "tokenizer/audio=encodec_pretrained", f"tokenizer.audio.path={path}", *arch])
    waves = tones(2, 800, seed=5)
    with torch.no_grad():
        theirs = model.quantizer.encode(model.encoder(waves[:, None]), 2000, bandwidth=None).transpose(0, 1)[:, :2]
    assert torch.equal(build_tokenizer("audio", cfg.tokenizer.audio).encode(waves), theirs)

    from unimodal.data.sources import load_samples
    tokenizer, folder = prepare_tokenizers(cfg, load_samples(cfg.data, ("train", "val")), ["audio"])["audio"]
    assert folder.name.startswith("audio-encodec_pretrained-")  # named by the file's path, not a training budget
    saved = load_tokenizer(folder)  # an ordinary encodec folder, the same fingerprint
    assert saved.kind == "encodec" and saved.fingerprint == tokenizer.fingerprint
    assert torch.equal(saved.encode(waves), theirs)
    assert 0 < json.loads((folder / "metrics.json").read_text())["codebook_usage"] <= 1  # measured on held-out
    with pytest.raises(ConfigError, match="tokenizer.audio.path is not set"):
        build_tokenizer("audio", compose(["tokenizer/audio=encodec_pretrained"]).tokenizer.audio)
