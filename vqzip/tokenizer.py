"""The lossy stage: a VQ-GAN-style convolutional autoencoder around a quantizer.

Pixels are in [-1, 1]. The first and last steps are a 2x pixel (un)shuffle, so no convolution
runs at full resolution: at these bitrates fine detail is gone anyway, and it halves CPU time.
Normalization is per pixel (LayerNorm over channels), so tiles of a large image see the same
statistics as the whole image would.
"""
from __future__ import annotations

from dataclasses import dataclass, asdict

import torch
from torch import nn

from .quant import LFQ, VQ


@dataclass
class TokenizerConfig:
    downsample: int = 16            # 16 or 8
    channels: tuple = (48, 128, 192, 256)  # at 1/2, 1/4, 1/8, 1/16 of the input
    blocks: tuple = (1, 1, 2, 2)
    quantizer: str = "lfq"          # "lfq" or "vq"
    bits: int = 20                  # LFQ: bits per token
    codebook_size: int = 4096       # VQ: number of codes
    group_bits: int = 10            # LFQ entropy penalty: joint distribution over groups of this many bits

    def __post_init__(self):
        self.channels, self.blocks = tuple(self.channels), tuple(self.blocks)
        if self.downsample not in (8, 16):
            raise ValueError("downsample must be 8 or 16")
        if len(self.channels) != len(self.blocks):
            raise ValueError("channels and blocks must have one entry per level")

    @property
    def token_bits(self) -> int:
        return self.bits if self.quantizer == "lfq" else (self.codebook_size - 1).bit_length()

    @property
    def levels(self) -> int:
        # pixel shuffle gives 2x; each further level halves again
        return {16: 4, 8: 3}[self.downsample]

    def to_dict(self):
        return asdict(self)


class ChannelNorm(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.norm = nn.LayerNorm(c)

    def forward(self, x):
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(ChannelNorm(c), nn.SiLU(), nn.Conv2d(c, c, 3, padding=1),
                                  ChannelNorm(c), nn.SiLU(), nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


class Encoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig, out_dim: int):
        super().__init__()
        ch, nb = cfg.channels[:cfg.levels], cfg.blocks[:cfg.levels]
        layers: list[nn.Module] = [nn.PixelUnshuffle(2), nn.Conv2d(12, ch[0], 3, padding=1)]
        for i, c in enumerate(ch):
            if i:
                layers.append(nn.Conv2d(ch[i - 1], c, 4, stride=2, padding=1))
            layers += [ResBlock(c) for _ in range(nb[i])]
        layers += [ChannelNorm(ch[-1]), nn.SiLU(), nn.Conv2d(ch[-1], out_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig, in_dim: int):
        super().__init__()
        ch, nb = cfg.channels[:cfg.levels][::-1], cfg.blocks[:cfg.levels][::-1]
        layers: list[nn.Module] = [nn.Conv2d(in_dim, ch[0], 3, padding=1)]
        for i, c in enumerate(ch):
            if i:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch[i - 1], c, 3, padding=1)]
            layers += [ResBlock(c) for _ in range(nb[i])]
        layers += [ChannelNorm(ch[-1]), nn.SiLU(), nn.Conv2d(ch[-1], 12, 3, padding=1), nn.PixelShuffle(2)]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class Tokenizer(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.quantizer == "lfq":
            self.quant = LFQ(cfg.bits, cfg.group_bits)
            latent = cfg.bits
        elif cfg.quantizer == "vq":
            latent = cfg.channels[cfg.levels - 1]
            self.quant = VQ(latent, cfg.codebook_size)
        else:
            raise ValueError(f"unknown quantizer {cfg.quantizer!r}")
        self.encoder = Encoder(cfg, latent)
        self.decoder = Decoder(cfg, latent)

    @property
    def stride(self) -> int:
        return self.cfg.downsample

    def forward(self, x):
        """x in [-1, 1], sides divisible by the stride -> (reconstruction, indices, aux loss, stats)."""
        zq, idx, aux, stats = self.quant(self.encoder(x))
        return self.decoder(zq), idx, aux, stats

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> integer tokens (B, H/s, W/s)."""
        return self.quant.to_indices(self.encoder(x))

    @torch.inference_mode()
    def decode(self, idx: torch.Tensor) -> torch.Tensor:
        """Tokens (B, h, w) -> pixels (B, 3, h*s, w*s) in [-1, 1]."""
        z = self.quant.from_indices(idx).to(next(self.decoder.parameters()).dtype)
        return self.decoder(z).clamp(-1, 1)


def load_tokenizer(path) -> Tokenizer:
    """A tokenizer from shipped weights (fp16 on disk, fp32 in memory)."""
    from .weights import load_weights
    tensors, meta = load_weights(path)
    model = Tokenizer(TokenizerConfig(**meta["config"]))
    model.load_state_dict({k: v.float() for k, v in tensors.items()})
    return model.eval()
